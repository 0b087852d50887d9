package daemon

import (
	"time"
)

// schedState is the scheduling vigil gives the threads that carry adverts.
// keepalived applies the same global_defs keywords to its VRRP process;
// vigil applies them to every thread of its Go runtime. The loop's own
// thread sends and receives every advert (see poller), but it cannot run
// without the runtime's other threads: returning from epoll_wait it may
// need a P that another thread holds, or a runtime lock another thread
// took, and if that thread is a normal one starved by busy processes the
// loop waits as long as it does. Measured (bench/stall.sh): with only the
// loop thread in SCHED_RR, 6 busy loops on 2 CPUs still made the loop wake
// up to 190 ms late and the backup take over 6 to 16 times in 30 s; with
// every runtime thread in SCHED_RR, 1 to 17 times a minute (keepalived 46-106).
//
// SCHED_RESET_ON_FORK keeps the programs vigil runs (nft, notify and
// tracking scripts, MISC_CHECK) out of it; it also leaves threads the
// runtime creates later in normal scheduling, so the setting is applied
// again to new threads every 2 s (reapplySched).
type schedState struct {
	rt       int // SCHED_RR priority of vigil's threads; 0: SCHED_OTHER
	nice     int
	niceSet  bool
	maxAuto  int           // max_auto_priority; <= 0: off
	minDelay time.Duration // min_auto_priority_delay
	applied  map[int]int   // thread id → the rt priority it was given
	warned   bool
}

// applySched sets the scheduling from global_defs; the loop goroutine is
// locked to its thread when this runs. BFD runs in its own process, which
// bfd_rt_priority / bfd_priority schedule (see bfdScheduling).
func (d *Daemon) applySched() {
	g := d.cfg.Global
	st := &d.sched
	st.maxAuto = g.MaxAutoPriority
	st.minDelay = g.MinAutoPriorityDelay
	if st.minDelay <= 0 {
		st.minDelay = time.Second // keepalived's default
	}
	if g.VRRPNoSwap || g.BFDNoSwap {
		if err := d.host.threads.LockMemory(); err != nil {
			d.log.Warn("vrrp_no_swap/bfd_no_swap: lock memory", "err", err)
		} else {
			d.log.Info("vrrp_no_swap/bfd_no_swap: memory locked")
		}
	}
	switch {
	case g.VRRPRTPriority > 0:
		st.rt = g.VRRPRTPriority
		d.log.Info("vrrp_rt_priority: vigil's threads run SCHED_RR", "priority", st.rt)
	case g.VRRPPrioritySet:
		st.nice, st.niceSet = g.VRRPPriority, true
		d.log.Info("vrrp_priority: vigil's threads run at this nice value", "nice", st.nice)
	}
	// No real-time default (keepalived has none either). Tried, measured
	// and dropped: SCHED_RR 1 for every thread by default cut false
	// failovers under 6 busy loops from 35 to 1-17 a run (keepalived
	// 46-106 beside it), but on the same loaded machine the director
	// failover test's nft applies (a child process, reset to normal
	// scheduling) then took 0.25-1.3 s instead of 0.03-0.28 s and its
	// outage bound failed; the cause is not understood yet.
	d.reapplySched()
}

// reapplySched gives every thread of the process without it the current
// setting.
func (d *Daemon) reapplySched() {
	st := &d.sched
	if st.rt == 0 && !st.niceSet {
		return
	}
	if st.applied == nil {
		st.applied = map[int]int{}
	}
	tids, err := d.host.threads.List()
	if err != nil {
		return
	}
	seen := map[int]bool{}
	for _, tid := range tids {
		seen[tid] = true
		if p, ok := st.applied[tid]; ok && p == st.rt {
			continue
		}
		var serr error
		if st.rt > 0 {
			serr = d.host.threads.SetRT(tid, st.rt)
		} else {
			serr = d.host.threads.SetNice(tid, st.nice)
		}
		if serr != nil {
			if !st.warned {
				d.log.Warn("set the scheduling of vigil's threads (needs CAP_SYS_NICE)", "rt_priority", st.rt, "nice", st.nice, "err", serr)
				st.warned = true
			}
			continue
		}
		st.applied[tid] = st.rt
	}
	for tid := range st.applied {
		if !seen[tid] {
			delete(st.applied, tid)
		}
	}
}

// autoPriority is max_auto_priority: a loop that woke lag late for its
// deadline goes real-time, then one priority higher each further time,
// up to the maximum.
func (d *Daemon) autoPriority(lag time.Duration) {
	st := &d.sched
	if st.maxAuto <= 0 || lag < st.minDelay || st.rt >= st.maxAuto {
		return
	}
	st.rt++
	st.niceSet = false
	defer d.setPeriodic() // new threads need the setting too
	d.log.Warn("max_auto_priority: the event loop woke late; vigil's threads now run SCHED_RR", "late", lag.String(), "priority", st.rt)
	d.reapplySched()
}
