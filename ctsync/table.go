package ctsync

import (
	"time"

	"vigil/ctsync/wire"
)

// table is the backup's copy of the master's synced flows, bounded by max.
// It is plain data: the Syncer locks around it and passes the time in.
type table struct {
	m        map[wire.Key]*item
	max      int
	gen      uint32 // generation of the full table being received
	inFull   bool   // between a full-begin and its full-end
	complete bool   // no datagram of the full table in progress was lost
	overflow uint64
}

type item struct {
	e        wire.Entry
	deadline time.Time // when the master's kernel would time it out
	gen      uint32    // last full table (or event during it) that carried it
}

func newTable(max int) *table {
	return &table{m: map[wire.Key]*item{}, max: max}
}

// update adds or refreshes e; false when e is new and the table is full.
func (t *table) update(e *wire.Entry, now time.Time) bool {
	dl := now.Add(time.Duration(e.Timeout) * time.Second)
	if it, ok := t.m[e.Key]; ok {
		it.e, it.deadline, it.gen = *e, dl, t.gen
		return true
	}
	if len(t.m) >= t.max {
		t.overflow++
		return false
	}
	t.m[e.Key] = &item{e: *e, deadline: dl, gen: t.gen}
	return true
}

// remove deletes k; it reports whether k was held.
func (t *table) remove(k wire.Key) bool {
	if _, ok := t.m[k]; !ok {
		return false
	}
	delete(t.m, k)
	return true
}

// beginFull starts a new generation: entries that the coming full table
// (or events during it) do not carry are removed at its end.
func (t *table) beginFull() {
	t.gen++
	t.inFull, t.complete = true, true
}

// lost marks the full table in progress incomplete (a sequence gap): its
// end must not remove entries it may have carried.
func (t *table) lost() { t.complete = false }

// endFull ends the full table in progress. When it was complete, entries
// of older generations (deleted on the master while a delete was lost) are
// removed and endFull returns how many and true.
func (t *table) endFull() (int, bool) {
	if !t.inFull {
		return 0, false
	}
	t.inFull = false
	if !t.complete {
		return 0, false
	}
	n := 0
	for k, it := range t.m {
		if it.gen != t.gen {
			delete(t.m, k)
			n++
		}
	}
	return n, true
}

// expire removes entries whose timeout passed; it returns how many.
func (t *table) expire(now time.Time) int {
	n := 0
	for k, it := range t.m {
		if !now.Before(it.deadline) {
			delete(t.m, k)
			n++
		}
	}
	return n
}

// snapshot returns the live entries with their remaining timeouts
// (rounded up, at least 1 s).
func (t *table) snapshot(now time.Time) []wire.Entry {
	out := make([]wire.Entry, 0, len(t.m))
	for _, it := range t.m {
		left := it.deadline.Sub(now)
		if left <= 0 {
			continue
		}
		e := it.e
		e.Timeout = uint32((left + time.Second - 1) / time.Second)
		out = append(out, e)
	}
	return out
}

// window is the receiver's view of one sender's sequence numbers: its
// epoch and the highest sequence number accepted, with a bitmap of the 64
// before it (IPsec's anti-replay window, RFC 4303 3.4.3).
type window struct {
	epoch uint64
	max   uint32
	seen  uint64 // bit i: max-i was accepted
}

// accept decides on a datagram's (epoch, seq): ok false is a replay (an
// older epoch, or a sequence number already seen or too old); gap true
// means datagrams were skipped (the first of a new epoch is not 1, or seq
// jumped past max+1).
func (w *window) accept(epoch uint64, seq uint32) (ok, gap bool) {
	switch {
	case epoch < w.epoch:
		return false, false
	case epoch > w.epoch:
		*w = window{epoch: epoch, max: seq, seen: 1}
		return true, seq != 1
	case seq > w.max:
		d := seq - w.max
		if d >= 64 {
			w.seen = 1
		} else {
			w.seen = w.seen<<d | 1
		}
		w.max = seq
		return true, d > 1
	}
	d := w.max - seq
	if d >= 64 || w.seen&(1<<d) != 0 {
		return false, false
	}
	w.seen |= 1 << d
	return true, false
}
