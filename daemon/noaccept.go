package daemon

import (
	"context"
	"net/netip"
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

// syncNoAccept sets the drop list to the VIPs of every master that must
// not accept traffic. The daemon calls it before a new master adds its
// VIPs, so no packet to them is accepted in between.
func (d *Daemon) syncNoAccept() {
	d.noAcceptUsers = 0
	for _, in := range d.insts {
		if in.e.Config().NoAccept {
			d.noAcceptUsers++
		}
	}
	if f := d.prepareNoAccept(); f != nil {
		f()
	}
}

// prepareNoAccept reads the drop list on the loop and returns the nft
// change to run (on d.work or at once); nil without the filter, or when
// no instance runs with no_accept and the list is already empty. Every
// transition asks: computed each time, 1,000 masters' takeover read
// every instance's status 1,000 times and sent the worker 1,000 empty
// lists (about 700 bytes of garbage each, issue #7).
func (d *Daemon) prepareNoAccept() func() {
	if d.noAccept == nil {
		return nil
	}
	if d.noAcceptUsers == 0 && !d.noAcceptHeld && !d.noAcceptFailed.Load() {
		return nil
	}
	var drop []netip.Addr
	for _, in := range d.insts {
		if st := in.e.Status(); st.OwnsVIPs && !st.AcceptTraffic {
			for v := range in.vips() {
				drop = append(drop, v.Addr())
			}
		}
	}
	f := d.noAccept
	d.noAcceptHeld = len(drop) > 0
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
