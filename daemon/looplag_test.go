package daemon

import (
	"maps"
	"slices"
	"testing"
	"time"

	"vigil/control"
	"vigil/metrics"
)

func TestLagWindowForgetsOldStalls(t *testing.T) {
	var w lagWindow
	t0 := time.Unix(1000, 0)
	w.add(t0, 3*time.Millisecond)
	w.add(t0.Add(10*time.Second), 800*time.Millisecond)
	w.add(t0.Add(20*time.Second), 5*time.Millisecond)
	if got := w.status(t0.Add(30 * time.Second)); got.Recent != control.Duration(800*time.Millisecond) || got.Max != got.Recent {
		t.Fatalf("right after the stall: %+v", got)
	}
	// One window later the stall is in the previous bucket: still shown.
	w.add(t0.Add(control.LoopLagWindow+time.Second), 2*time.Millisecond)
	if got := w.status(t0.Add(control.LoopLagWindow + 2*time.Second)); got.Recent != control.Duration(800*time.Millisecond) {
		t.Fatalf("one window later: %+v", got)
	}
	// Two windows later it is gone from Recent but kept in Max.
	w.add(t0.Add(2*control.LoopLagWindow+2*time.Second), 4*time.Millisecond)
	got := w.status(t0.Add(2*control.LoopLagWindow + 3*time.Second))
	if got.Recent != control.Duration(4*time.Millisecond) || got.Max != control.Duration(800*time.Millisecond) {
		t.Fatalf("two windows later: %+v", got)
	}
	// A long quiet spell (no wake-ups) forgets everything recent.
	if got := w.status(t0.Add(10 * control.LoopLagWindow)); got.Recent != 0 || got.Max != control.Duration(800*time.Millisecond) {
		t.Fatalf("after a quiet spell: %+v", got)
	}
}

// TestEveryCounterExported: every counter the daemon's status carries
// (read from a snapshot of a running instance, so a counter added anywhere
// in the snapshot counts) is one of control.Counters, which
// docs/operations.md lists, and has a metric (metrics.CounterKnown), or it
// would silently go unexported; and every one of control.Counters is in
// the status.
func TestEveryCounterExported(t *testing.T) {
	l := newLab(t, instanceConf(""))
	s := l.d.snapshot()
	if len(s.Instances) != 1 {
		t.Fatalf("%d instances in the status, want 1", len(s.Instances))
	}
	got := s.Instances[0].Counters
	known := control.Counters()
	for k := range maps.Keys(got) {
		if !slices.Contains(known, k) {
			t.Errorf("status counter %q is not in control.Counters", k)
		}
	}
	for _, k := range known {
		if _, ok := got[k]; !ok {
			t.Errorf("control.Counters has %q, which the status never carries", k)
		}
		if !metrics.CounterKnown(k) {
			t.Errorf("status counter %q has no metric in package metrics", k)
		}
	}
}
