package daemon

import (
	"time"

	"vigil/control"
)

// lagWindow keeps how late the loop woke for its deadlines: the largest
// lag since start, and the largest of the recent past, which is what an
// alert wants (a stall an hour ago should not page forever). The recent
// value comes from two consecutive buckets of control.LoopLagWindow, so
// it covers between one and two windows.
type lagWindow struct {
	start     time.Time // when the current bucket began
	cur, prev time.Duration
	max       time.Duration
}

func (w *lagWindow) rotate(now time.Time) {
	age := now.Sub(w.start)
	if w.start.IsZero() || age < 0 {
		w.start = now
		return
	}
	if age < control.LoopLagWindow {
		return
	}
	w.prev = w.cur
	if age >= 2*control.LoopLagWindow {
		w.prev = 0 // the previous bucket saw no wake-up at all
	}
	w.cur = 0
	w.start = now
}

// add records one wake-up lag measured at now.
func (w *lagWindow) add(now time.Time, lag time.Duration) {
	w.rotate(now)
	w.cur = max(w.cur, lag)
	w.max = max(w.max, lag)
}

// status reports the window as of now.
func (w *lagWindow) status(now time.Time) control.LoopLag {
	w.rotate(now)
	return control.LoopLag{Recent: control.Duration(max(w.cur, w.prev)), Max: control.Duration(w.max)}
}
