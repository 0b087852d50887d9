package daemon

import (
	"context"
	"net/netip"
	"slices"
	"time"
)

// Accept mode (RFC 5798 6.4.3, keepalived's no_accept and vrrp_strict): a
// master that is not the address owner and runs with accept mode off drops
// packets addressed to its VIPs. The engine says which instances are in
// that state (Status.AcceptTraffic); acceptmode keeps the kernel's drop
// list equal to their VIPs.

// startNoAccept removes a drop list left by an earlier run (killed before
// it could) and keeps the filter for later. Without nft the filter is
// missing: reported only if an instance needs it.
func (d *Daemon) startNoAccept(bs []built) {
	f, err := d.host.openAcceptFilter()
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = f.Clear(ctx)
		cancel()
	}
	if err != nil {
		d.log.Debug("accept-mode filter unavailable", "err", err)
		for _, b := range bs {
			if b.engine.NoAccept {
				d.log.Error("no_accept cannot be enforced: packets to the VIPs will be accepted", "instance", b.spec.name, "err", err)
				break
			}
		}
	}
	d.noAccept = f // nil without nft; kept after a failed Clear, to retry on the next change
	d.noAcceptFailed.Store(err != nil)
}

// syncNoAccept recounts the instances that run with no_accept after a
// reload and marks the drop list for the loop's next turn, which computes
// it (noAcceptTurn) and queues the change on the worker like any turn's:
// a reload may turn no_accept on or off, add or remove a master's VIPs
// (their changes are in the engines' Readies, applied in that turn) or
// put a master into FAULT. Set here, on the loop and at once, the list ran
// nft on the loop, and lost VIPs that were still on the interface until
// that turn released them (TestNoAcceptReloadOnWorker).
func (d *Daemon) syncNoAccept() {
	d.noAcceptUsers = 0
	for _, in := range d.insts {
		if in.e.Config().NoAccept {
			d.noAcceptUsers++
		}
	}
	d.noAcceptStale = d.noAccept != nil
}

// noAcceptTurn computes the drop list once for a turn whose Readies have
// transitions, or that follows a reload (noAcceptStale), and returns the
// changes of it to run on the worker around the turn's jobs: grow before
// the first (the list with every VIP it held and every VIP it gains, in
// before any new master's VIPs go on the interface) and settle after the
// last (the list without the VIPs of masters that stepped down, once
// those are off the interface). Either is nil when it has nothing to do;
// both are without the filter, or while no instance runs with no_accept
// and the list is empty.
//
// Once per turn, not per transition: 1,000 no_accept masters taking over
// together read every instance's status 1,000 times on the loop and ran
// nft 1,000 times in a row on the worker, each run before its master's
// VIPs, so the last master's VIPs waited for all of them (issue #7).
func (d *Daemon) noAcceptTurn() (grow, settle func()) {
	d.noAcceptStale = false
	if d.noAccept == nil {
		return nil, nil
	}
	failed := d.noAcceptFailed.Load()
	if d.noAcceptUsers == 0 && len(d.noAcceptCur) == 0 && !failed {
		return nil, nil
	}
	want := d.noAcceptList()
	held := make(map[netip.Addr]bool, len(d.noAcceptCur))
	for _, a := range d.noAcceptCur {
		held[a] = true
	}
	union := slices.Clone(d.noAcceptCur)
	for _, a := range want {
		if !held[a] {
			union = append(union, a)
		}
	}
	if len(union) > len(d.noAcceptCur) || failed {
		// A failed change left the kernel's list unknown: set it again.
		grow = d.setNoAccept(union)
	}
	if len(union) > len(want) {
		settle = d.setNoAccept(want)
	}
	d.noAcceptCur = want
	return grow, settle
}

// noAcceptList is the drop list the engines call for: the VIPs of every
// master that must not accept traffic, each once (two instances may
// share a VIP: noAcceptTurn compares the lists by their lengths).
func (d *Daemon) noAcceptList() []netip.Addr {
	var drop []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, in := range d.insts {
		if st := in.e.Status(); st.OwnsVIPs && !st.AcceptTraffic {
			for v := range in.vips() {
				if a := v.Addr(); !seen[a] {
					seen[a] = true
					drop = append(drop, a)
				}
			}
		}
	}
	return drop
}

// setNoAccept is the worker's job that sets the kernel's drop list to
// drop (read only from here on).
func (d *Daemon) setNoAccept(drop []netip.Addr) func() {
	f := d.noAccept
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		before := f.String()
		err := f.Set(ctx, drop)
		d.noAcceptFailed.Store(err != nil)
		if err != nil {
			d.log.Error("no_accept filter", "vips", len(drop), "err", err)
		} else if now := f.String(); now != before {
			d.log.Info("no_accept: packets to these VIPs are dropped", "vips", now)
		}
	}
}

// stopNoAccept removes the drop list on exit.
func (d *Daemon) stopNoAccept() {
	if d.noAccept == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.noAccept.Clear(ctx); err != nil {
		d.log.Warn("remove the no_accept filter", "err", err)
	}
}
