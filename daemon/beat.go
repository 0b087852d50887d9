package daemon

import (
	"errors"
	"net/netip"
	"slices"
	"time"

	"vigil/internal/beat"
	"vigil/vrrp"
)

// A master whose advert_int is below beatBelow has its steady-state
// adverts sent by a thread outside the Go runtime (internal/beat) while
// nothing changes: the loop then wakes every beatRenew instead of every
// advert. At advert_int 10 ms that is what keeps one master's CPU at or
// below keepalived's (docs/benchmarks.md, "The advert thread"); at 1 s a
// thread saves nothing worth its 8 KiB and its clone, so it is not made.
const (
	beatBelow = time.Second
	// beatMax bounds the threads: the masters paced at once.
	beatMax = 16
	// beatLease is how long a thread sends after the loop last renewed
	// it: a loop that hangs (a deadlock; a stall of the whole process
	// stops the thread too) stops its adverts within 1.5 s and the
	// backups take over, as from a keepalived that hangs. A loop that is
	// late by less than the half second beyond beatRenew keeps the beat.
	beatLease = 1500 * time.Millisecond
	// beatRenew is how often the loop renews the leases, checks the
	// adverts' source and reads the threads' counts: one wake-up a second
	// however short advert_int, as an idle keepalived. Each costs the loop
	// about 120-150 µs of CPU (a pass after a long sleep, its cache lines
	// cold: docs/benchmarks.md), 1.2-1.5 µs an advert at 10 ms; at 250 ms
	// it was about 5.
	beatRenew = time.Second
)

// advertBeat is a running sender thread (*netio.Beat).
type advertBeat interface {
	Renew(until time.Time)
	Running() bool
	State() beat.State
	Stop() error
	// Verify reports whether the adverts' source is still the host's
	// (netio.Beat.Verify: an IPv4 thread writes its headers, and the
	// kernel does not check them).
	Verify() error
}

// beatRetry is how long after a thread's source check failed no thread
// starts: the loop's own sends report the error meanwhile.
const beatRetry = 10 * time.Second

// errNoBeat: this connection, or this build, has no sender thread.
var errNoBeat = errors.New("no advert thread for this socket")

// beatRun is one paced master and its thread.
type beatRun struct {
	in     *instance
	b      advertBeat
	failed uint64 // the thread's failed sends already logged
}

// beats are the daemon's paced masters.
type beats struct {
	runs    []beatRun
	renewAt time.Time
	retryAt time.Time // no thread starts before (beatRetry)
	scan    bool      // an advert went out since the last look for new beats
	// off: no threads (--no-advert-thread, no thread on this platform,
	// or a fake host: the loop sends every advert, as without them).
	off bool
}

