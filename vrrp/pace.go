package vrrp

import "time"

// Beat is a master's steady state on the wire: the same adverts every
// Advertisement_Interval (RFC 5798 section 6.4.3; RFC 3768 section 6.4.3),
// which the caller may send itself while the engine stands aside (Pace).
// The daemon gives them to a thread outside the Go runtime (internal/beat),
// so a master at a short advert_int does not wake the Go scheduler for
// each advert (issue #7).
type Beat struct {
	// Adverts go out together at First and every Interval after it. Read
	// only, as Ready's.
	Adverts  []Outbound
	Interval time.Duration
	First    time.Time
}

// pacing is a master's Adver_Timer while the caller runs it; the zero
// value (no adverts) is no pacing.
type pacing struct {
	prio    uint8
	first   instant
	every   time.Duration
	adverts *Outbound // the engine's adverts the beat sends (i.adverts[0])
}

// Beat returns what a master sends on its Adver_Timer in steady state, and
// when it is due next. ok is false for an instance that is not MASTER,
// has no advert built yet (it has sent none since it became master or was
// reloaded), has one due now (Advance sends it first), or is paced already.
func (i *Instance) Beat() (b Beat, ok bool) {
	if i.state != StateMaster || i.advertAt <= i.now || i.Pacing() || len(i.adverts) == 0 || i.adverts[0].Priority != i.prio {
		return Beat{}, false
	}
	return Beat{Adverts: i.adverts, Interval: i.cfg.AdvertInterval, First: i.timeOf(i.advertAt)}, true
}

// Pace hands the Adver_Timer to the caller, who sends b (what Beat
// returned, unchanged since) from b.First on: the engine sends no periodic
// advert, and Next leaves the timer out. It takes the timer back by itself
// (Pacing turns false) as soon as the beat is no longer right: a
// transition, a priority or configuration change, or an advert out of turn
// (an answer to a lower priority master's, for one), whose Ready then
// carries the advert. A caller that sees Pacing turn false stops its beat
// before it sends what Ready holds, so nothing of the old beat follows
// it. The timer then runs on from the beat's next advert. Pace of a b that
// no longer matches the instance does nothing.
func (i *Instance) Pace(b Beat) {
	cur, ok := i.Beat()
	if !ok || len(b.Adverts) == 0 || &b.Adverts[0] != &cur.Adverts[0] || b.Interval != cur.Interval || !b.First.Equal(cur.First) {
		return
	}
	i.more().pace = pacing{prio: i.prio, first: i.advertAt, every: b.Interval, adverts: &i.adverts[0]}
	i.advertAt = 0
}

// Unpace takes the Adver_Timer back at now, after the caller's beat
// stopped by itself (its lease ran out: the caller's loop was held up) or
// was stopped: an advert is due at once, since some may have been missed.
func (i *Instance) Unpace(now time.Time) {
	if !i.Pacing() {
		return
	}
	i.setNow(now)
	i.endPace()
	if i.state == StateMaster {
		i.advertAt = i.now
	}
}

// Pacing reports whether the caller runs the Adver_Timer (Pace).
func (i *Instance) Pacing() bool { return i.rare != nil && i.rare.pace.adverts != nil }

// checkPace ends the pacing when the beat is no longer what the engine
// would send, after every event and timer.
func (i *Instance) checkPace() {
	if !i.Pacing() {
		return
	}
	p := &i.rare.pace
	// A reload's new interval comes with new adverts (setConfig drops
	// them), so the adverts' identity covers the configuration.
	if i.state != StateMaster || i.advertAt != 0 || i.prio != p.prio ||
		len(i.adverts) == 0 || &i.adverts[0] != p.adverts || len(i.out.Adverts) > 0 {
		i.endPace()
	}
}

// endPace ends the pacing: a master that has not re-armed its Adver_Timer
// (the advert out of turn that ended it did) sends its next advert at the
// beat's next tick.
func (i *Instance) endPace() {
	tick := i.paceTick(i.now)
	i.rare.pace = pacing{}
	i.tidyRare()
	if i.state == StateMaster && i.advertAt == 0 {
		i.advertAt = tick
	}
}

// paceTick is the beat's first advert at or after now.
func (i *Instance) paceTick(now instant) instant {
	p := &i.rare.pace
	if now <= p.first {
		return p.first
	}
	n := (now - p.first + instant(p.every) - 1) / instant(p.every)
	return p.first + n*instant(p.every)
}

// Sent adds n adverts the caller's beat sent to Counters.Sent.
func (i *Instance) Sent(n uint64) { i.counters.Sent += n }
