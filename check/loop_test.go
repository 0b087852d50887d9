package check

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestLoopInvariants runs a Runner over TCP checks (open, refused and
// hanging targets), HTTP_GETs (a page, two pages, a page that never comes)
// and slow non-TCP checks behind a small in-flight limit, and checks the
// loop's invariants (see loop) after every step.
func TestLoopInvariants(t *testing.T) {
	open, closed, hang := tcpTargets(t)
	block := make(chan struct{})
	web := httptest.NewServer(webMux(block))
	defer web.Close()
	defer close(block)
	get := func(timeout time.Duration, paths ...string) *HTTP {
		cfg := HTTPConfig{Target: Target{Addr: netip.MustParseAddrPort(web.Listener.Addr().String()), Timeout: timeout}}
		for _, p := range paths {
			cfg.URLs = append(cfg.URLs, URL{Path: p})
		}
		c, err := NewHTTP(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	servers := []Server{
		{ID: "open", Checks: []Watch{{open, fast(0)}, {&fakeChecker{name: "slow", results: []Result{ok("fine")}, hold: 3 * time.Millisecond}, fast(0)}}},
		{ID: "closed", Checks: []Watch{{closed, fast(0)}}},
		{ID: "hang", Checks: []Watch{{hang, fast(0)}}},
		{ID: "web", Checks: []Watch{{get(time.Second, "/ok"), fast(0)}, {get(time.Second, "/ok", "/moved", "/ok"), fast(0)}}},
		{ID: "web-slow", Checks: []Watch{{get(30*time.Millisecond, "/ok", "/slow"), fast(0)}}},
	}
	for i := range 6 {
		servers = append(servers, Server{ID: string(rune('a' + i)), Checks: []Watch{{&fakeChecker{name: "f", results: []Result{ok("fine"), {Detail: "bad"}}, hold: 2 * time.Millisecond}, fast(1)}}})
	}
	r, err := NewRunner(servers, RunnerOptions{MaxInFlight: 3})
	if err != nil {
		t.Fatal(err)
	}
	steps, waited := 0, 0
	var broken error
	loopStepped = func(l *loop) {
		if l.r != r {
			return // another test's Runner
		}
		if l.ctx.Err() != nil {
			// Run is ending: a step that raced the context's end
			// may drop a job launch could no longer hand out (the
			// checks' context is done), which is how a stopping loop
			// is meant to behave, not a lost check.
			return
		}
		steps++
		if len(l.waiting) > 0 {
			waited++
		}
		if err := l.checkInvariants(); err != nil && broken == nil {
			broken = err
		}
	}
	defer func() { loopStepped = nil }()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if broken != nil {
		t.Fatal(broken)
	}
	if steps < 20 || waited == 0 {
		t.Fatalf("%d steps, %d with checks waiting: the test did not exercise the limit", steps, waited)
	}
}

// tcpTargets returns TCP checks with a 30 ms connect timeout of an open,
// a refused and a hanging (full backlog) target.
func tcpTargets(t *testing.T) (open, closed, hang *TCP) {
	mk := func(ap netip.AddrPort) *TCP {
		c, err := NewTCP(TCPConfig{Target{Addr: ap, Timeout: 30 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return mk(tcpServer(t)), mk(closedPort(t)), mk(fullBacklog(t))
}

// TestLoopInvariantsCatch: checkInvariants finds each kind of broken
// state, so that TestLoopInvariants can fail.
func TestLoopInvariantsCatch(t *testing.T) {
	r, err := NewRunner([]Server{{ID: "a", Checks: []Watch{{&fakeChecker{name: "f", results: []Result{ok("")}}, fast(0)}}}}, RunnerOptions{MaxInFlight: 1})
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() *loop { return &loop{r: r, pending: map[uint64]pendingConn{}} }
	l := fresh()
	l.h.push(job{due: 1})
	if err := l.checkInvariants(); err != nil {
		t.Fatalf("a sound state: %v", err)
	}
	for name, broken := range map[string]func(*loop){
		"over the limit":     func(l *loop) { l.inFlight = 2 },
		"waiting needlessly": func(l *loop) { l.waiting = []job{{}}; l.h = nil },
		"pending uncounted":  func(l *loop) { l.pending[7] = pendingConn{}; l.h.push(job{token: 7}) },
		"no connect timeout": func(l *loop) { l.pending[7] = pendingConn{}; l.inFlight = 1; l.h = nil },
		"a check lost":       func(l *loop) { l.h = nil },
		"a check twice":      func(l *loop) { l.h.push(job{due: 2}) },
		"in flight and heap": func(l *loop) { l.inFlight = 1 },
		"negative in flight": func(l *loop) { l.inFlight = -1 },
	} {
		l := fresh()
		l.h.push(job{due: 1})
		broken(l)
		if l.checkInvariants() == nil {
			t.Errorf("%s: not caught", name)
		}
	}
}

// TestFewTCPChecksStartOnTheLoop: a handful of TCP_CHECKs start their
// connects on the loop itself, with no TCP worker (issue #7: the hand-off
// to a worker and back cost two goroutine switches per check, each often a
// thread woken), and still see open, refused and timed-out targets.
func TestFewTCPChecksStartOnTheLoop(t *testing.T) {
	open, closed, hang := tcpTargets(t)
	servers := []Server{
		{ID: "open", Checks: []Watch{{open, fast(0)}}},
		{ID: "closed", Checks: []Watch{{closed, fast(0)}}},
		{ID: "hang", Checks: []Watch{{hang, fast(0)}}},
	}
	events := newEventLog()
	r, err := NewRunner(servers, RunnerOptions{MaxInFlight: 3, OnEvent: events.add})
	if err != nil {
		t.Fatal(err)
	}
	workers, steps := 0, 0
	loopStepped = func(l *loop) {
		if l.r != r {
			return
		}
		steps++
		workers = max(workers, l.tcpWorkers)
	}
	defer func() { loopStepped = nil }()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if steps < 10 {
		t.Fatalf("only %d steps of the loop", steps)
	}
	if workers != 0 {
		t.Errorf("%d TCP workers started for 3 TCP_CHECKs, want none", workers)
	}
	got := strings.Join(events.strings(), "\n")
	for _, want := range []string{"closed server down: TCP_CHECK", "connection refused", "hang server down: TCP_CHECK", "timed out"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in the events:\n%s", want, got)
		}
	}
	if strings.Contains(got, "open server down") {
		t.Errorf("the open target went down:\n%s", got)
	}
}
