package vrrp

import "time"

// instant is a time on an instance's clock: nanoseconds since the
// instance's origin, which is one nanosecond before the now New was given,
// so that every time the engine sees is positive and 0 can mean "not set"
// (a timer that does not run).
//
// The engine keeps its times (now, the four timers, the last transition's,
// a delayed announcement's) as instants rather than time.Time: 8 bytes
// instead of 24, 72 bytes less in an Instance with the 24-byte origin
// (issue #7; TestInstanceSize). The origin is a time.Time as the caller
// gave it, monotonic clock reading included, so the engine's arithmetic is
// what time.Time's Sub and Add do: with the daemon's times (time.Now) on
// the monotonic clock, a step of the wall clock moves no timer, as before.
// The times the engine hands out (Ready.Next, Transition.At, Status) are
// the origin plus an instant; setNow gives the origin the wall clock
// reading of the latest time, so that they read as the caller's clock
// after a step of the wall clock too (a router whose clock is set by NTP
// after boot), as when the engine kept the caller's time.Time.
type instant int64

// instantOf is t on i's clock.
func (i *Instance) instantOf(t time.Time) instant { return instant(t.Sub(i.origin)) }

// timeOf is x as a time.Time, the zero time for an instant not set.
func (i *Instance) timeOf(x instant) time.Time {
	if x == 0 {
		return time.Time{}
	}
	return i.origin.Add(time.Duration(x))
}

// after is d after the engine's now.
func (i *Instance) after(d time.Duration) instant { return i.now + instant(d) }

// setNow moves the engine's now to t, if t is later: time never goes
// backwards for the engine. The origin moves to t less now: the same
// monotonic reading (the same instants), t's wall clock.
func (i *Instance) setNow(t time.Time) {
	if x := i.instantOf(t); x > i.now {
		i.now = x
		i.origin = t.Add(-time.Duration(x))
	}
}

// due reports whether the timer at t has expired by now.
func due(t, now instant) bool { return t != 0 && t <= now }
