// Package pace spaces a recurring job whose cost grows with what it reads
// (a dump of the whole conntrack table: the data plane's sweep of departed
// real servers' flows, the daemon's lc/wlc connection count), so that it
// takes at most a Share-th of a core: after a run that took t, the next
// begins no sooner than Share × t after that run began. Reading the whole
// conntrack table for the count costs about 1 µs of CPU a flow, and the
// sweep's kernel-filtered dump about 0.2 µs for each flow of the table
// (docs/benchmarks.md: 60,000 flows, 59-67 ms and 10-14 ms), so both keep
// the daemon's 2 s tick up to about 100,000 flows; a count of 1,000,000
// runs about every 20 s.
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
