package check

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ok(detail string) Result   { return Result{Up: true, Weight: -1, Detail: detail} }
func fail(detail string) Result { return Result{Weight: -1, Detail: detail} }

// step is one result fed to a State and what must come of it: the delay
// until the checker's next run and the events, printed.
type step struct {
	at     time.Duration // since t0
	probe  int
	res    Result
	next   time.Duration // since at
	events []string
}

func runSteps(t *testing.T, st *State, steps []step) {
	t.Helper()
	for n, s := range steps {
		now := t0.Add(s.at)
		next, evs := st.Observe(now, s.probe, s.res)
		var got []string
		for _, e := range evs {
			got = append(got, e.String())
			if e.Server != st.id || !e.At.Equal(now) {
				t.Errorf("step %d: event %+v has the wrong server or time", n+1, e)
			}
		}
		if d := next.Sub(now); d != s.next {
			t.Errorf("step %d (%v %q): next check in %v, want %v", n+1, s.at, s.res.Detail, d, s.next)
		}
		if diff := cmp.Diff(s.events, got); diff != "" {
			t.Errorf("step %d (%v %q): events (-want +got):\n%s", n+1, s.at, s.res.Detail, diff)
		}
	}
}

func newState(t *testing.T, weight int, omega bool, scheds ...Schedule) *State {
	t.Helper()
	names := make([]string, len(scheds))
	for i := range scheds {
		names[i] = fmt.Sprintf("C%d", i)
	}
	st, err := NewState("rs", weight, omega, names, scheds)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func sched(delay time.Duration, retry int, dbr time.Duration) Schedule {
	return Schedule{DelayLoop: delay, Retry: retry, DelayBeforeRetry: dbr, Rise: 1}
}

// retry: a server that is up survives `retry` failures, each retried after
// delay_before_retry; the next failure takes it down. Once down, checks run
// every delay_loop and one success brings it back.
func TestStateRetry(t *testing.T) {
	st := newState(t, 1, false, sched(10*time.Second, 2, 3*time.Second))
	runSteps(t, st, []step{
		{0, 0, ok("fine"), 10 * time.Second, nil},
		{10 * time.Second, 0, fail("refused"), 3 * time.Second, nil},
		{13 * time.Second, 0, fail("refused"), 3 * time.Second, nil},
		{16 * time.Second, 0, fail("refused again"), 10 * time.Second, []string{"server down: C0: refused again"}},
		{26 * time.Second, 0, fail("still refused"), 10 * time.Second, nil},
		{36 * time.Second, 0, ok("back"), 10 * time.Second, []string{"server up: C0: back"}},
	})
}

// A success between failures resets the retry count.
func TestStateRetryResets(t *testing.T) {
	st := newState(t, 1, false, sched(5*time.Second, 1, time.Second))
	runSteps(t, st, []step{
		{0, 0, fail("a"), time.Second, nil},
		{time.Second, 0, ok("b"), 5 * time.Second, nil},
		{6 * time.Second, 0, fail("c"), time.Second, nil},
		{7 * time.Second, 0, fail("d"), 5 * time.Second, []string{"server down: C0: d"}},
	})
}

// retry 0 (MISC_CHECK's default): the first failure takes the server down.
func TestStateNoRetry(t *testing.T) {
	st := newState(t, 1, false, sched(time.Second, 0, time.Second))
	runSteps(t, st, []step{
		{0, 0, fail("exited 1"), time.Second, []string{"server down: C0: exited 1"}},
	})
}

// alpha: the server starts down and needs a success; without it the
// server starts up.
func TestStateAlpha(t *testing.T) {
	s := sched(time.Second, 1, time.Second)
	s.Alpha = true
	st := newState(t, 3, false, s)
	_, ev := st.Start(t0, func(time.Duration) time.Duration { return 0 })
	if ev.Kind != ServerDown || !ev.Initial || st.Up() {
		t.Fatalf("alpha start: %v, up %v", ev, st.Up())
	}
	runSteps(t, st, []step{
		{0, 0, fail("refused"), time.Second, nil}, // no retries while down
		{time.Second, 0, ok("connected"), time.Second, []string{"server up: C0: connected"}},
	})

	st = newState(t, 3, false, sched(time.Second, 1, time.Second))
	_, ev = st.Start(t0, func(time.Duration) time.Duration { return 0 })
	if ev.Kind != ServerUp || !ev.Initial || !st.Up() || ev.Weight != 3 {
		t.Fatalf("start without alpha: %v, up %v", ev, st.Up())
	}
}

// Rise: HTTP_GET with 3 URLs and no fast_recovery comes back only after 3
// successful rounds, a delay_loop apart; a failure in between starts over.
func TestStateRise(t *testing.T) {
	s := sched(2*time.Second, 0, time.Second)
	s.Rise = 3
	st := newState(t, 1, false, s)
	runSteps(t, st, []step{
		{0, 0, fail("503"), 2 * time.Second, []string{"server down: C0: 503"}},
		{2 * time.Second, 0, ok("3 urls ok"), 2 * time.Second, nil},
		{4 * time.Second, 0, ok("3 urls ok"), 2 * time.Second, nil},
		{6 * time.Second, 0, fail("503"), 2 * time.Second, nil},
		{8 * time.Second, 0, ok("1"), 2 * time.Second, nil},
		{10 * time.Second, 0, ok("2"), 2 * time.Second, nil},
		{12 * time.Second, 0, ok("3"), 2 * time.Second, []string{"server up: C0: 3"}},
		{14 * time.Second, 0, ok("4"), 2 * time.Second, nil},
	})
}

// Several checkers: the server is up only while all are; the event names
// the checker that decided.
func TestStateSeveralCheckers(t *testing.T) {
	st := newState(t, 1, false, sched(time.Second, 0, time.Second), sched(2*time.Second, 0, time.Second))
	runSteps(t, st, []step{
		{0, 0, fail("tcp refused"), time.Second, []string{"server down: C0: tcp refused"}},
		{0, 1, fail("http 503"), 2 * time.Second, nil},
		{time.Second, 0, ok("tcp ok"), time.Second, nil},
		{2 * time.Second, 1, ok("http ok"), 2 * time.Second, []string{"server up: C1: http ok"}},
	})
}

// misc_dynamic: weight = exit code − 2; exit 0 keeps it; an event only
// when the effective weight changes. With two dynamic checkers the
// adjustments add up over the configured weight.
func TestStateDynamicWeight(t *testing.T) {
	dyn := func(w int) Result { r := ok(fmt.Sprintf("weight %d", w)); r.Weight = w; return r }
	st := newState(t, 5, false, sched(time.Second, 0, time.Second))
	runSteps(t, st, []step{
		{0, 0, dyn(10), time.Second, []string{"server weight 10: C0: weight 10"}},
		{1 * time.Second, 0, dyn(10), time.Second, nil},
		{2 * time.Second, 0, ok("exit 0"), time.Second, nil},
		{3 * time.Second, 0, dyn(0), time.Second, []string{"server weight 0: C0: weight 0"}},
		{4 * time.Second, 0, fail("exit 1"), time.Second, []string{"server down: C0: exit 1"}},
		{5 * time.Second, 0, dyn(7), time.Second, []string{"server up: C0: weight 7"}},
	})
	if st.Weight() != 7 {
		t.Errorf("Weight() = %d, want 7", st.Weight())
	}

	st = newState(t, 5, false, sched(time.Second, 0, time.Second), sched(time.Second, 0, time.Second))
	runSteps(t, st, []step{
		{0, 0, dyn(8), time.Second, []string{"server weight 8: C0: weight 8"}},
		{0, 1, dyn(4), time.Second, []string{"server weight 7: C1: weight 4"}}, // 5 + 3 − 1
		{0, 1, dyn(0), time.Second, []string{"server weight 3: C1: weight 0"}}, // 5 + 3 − 5
	})
}

// omega: stopping reports up servers down (notify_down runs); without
// omega nothing is reported.
func TestStateOmega(t *testing.T) {
	st := newState(t, 1, true, sched(time.Second, 0, time.Second))
	evs := st.Shutdown(t0)
	if len(evs) != 1 || evs[0].Kind != ServerDown || !evs[0].Shutdown || evs[0].String() != "server down (shutdown): vigil is stopping (omega)" {
		t.Errorf("omega shutdown = %v", evs)
	}
	st = newState(t, 1, true, sched(time.Second, 0, time.Second))
	st.Observe(t0, 0, fail("x"))
	if evs := st.Shutdown(t0); len(evs) != 0 {
		t.Errorf("omega shutdown of a down server = %v", evs)
	}
	st = newState(t, 1, false, sched(time.Second, 0, time.Second))
	if evs := st.Shutdown(t0); len(evs) != 0 {
		t.Errorf("shutdown without omega = %v", evs)
	}
}

// warmup: the first check runs at a random point within warmup, drawn from
// the randomness passed in; warmup 0 checks at once.
func TestStateWarmup(t *testing.T) {
	a := sched(time.Second, 0, time.Second)
	a.Warmup = 10 * time.Second
	b := sched(time.Second, 0, time.Second)
	c := DefaultSchedule(KindTCP) // warmup follows delay_loop (60 s)
	st := newState(t, 1, false, a, b, c)
	var asked []time.Duration
	due, _ := st.Start(t0, func(n time.Duration) time.Duration { asked = append(asked, n); return n / 2 })
	want := []time.Time{t0.Add(5 * time.Second), t0, t0.Add(30 * time.Second)}
	if diff := cmp.Diff(want, due); diff != "" {
		t.Errorf("due (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{10 * time.Second, 60 * time.Second}, asked); diff != "" {
		t.Errorf("rnd asked for (-want +got):\n%s", diff)
	}
}

// A server without checkers is always up.
func TestStateNoCheckers(t *testing.T) {
	st := newState(t, 2, false)
	_, ev := st.Start(t0, nil)
	if !st.Up() || ev.Kind != ServerUp {
		t.Errorf("server without checkers: %v", ev)
	}
}

func TestDefaultSchedule(t *testing.T) {
	tests := []struct {
		kind       Kind
		retry      int
		dbr, warmp time.Duration
	}{
		{KindTCP, 1, time.Second, 60 * time.Second},
		{KindHTTP, 1, 3 * time.Second, 60 * time.Second},
		{KindSSL, 1, 3 * time.Second, 60 * time.Second},
		{KindDNS, 3, 60 * time.Second, 60 * time.Second},
		{KindMisc, 0, time.Second, 60 * time.Second},
		{KindUDP, 1, time.Second, 60 * time.Second},
		{KindPing, 1, time.Second, 60 * time.Second},
	}
	for _, tt := range tests {
		s, err := DefaultSchedule(tt.kind).resolved()
		if err != nil {
			t.Fatal(err)
		}
		if s.DelayLoop != 60*time.Second || s.Retry != tt.retry || s.DelayBeforeRetry != tt.dbr || s.Warmup != tt.warmp || s.Rise != 1 || s.Alpha {
			t.Errorf("DefaultSchedule(%s) = %+v", tt.kind, s)
		}
	}
	// delay_before_retry of DNS_CHECK follows a changed delay_loop.
	s := DefaultSchedule(KindDNS)
	s.DelayLoop = 7 * time.Second
	if r, _ := s.resolved(); r.DelayBeforeRetry != 7*time.Second || r.Warmup != 7*time.Second {
		t.Errorf("DNS with delay_loop 7s: %+v", r)
	}
}

func TestNewStateErrors(t *testing.T) {
	tests := []struct {
		s    Schedule
		want string
	}{
		{Schedule{}, "delay_loop 0s must be positive"},
		{Schedule{DelayLoop: time.Second, Retry: -1}, "retry -1 is negative"},
		{Schedule{DelayLoop: time.Second, Warmup: -5}, "must not be negative"},
		{Schedule{DelayLoop: time.Second, Rise: -1}, "rise -1"},
	}
	for _, tt := range tests {
		_, err := NewState("rs1", 1, false, []string{"TCP_CHECK x"}, []Schedule{tt.s})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "server rs1: TCP_CHECK x") {
			t.Errorf("NewState(%+v) error = %v, want %q", tt.s, err, tt.want)
		}
	}
	if _, err := NewState("rs", -1, false, nil, nil); err == nil {
		t.Error("negative weight accepted")
	}
}
