package check

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeChecker answers from a script of results, then repeats the last.
type fakeChecker struct {
	name    string
	mu      sync.Mutex
	results []Result
	calls   int
	running atomic.Int32
	maxRun  atomic.Int32
	hold    time.Duration // how long each check takes
}

func (f *fakeChecker) String() string { return f.name }

func (f *fakeChecker) Check(ctx context.Context) Result {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxRun.Load()
		if n <= m || f.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	if f.hold > 0 {
		select {
		case <-time.After(f.hold):
		case <-ctx.Done():
			return Result{Weight: -1, Detail: "cancelled"}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.calls, len(f.results)-1)
	f.calls++
	return f.results[i]
}

type eventLog struct {
	mu     sync.Mutex
	events []Event
	seen   chan struct{}
}

func newEventLog() *eventLog { return &eventLog{seen: make(chan struct{}, 1000)} }

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	l.seen <- struct{}{}
}

func (l *eventLog) strings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Server+" "+e.String())
	}
	return out
}

// waitFor waits until n events have arrived.
func (l *eventLog) waitFor(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		l.mu.Lock()
		got := len(l.events)
		l.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-l.seen:
		case <-timeout:
			t.Fatalf("waited for %d events, have %q", n, l.strings())
		}
	}
}

// runRunner starts a Runner of servers and returns it and stop, which cancels it
// and fails the test unless Run then returns nil. A test that ends before
// calling stop stops the Runner in its cleanup.
func runRunner(t *testing.T, servers []Server, opt RunnerOptions) (r *Runner, stop func()) {
	t.Helper()
	r, err := NewRunner(servers, opt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	t.Cleanup(stop)
	return r, stop
}

func fast(retry int) Schedule {
	return Schedule{DelayLoop: 5 * time.Millisecond, Retry: retry, DelayBeforeRetry: 2 * time.Millisecond, Rise: 1}
}

// The Runner delivers initial states, then transitions in order, with the
// failing check's detail; it stops with its context and omega reports the
// up servers down.
func TestRunnerEvents(t *testing.T) {
	a := &fakeChecker{name: "TCP_CHECK a", results: []Result{ok("up"), fail("refused"), fail("refused"), ok("back")}}
	b := &fakeChecker{name: "MISC_CHECK b", results: []Result{{Up: true, Weight: 9, Detail: "exited 11"}}}
	log := newEventLog()
	_, stop := runRunner(t, []Server{
		{ID: "rs-a", Weight: 1, Checks: []Watch{{a, fast(1)}}},
		{ID: "rs-b", Weight: 1, Omega: true, Checks: []Watch{{b, fast(0)}}},
	}, RunnerOptions{OnEvent: log.add, Rand: func(time.Duration) time.Duration { return 0 }})
	log.waitFor(t, 5)
	stop()
	got := log.strings()
	want := map[string][]string{
		"rs-a": {"rs-a server up (initial)", "rs-a server down: TCP_CHECK a: refused", "rs-a server up: TCP_CHECK a: back"},
		"rs-b": {"rs-b server up (initial)", "rs-b server weight 9: MISC_CHECK b: exited 11", "rs-b server down (shutdown): vigil is stopping (omega)"},
	}
	for id, w := range want {
		var g []string
		for _, s := range got {
			if strings.HasPrefix(s, id+" ") {
				g = append(g, s)
			}
		}
		if strings.Join(g, "\n") != strings.Join(w, "\n") {
			t.Errorf("events of %s:\n%s\nwant:\n%s", id, strings.Join(g, "\n"), strings.Join(w, "\n"))
		}
	}
	if got[len(got)-1] != "rs-b server down (shutdown): vigil is stopping (omega)" {
		t.Errorf("last event %q, want omega's shutdown", got[len(got)-1])
	}
}

// Checks beyond MaxInFlight wait their turn and still run, and a checker
// never runs two checks at once.
func TestRunnerQueuesBeyondLimit(t *testing.T) {
	var servers []Server
	var checkers []*fakeChecker
	var total atomic.Int32
	for i := range 20 {
		c := &fakeChecker{name: "c", results: []Result{ok("fine")}, hold: 5 * time.Millisecond}
		checkers = append(checkers, c)
		servers = append(servers, Server{ID: string(rune('a' + i)), Checks: []Watch{{c, fast(0)}}})
	}
	r, err := NewRunner(servers, RunnerOptions{MaxInFlight: 3, OnResult: func(Report) { total.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range checkers {
		c.mu.Lock()
		if c.calls == 0 {
			t.Error("a checker never ran")
		}
		c.mu.Unlock()
	}
	if total.Load() < 20 {
		t.Errorf("only %d results", total.Load())
	}
	for _, c := range checkers {
		if c.maxRun.Load() > 1 {
			t.Errorf("a checker ran %d checks at once", c.maxRun.Load())
		}
	}
}

// The in-flight limit holds at every instant.
func TestRunnerInFlightBound(t *testing.T) {
	var now, peak atomic.Int32
	shared := checkFunc(func(ctx context.Context) Result {
		n := now.Add(1)
		defer now.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-time.After(3 * time.Millisecond):
		case <-ctx.Done():
		}
		return ok("fine")
	})
	var servers []Server
	for i := range 50 {
		servers = append(servers, Server{ID: string(rune(0x100 + i)), Checks: []Watch{{shared, fast(0)}}})
	}
	r, _ := NewRunner(servers, RunnerOptions{MaxInFlight: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r.Run(ctx)
	if p := peak.Load(); p > 4 || p < 2 {
		t.Errorf("peak in flight %d, want 2..4", p)
	}
}

type checkFunc func(context.Context) Result

func (f checkFunc) Check(ctx context.Context) Result { return f(ctx) }
func (f checkFunc) String() string                   { return "func" }

// Stopping cancels checks in flight: Run returns promptly even when a
// check would take a minute, and leaves no goroutine (TestMain verifies).
func TestRunnerStopCancelsChecks(t *testing.T) {
	started := make(chan struct{}, 1)
	slow := checkFunc(func(ctx context.Context) Result {
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-time.After(time.Minute):
		case <-ctx.Done():
		}
		return fail("cancelled")
	})
	r, stop := runRunner(t, []Server{{ID: "x", Checks: []Watch{{slow, fast(0)}}}}, RunnerOptions{Logger: slog.New(slog.DiscardHandler)})
	<-started
	start := time.Now()
	stop()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Run took %v to stop", d)
	}
	if err := r.Run(context.Background()); err == nil {
		t.Error("second Run accepted")
	}
}

// warmup spreads first checks with the randomness passed in.
func TestRunnerWarmup(t *testing.T) {
	var first sync.Map
	mk := func(id string) Checker {
		return checkFunc(func(context.Context) Result {
			first.LoadOrStore(id, time.Now())
			return ok("fine")
		})
	}
	s := fast(0)
	s.Warmup = time.Second
	start := time.Now()
	r, _ := NewRunner([]Server{
		{ID: "early", Checks: []Watch{{mk("early"), s}}},
		{ID: "late", Checks: []Watch{{mk("late"), s}}},
	}, RunnerOptions{Rand: func(n time.Duration) time.Duration {
		return n / 5 // 200ms for everyone, but "early" gets warmup 0 below
	}})
	r.states[0].probes[0].sched.Warmup = 0
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	r.Run(ctx)
	e, _ := first.Load("early")
	l, ok := first.Load("late")
	if !ok {
		t.Fatal("late checker never ran")
	}
	if d := e.(time.Time).Sub(start); d > 100*time.Millisecond {
		t.Errorf("warmup 0 checker first ran after %v", d)
	}
	if d := l.(time.Time).Sub(start); d < 190*time.Millisecond {
		t.Errorf("warmup checker first ran after %v, want about 200ms", d)
	}
}

func TestNewRunnerErrors(t *testing.T) {
	c := &fakeChecker{name: "c", results: []Result{ok("")}}
	tests := []struct {
		servers []Server
		opt     RunnerOptions
		want    string
	}{
		{[]Server{{ID: "a"}, {ID: "a"}}, RunnerOptions{}, `server "a" listed twice`},
		{[]Server{{ID: "a", Checks: []Watch{{nil, fast(0)}}}}, RunnerOptions{}, "checker 1 is nil"},
		{[]Server{{ID: "a", Checks: []Watch{{c, Schedule{}}}}}, RunnerOptions{}, "delay_loop"},
		{nil, RunnerOptions{MaxInFlight: -1}, "MaxInFlight"},
	}
	for _, tt := range tests {
		if _, err := NewRunner(tt.servers, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewRunner() error = %v, want %q", err, tt.want)
		}
	}
}

// The Runner drives TCP_CHECKs from its own loop: a connect that completes
// at once, one refused, and one left hanging until connect_timeout, with
// the same words as TCP.Check.
func TestRunnerTCP(t *testing.T) {
	open, closed, hang := tcpServer(t), closedPort(t), fullBacklog(t)
	mk := func(ap netip.AddrPort) *TCP {
		c, err := NewTCP(TCPConfig{Target{Addr: ap, Timeout: 200 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	log := newEventLog()
	var mu sync.Mutex
	results := map[string][]Result{}
	_, stop := runRunner(t, []Server{
		{ID: "open", Checks: []Watch{{mk(open), fast(0)}}},
		{ID: "closed", Checks: []Watch{{mk(closed), fast(0)}}},
		{ID: "hang", Checks: []Watch{{mk(hang), fast(0)}}},
	}, RunnerOptions{OnEvent: log.add, OnResult: func(rep Report) {
		mu.Lock()
		results[rep.Server] = append(results[rep.Server], rep.Result)
		mu.Unlock()
	}})
	log.waitFor(t, 5)
	time.Sleep(50 * time.Millisecond) // let the open server collect a few checks
	stop()
	got := strings.Join(log.strings(), "\n")
	for _, want := range []string{
		"closed server down: TCP_CHECK " + closed.String() + ": connect " + closed.String() + ": connection refused",
		"hang server down: TCP_CHECK " + hang.String() + ": connect " + hang.String() + ": timed out",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("events lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "open server down") {
		t.Errorf("the open server went down:\n%s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(results["open"]) < 3 {
		t.Errorf("open server checked %d times, want several", len(results["open"]))
	}
	for _, res := range results["open"] {
		if !res.Up || res.Latency <= 0 {
			t.Errorf("open server result %+v", res)
		}
	}
	for _, res := range results["hang"] {
		if res.Latency < 200*time.Millisecond {
			t.Errorf("hanging connect gave up after %v, before connect_timeout", res.Latency)
		}
	}
}
