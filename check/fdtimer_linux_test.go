package check

import (
	"testing"
	"time"
)

// TestFDTimer: Reset fires once, at or after its delay; a later Reset
// replaces an earlier one; Stop ends the goroutine.
func TestFDTimer(t *testing.T) {
	tm, err := newFDTimer()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tm.Reset(20 * time.Millisecond)
	select {
	case at := <-tm.C:
		if at.Sub(start) < 20*time.Millisecond {
			t.Fatalf("fired after %v, want at least 20ms", at.Sub(start))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire")
	}
	select {
	case <-tm.C:
		t.Fatal("fired twice for one Reset")
	case <-time.After(50 * time.Millisecond):
	}
	tm.Reset(10 * time.Millisecond)
	tm.Reset(time.Hour) // replaces the 10 ms
	select {
	case <-tm.C:
		t.Fatal("fired for a deadline that was replaced")
	case <-time.After(100 * time.Millisecond):
	}
	tm.Reset(0)
	select {
	case <-tm.C:
	case <-time.After(5 * time.Second):
		t.Fatal("Reset(0) did not fire at once")
	}
	done := make(chan struct{})
	go func() { tm.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return")
	}
}
