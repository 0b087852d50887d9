package daemon

import (
	"time"

	"golang.org/x/sys/unix"
)

// schedState is the scheduling of the loop's thread: the thread that sends
// and receives every advert (see poller). keepalived applies the same
// global_defs keywords to its VRRP process; vigil applies them to that
// thread, which is the part of the process whose lateness makes a backup
// declare a live master dead.
type schedState struct {
	rt       int           // current SCHED_RR priority; 0: SCHED_OTHER
	maxAuto  int           // max_auto_priority; <= 0: off
	minDelay time.Duration // min_auto_priority_delay
	changed  bool          // the thread's scheduling was changed
}

// applySched sets the loop thread's scheduling from global_defs. The loop
// goroutine is locked to its thread when this runs.
func (d *Daemon) applySched() {
	g := d.cfg.Global
	st := &d.sched
	st.maxAuto = g.MaxAutoPriority
	st.minDelay = g.MinAutoPriorityDelay
	if st.minDelay <= 0 {
		st.minDelay = time.Second // keepalived's default
	}
	if g.VRRPNoSwap {
		// MCL_ONFAULT locks pages as they are touched instead of
		// populating every mapping (the Go heap reserves far more address
		// space than it uses).
		if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
			d.log.Warn("vrrp_no_swap: lock memory", "err", err)
		} else {
			d.log.Info("vrrp_no_swap: memory locked")
		}
	}
	if g.VRRPPrioritySet {
		// PRIO_PROCESS with a thread id sets that thread's nice value.
		if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), g.VRRPPriority); err != nil {
			d.log.Warn("vrrp_priority: set the advert thread's nice value", "nice", g.VRRPPriority, "err", err)
		} else {
			st.changed = true
			d.log.Info("vrrp_priority: advert thread's nice value set", "nice", g.VRRPPriority)
		}
	}
	if g.VRRPRTPriority > 0 {
		d.setRT(g.VRRPRTPriority, "vrrp_rt_priority")
	}
}

// setRT puts the loop thread in SCHED_RR at prio.
func (d *Daemon) setRT(prio int, why string) bool {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR, Priority: uint32(prio)}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		d.log.Warn(why+": set real-time scheduling of the advert thread", "priority", prio, "err", err)
		return false
	}
	d.sched.rt, d.sched.changed = prio, true
	d.log.Info(why+": advert thread runs SCHED_RR", "priority", prio)
	return true
}

// autoPriority is max_auto_priority: a loop that woke lag late for its
// deadline goes real-time, then one priority higher each further time,
// up to the maximum.
func (d *Daemon) autoPriority(lag time.Duration) {
	st := &d.sched
	if st.maxAuto <= 0 || lag < st.minDelay || st.rt >= st.maxAuto {
		return
	}
	d.setRT(st.rt+1, "max_auto_priority (woke "+lag.Round(time.Microsecond).String()+" late)")
}

// resetSched gives the thread back as it was, before the loop unlocks it.
func (d *Daemon) resetSched() {
	if !d.sched.changed {
		return
	}
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 0} // SCHED_OTHER
	_ = unix.SchedSetAttr(0, &attr, 0)
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 0)
	d.sched = schedState{}
}
