package daemon

import (
	"time"

	"vigil/internal/inet"
	"vigil/lb"
)

// periodicInterval is the period of the loop's housekeeping tick: the
// MACs of DR real servers (refreshMACs), the link-layer addresses IPv6
// bfd_takeover needs (learnTakeoverLLAddrs), the connection counts of
// lc/wlc/sed/nq services (countConns), the reset flows of real servers
// that left while connections to them were established (sweepFlows) and
// the scheduling setting of runtime threads started since the last look
// (reapplySched).
const periodicInterval = 2 * time.Second

// periodicTick is the housekeeping ticker and whether it runs.
type periodicTick struct {
	t  ticker
	on bool
}

// periodicWork reports whether the configuration gives the tick anything
// to do. Most do not (VRRP only, NAT with rr): their tick woke the daemon
// every 2 s for nothing, and each wake-up also woke the Go runtime's
// sysmon thread and a second runtime thread: an idle daemon with one
// instance at advert_int 1 went from 5.5 to 1.4 wake-ups/s without it
// (keepalived: 1.1; docs/benchmarks.md, footprint).
func (d *Daemon) periodicWork() bool {
	if b := d.bal; b != nil {
		if b.state != nil && b.state.lingering.Load() > 0 {
			return true // sweepFlows
		}
		for _, s := range b.specs {
			if s.Method == lb.DR || s.NeedsConnCounts() {
				return true
			}
		}
	}
	for _, in := range d.insts {
		if len(in.spec.m().bfdTakeover) > 0 && in.e.Config().Family == inet.IPv6 {
			return true
		}
	}
	return d.sched.rt != 0 || d.sched.niceSet
}

// setPeriodic starts or stops the tick to match periodicWork; it runs on
// the loop after the start, a reload and a change of scheduling.
func (d *Daemon) setPeriodic() {
	p := &d.periodic
	if p.t == nil {
		return
	}
	want := d.periodicWork()
	switch {
	case want && !p.on:
		p.t.Reset(periodicInterval)
	case !want && p.on:
		p.t.Stop()
	}
	p.on = want
}
