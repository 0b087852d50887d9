package check

import (
	"slices"
	"testing"
	"time"
)

// pollWithin is w.poll, failing the test after d (the poll then ends with
// w's close).
func pollWithin(t *testing.T, w *connWatch, d time.Duration) []uint64 {
	t.Helper()
	got := make(chan []uint64, 1)
	go func() {
		toks, err := w.poll()
		if err != nil {
			close(got)
			return
		}
		got <- slices.Clone(toks)
	}()
	select {
	case toks, ok := <-got:
		if !ok {
			t.Fatal("poll failed")
		}
		return toks
	case <-time.After(d):
		t.Fatalf("nothing ready in %v", d)
		return nil
	}
}

// TestConnWatchTimerAndWake: the timer fires once, at or after its delay;
// a later reset replaces an earlier one; reset(0) fires at once; wake
// reports from any goroutine; close ends a poll under way.
func TestConnWatchTimerAndWake(t *testing.T) {
	w, err := newConnWatch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	start := time.Now()
	w.reset(20 * time.Millisecond)
	if toks := pollWithin(t, w, 5*time.Second); !slices.Equal(toks, []uint64{tokTimer}) {
		t.Fatalf("poll = %v, want the timer", toks)
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Fatalf("fired after %v, want at least 20ms", d)
	}
	// Spent: 50 ms later only the wake-up is there.
	time.AfterFunc(50*time.Millisecond, w.wake)
	if toks := pollWithin(t, w, 5*time.Second); !slices.Equal(toks, []uint64{tokWake}) {
		t.Fatalf("poll = %v, want the wake-up alone: the timer fired twice", toks)
	}
	w.reset(10 * time.Millisecond)
	w.reset(time.Hour) // replaces the 10 ms
	time.AfterFunc(100*time.Millisecond, w.wake)
	if toks := pollWithin(t, w, 5*time.Second); !slices.Equal(toks, []uint64{tokWake}) {
		t.Fatalf("poll = %v, want the wake-up alone: a replaced deadline fired", toks)
	}
	w.reset(0)
	if toks := pollWithin(t, w, 5*time.Second); !slices.Equal(toks, []uint64{tokTimer}) {
		t.Fatalf("poll = %v after reset(0), want the timer", toks)
	}
	// Two wake-ups before a poll are one.
	w.wake()
	w.wake()
	if toks := pollWithin(t, w, 5*time.Second); !slices.Equal(toks, []uint64{tokWake}) {
		t.Fatalf("poll = %v, want one wake-up", toks)
	}
	ended := make(chan error, 1)
	go func() { _, err := w.poll(); ended <- err }()
	time.Sleep(20 * time.Millisecond)
	w.close()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("poll returned no error after close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close did not end the poll")
	}
	w.wake() // after close: nothing written anywhere
}
