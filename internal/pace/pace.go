// Package pace spaces a recurring job whose cost grows with what it reads
// (a dump of the whole conntrack table: the data plane's sweep of departed
// real servers' flows, the daemon's lc/wlc connection count), so that it
// takes at most a Share-th of a core: after a run that took t, the next
// begins no sooner than Share × t after that run began. A conntrack dump
// costs about 4 µs of CPU a flow (docs/benchmarks.md: 60,000 flows, 229 to
// 382 ms), so a table of 1,000 flows keeps the daemon's 2 s tick and one
// of 100,000 is read about every 8 s.
package pace

import "time"

// Share is the inverse of the share of a core a paced job may take.
const Share = 20

// Spacer paces one job. The zero value lets the first run begin at once.
// It is not safe for concurrent use: its owner serialises Begin and End.
type Spacer struct {
	from time.Time
	took time.Duration
}

// Due reports whether a run may begin at now.
func (s *Spacer) Due(now time.Time) bool { return !now.Before(s.Next()) }

// Begin records that a run began at now.
func (s *Spacer) Begin(now time.Time) { s.from = now }

// End records that the run begun last ended at now.
func (s *Spacer) End(now time.Time) { s.took = now.Sub(s.from) }

// Next is when the next run may begin (zero before any).
func (s *Spacer) Next() time.Time {
	if s.from.IsZero() {
		return time.Time{}
	}
	return s.from.Add(Share * s.took)
}

// Took is how long the last run took.
func (s *Spacer) Took() time.Duration { return s.took }
