package main

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestReleaserWaitsForTheLastSchedule: a reload during the wait pushes the
// release back, and one release follows however many schedules.
func TestReleaserWaitsForTheLastSchedule(t *testing.T) {
	var n atomic.Int32
	r := &releaser{delay: 150 * time.Millisecond, release: func() { n.Add(1) }}
	defer r.stop()
	start := time.Now()
	r.schedule()
	time.Sleep(100 * time.Millisecond)
	r.schedule() // a reload
	for n.Load() == 0 && time.Since(start) < 5*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if n.Load() != 1 {
		t.Fatalf("released %d times, want 1", n.Load())
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("released %v after the first schedule, want at least 250ms (the second schedule's wait)", took)
	}
	time.Sleep(300 * time.Millisecond)
	if n.Load() != 1 {
		t.Errorf("released %d times, want 1", n.Load())
	}
}