// beatTurn runs after every turn: it lets go of the threads whose beat
// ended, renews the others' leases, and starts threads for masters that
// have come to a steady state.
func (d *Daemon) beatTurn(now time.Time) {
	bs := &d.beats
	if len(bs.runs) == 0 && bs.off {
		return
	}
	renew := len(bs.runs) > 0 && !now.Before(bs.renewAt)
	kept := bs.runs[:0]
	for _, r := range bs.runs {
		switch {
		case !r.in.e.Pacing():
			d.endBeat(r, now) // the engine took its timer back without an advert
			continue
		case !r.b.Running():
			d.log.Warn("advert thread stopped; the loop sends the adverts", "instance", r.in.spec.name, "lease_ran_out", r.b.State().Lapsed)
			d.endBeat(r, now)
			continue
		}
		if renew {
			if err := r.b.Verify(); err != nil {
				d.log.Warn("advert thread stopped; the loop sends the adverts", "instance", r.in.spec.name, "err", err)
				d.endBeat(r, now)
				bs.retryAt = now.Add(beatRetry)
				continue
			}
			r.b.Renew(now.Add(beatLease))
			d.beatFailures(&r)
		}
		kept = append(kept, r)
	}
	clear(bs.runs[len(kept):])
	bs.runs = kept
	if renew {
		bs.renewAt = now.Add(beatRenew)
	}
	if d.host.startBeat == nil {
		bs.off = true
	}
	// A master comes to a steady state by sending an advert: only a turn
	// that sent one (sendAdverts) looks for new beats, not every turn of
	// a loop with many backups.
	if bs.off || !bs.scan || now.Before(bs.retryAt) {
		return
	}
	bs.scan = false
	started := len(bs.runs)
	for _, in := range d.insts {
		if len(bs.runs) >= beatMax {
			break
		}
		if in.sock == nil || in.e.State() != vrrp.StateMaster || in.e.Pacing() {
			continue
		}
		b, ok := in.e.Beat()
		if !ok || b.Interval >= beatBelow || len(b.Adverts) > beat.MaxMsgs {
			continue // (more unicast peers than one sendmmsg takes: the loop sends)
		}
		payloads, dsts := make([][]byte, len(b.Adverts)), make([]netip.Addr, len(b.Adverts))
		for k, o := range b.Adverts {
			payloads[k], dsts[k] = o.Data, o.Dst
		}
		t, err := d.host.startBeat(in.sock.conn, payloads, in.e.Config().SrcAddr, dsts, b.Interval, b.First, now.Add(beatLease))
		if errors.Is(err, errNoBeat) {
			bs.off = true
			break
		}
		if err != nil {
			// A source the host does not have (yet), a thread the system
			// refuses: the loop sends, and tries again later.
			d.log.Warn("advert thread", "instance", in.spec.name, "err", err, "then", "the loop sends the adverts")
			bs.retryAt = now.Add(beatRetry)
			break
		}
		in.e.Pace(b) // b is what Beat just returned: Pace takes it
		if len(bs.runs) == 0 {
			bs.renewAt = now.Add(beatRenew)
		}
		bs.runs = append(bs.runs, beatRun{in: in, b: t})
	}
	if len(bs.runs) > started {
		// vrrp_rt_priority / vrrp_priority for the new threads now, not at
		// the next tick: a clone with SCHED_RESET_ON_FORK starts without it.
		d.reapplySched()
	}
}

// endBeat stops r's thread, counts what it sent, and gives the engine its
// Adver_Timer back if it still paces (an advert due at once). Stop returns
// once the thread is gone: whatever the loop sends next (a priority 0
// advert, an advert with a new priority) is not followed by one of the old
// beat's.
func (d *Daemon) endBeat(r beatRun, now time.Time) {
	if err := r.b.Stop(); err != nil {
		d.log.Error("advert thread", "instance", r.in.spec.name, "err", err)
	}
	d.beatFailures(&r)
	r.in.e.Sent(r.b.State().Sent)
	r.in.e.Unpace(now) // nothing if the engine took the timer back itself
}

// beatFailures logs the sends r's thread could not make since the last
// look (at most one line per beatRenew, where the loop logs each).
func (d *Daemon) beatFailures(r *beatRun) {
	st := r.b.State()
	if st.Failed > r.failed {
		d.log.Warn("send advert", "instance", r.in.spec.name, "failed", st.Failed-r.failed, "err", st.Err, "by", "advert thread")
		r.failed = st.Failed
	}
}

// stopBeat ends in's thread, if it has one, at once: before the loop
// sends an advert the engine made out of the beat's turn, and before in's
// socket closes.
func (d *Daemon) stopBeat(in *instance) {
	if k := slices.IndexFunc(d.beats.runs, func(r beatRun) bool { return r.in == in }); k >= 0 {
		d.endBeat(d.beats.runs[k], d.now())
		d.beats.runs = slices.Delete(d.beats.runs, k, k+1)
	}
}

// instStatus is in's engine's status with the adverts its running thread
// has sent so far counted (its earlier threads' are in the engine's
// counters): what status, the metrics and the dumps report.
func (d *Daemon) instStatus(in *instance) vrrp.Status {
	st := in.e.Status()
	for _, r := range d.beats.runs {
		if r.in == in {
			st.Counters.Sent += r.b.State().Sent
		}
	}
	return st
}
