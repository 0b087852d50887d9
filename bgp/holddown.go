package bgp

import "time"

// Holddown damps the flaps of a BFD session for the BGP session it guards
// (a neighbor's bfd_instance; vigil's bfd_holddown and bfd_holddown_max).
// RFC 5882 section 3.1 asks a BFD client for hysteresis so that a flapping
// session does not make its client flap with it: here every time the BFD
// session falls from Up the BGP session goes down at once, as before, but
// when BFD is back Up the BGP session waits before it reconnects, Base
// after the first flap and twice as long after each further one, up to
// Max. A BGP session that has run for Max since its last hold is forgiven
// its flaps. Without it, a session flapping every few hundred milliseconds
// resets the BGP session (and the routers' ECMP groups, and the flows they
// move) on every flap.
//
// It is pure: the daemon tells it the BFD session's state with the time,
// and asks when the BGP session may run.
type Holddown struct {
	// flaps counts the falls from Up not yet forgiven.
	flaps int
	up    bool
	// stopped is set by Stop: the next Up resumes, it is no return
	// from a flap.
	stopped bool
	// release is when the BGP session may run again (meaningful while up).
	release time.Time
}

// HoldParams are a neighbor's bfd_holddown (Base; 0: no damping) and
// bfd_holddown_max (Max).
type HoldParams struct {
	Base, Max time.Duration
}

// Hold is how long the BGP session waits after the flaps-th flap.
func (p HoldParams) Hold(flaps int) time.Duration {
	if flaps <= 0 || p.Base <= 0 {
		return 0
	}
	h := p.Base
	for i := 1; i < flaps && h < p.Max; i++ {
		h *= 2
	}
	return min(h, p.ceiling())
}

// ceiling is Max, or Base when Max is below it (config refuses that; a
// caller building HoldParams itself may not).
func (p HoldParams) ceiling() time.Duration { return max(p.Max, p.Base) }

// Down records that the BFD session is not Up. A fall from Up is a flap,
// unless the BGP session had run for Max since its release.
func (h *Holddown) Down(now time.Time, p HoldParams) {
	if !h.up {
		return
	}
	h.up = false // stopped is false while up
	if now.Sub(h.release) >= p.ceiling() {
		h.flaps = 0
	}
	h.flaps++
}

// Stop records that the BFD session is not Up without a flap: it was
// stopped here (a local AdminDown: the session removed, the BFD process
// restarting), which says nothing of the path. When it is Up again, a
// BGP session that ran runs again at once, and a hold under way goes on
// to its end.
func (h *Holddown) Stop() {
	if h.up {
		h.up, h.stopped = false, true
	}
}

// Up records that the BFD session is Up and returns when the BGP session
// may run: now, unless the session flapped. Calling it again while the
// session stays Up changes nothing.
func (h *Holddown) Up(now time.Time, p HoldParams) time.Time {
	if !h.up {
		h.up = true
		if h.stopped {
			h.stopped = false
			if h.release.Before(now) {
				h.release = now
			}
		} else {
			h.release = now.Add(p.Hold(h.flaps))
		}
	}
	return h.release
}

// IsUp reports whether the BFD session was last said to be Up.
func (h *Holddown) IsUp() bool { return h.up }

// Release is when the BGP session may run, once the BFD session is Up.
func (h *Holddown) Release() time.Time { return h.release }

// Flaps is how many flaps the current hold counts.
func (h *Holddown) Flaps() int { return h.flaps }

// Allowed reports whether the BGP session may run at now.
func (h *Holddown) Allowed(now time.Time) bool { return h.up && !now.Before(h.release) }

// Holding reports whether the BFD session is Up and the BGP session still
// waits, until Release.
func (h *Holddown) Holding(now time.Time) bool { return h.up && now.Before(h.release) }
