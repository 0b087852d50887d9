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

// TestTakeoverAllocations: what the start and takeover of 1,000 masters
// allocate on the fake host (its own records of the adverts, addresses
// and announcements included), per instance: TotalAlloc across the first
// 10 s, the instances becoming BACKUP, then MASTER, then sending their
// delayed gratuitous ARPs. docs/benchmarks.md quotes it; the bound is
// there so that a change that adds garbage to every transition shows here.
func TestTakeoverAllocations(t *testing.T) {
	const n = 1000
	l := newLab(t, footprintConfig(n))
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	l.advance(10 * time.Second)
	runtime.ReadMemStats(&b)
	for _, in := range l.d.insts {
		if in.e.State() != vrrp.StateMaster {
			t.Fatalf("%s is %v after 10 s, want MASTER", in.spec.name, in.e.State())
		}
	}
	per := (b.TotalAlloc - a.TotalAlloc) / n
	t.Logf("%d bytes allocated per instance by the start and takeover of %d masters", per, n)
	if per > 8000 {
		t.Errorf("the takeover allocates %d bytes per instance, want at most 8,000", per)
	}
}
