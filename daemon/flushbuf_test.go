package daemon

import (
	"runtime"
	"testing"
	"time"

	"vigil/vrrp"
)

// TestFlushBufferForOneTransition: one instance's transition in a turn
// where every master's advert is due (1,000 masters started together send
// theirs in the same turn) takes a buffer of pending Readies for itself,
// not one for every instance with output. flush grows its buffer to what
// the remaining instances can add only in a burst, past maxPending: counted
// before that, the masters whose adverts are due made a single transition
// allocate 1,000 pendingReady (176 KB) and throw them away.
func TestFlushBufferForOneTransition(t *testing.T) {
	l := newLab(t, footprintConfig(1000))
	l.advance(10 * time.Second) // masters
	flushed := func(transition bool) uint64 {
		next := l.d.insts[0].e.Status().NextAdvertAt
		if transition {
			if err := l.d.insts[5].e.Step(l.now, vrrp.Tracking{Fault: true, Reason: "test"}); err != nil {
				t.Fatal(err)
			}
		}
		l.now = next
		l.h.setNow(l.now)
		due := 0
		for _, in := range l.d.insts {
			in.e.Advance(l.now)
			if in.e.HasReady() {
				due++
			}
		}
		if due < 900 {
			t.Fatalf("%d instances have output at %v, want every master's advert due", due, l.now)
		}
		l.h.mu.Lock()
		l.h.ops = nil // the fake host's record of the adverts, not the daemon's
		l.h.mu.Unlock()
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		l.d.flush()
		runtime.ReadMemStats(&b)
		l.turn()
		return b.TotalAlloc - a.TotalAlloc
	}
	adverts := flushed(false)
	withOne := flushed(true)
	t.Logf("flush of 1,000 adverts: %d bytes allocated; with one transition among them: %d", adverts, withOne)
	if extra := int64(withOne) - int64(adverts); extra > 64<<10 {
		t.Errorf("one transition among 1,000 adverts made flush allocate %d bytes more, want at most 64 KiB", extra)
	}
	if st := l.d.insts[5].e.State(); st != vrrp.StateFault {
		t.Errorf("the instance told of a tracking fault is %v, want FAULT", st)
	}
}
