package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"vigil/bgp"
	"vigil/bgp/speaker"
	"vigil/config"
	"vigil/control"
	"vigil/lb"
	"vigil/vrrp"
)

// BGP (a vigil extension): each bgp_instance is a speaker that announces
// the addresses of the virtual servers this director can serve (quorum,
// and their rules in the kernel) and the VIPs of the VRRP instances it is
// master of. What to announce is decided purely (package bgp) after every
// loop step that could change it; the speakers send the difference off
// the loop. Nothing here exists without a bgp_instance block.

type bgpState struct {
	runs map[string]*bgpRun
	// last is what the decision was computed from, to skip recomputing
	// when nothing it reads changed.
	last      bgpKey
	decisions []bgp.Decision
	stopping  bool
	cfgGen    uint64
	// since is, per service, what its announcement waits on (ready,
	// quorum, applied backends) and when that last changed; holdUntil is
	// when a prefix held by announce_delay is due (the loop wakes then).
	since     map[string]bgpSince
	holdUntil time.Time
	// bfdRelease is the earliest end of a neighbor's bfd_holddown (the
	// loop wakes then to let its BGP session run); zero: none pending.
	bfdRelease time.Time
}

type bgpSince struct {
	key string
	at  time.Time
}

type bgpKey struct {
	modelGen, appliedGen, cfgGen uint64
	masters                      string
	stopping                     bool
}

type bgpRun struct {
	cfg    *config.BGPInstance
	sp     bgpSpeaker
	cancel context.CancelFunc
	done   chan struct{}
	// disabled are the neighbors held down by their BFD session, with
	// why (`vigil status`).
	disabled map[netip.Addr]string
	// holds damp each BFD-guarded neighbor's flaps (bfd_holddown); kept
	// across reloads, since they are the BFD session's history.
	holds map[netip.Addr]*bgp.Holddown
	// gate carries out the neighbors' disables and enables in order, off
	// the loop: each is a round trip to vigil-bgp (and gobgp's own
	// queue), and the loop sends VRRP adverts (nil in the fake-host lab,
	// which runs the daemon's slow work inline too: at once). A reload's
	// new neighbors go the same way, in order with them.
	gate *slowWork
}

// startBGP starts a speaker per bgp_instance; none without one.
func (d *Daemon) startBGP(cfg *config.Config) error {
	if len(cfg.BGPInstances) == 0 {
		return nil
	}
	d.bgp = &bgpState{runs: map[string]*bgpRun{}, since: map[string]bgpSince{}}
	for _, bi := range cfg.BGPInstances {
		if err := d.startSpeaker(bi); err != nil {
			d.stopBGP()
			return err
		}
	}
	return nil
}

func (d *Daemon) speakerConfig(bi *config.BGPInstance) speaker.Config {
	sc := speaker.Config{Name: bi.Name, LocalAS: bi.LocalAS, RouterID: bi.RouterID, Neighbors: speakerNeighbors(bi)}
	if !sc.RouterID.IsValid() {
		sc.RouterID = d.defaultRouterID(sc.Neighbors)
	}
	return sc
}

// speakerNeighbors are bi's neighbors as the speaker takes them.
func speakerNeighbors(bi *config.BGPInstance) []speaker.Neighbor {
	var out []speaker.Neighbor
	for _, n := range bi.Neighbors {
		out = append(out, speaker.Neighbor{Addr: n.Addr, RemoteAS: n.RemoteAS, HoldTime: n.HoldTime, Password: n.Password, Port: n.Port})
	}
	return out
}

// defaultRouterID is the IPv4 source address towards the first IPv4
// neighbor, else the first global IPv4 address of the host.
func (d *Daemon) defaultRouterID(ns []speaker.Neighbor) netip.Addr {
	for _, n := range ns {
		if !n.Addr.Is4() {
			continue
		}
		if a, err := d.host.routeSource(n.Addr); err == nil && a.Is4() {
			return a
		}
	}
	as, _ := d.host.ifaceAddrs("")
	for _, p := range as {
		if ip := p.Addr(); ip.Is4() && !ip.IsLoopback() {
			return ip
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

func (d *Daemon) startSpeaker(bi *config.BGPInstance) error {
	sp := d.host.newSpeaker(d.speakerConfig(bi), d.log)
	// The speakers outlive the loop's context: at shutdown they withdraw
	// first and stop last (drainBGP).
	ctx, cancel := context.WithCancel(context.Background())
	if err := sp.Start(ctx); err != nil {
		cancel()
		return fmt.Errorf("%s: %w", bi.Pos, err)
	}
	r := &bgpRun{cfg: bi, sp: sp, cancel: cancel, done: make(chan struct{}), disabled: map[netip.Addr]string{}, holds: map[netip.Addr]*bgp.Holddown{}}
	if d.work != nil {
		r.gate = newSlowWork()
	}
	go func() {
		defer close(r.done)
		sp.Run(ctx)
	}()
	d.bgp.runs[bi.Name] = r
	d.gateAll(d.host.now(), r)
	d.bgp.last = bgpKey{} // recompute
	d.bgp.cfgGen++
	d.log.Info("bgp instance started", "bgp_instance", bi.Name, "local_as", bi.LocalAS, "router_id", sp.Config().RouterID.String(), "neighbors", len(bi.Neighbors))
	return nil
}

// gateAll holds down the neighbors whose BFD session is not up (or whose
// flaps still hold them down), and lets the others run (after a start or
// a reload).
func (d *Daemon) gateAll(now time.Time, r *bgpRun) {
	for a := range r.holds {
		if r.bfdOf(a) == "" {
			delete(r.holds, a) // a neighbor no longer guarded by BFD, or gone
		}
	}
	for _, n := range r.cfg.Neighbors {
		d.gateByBFD(now, r, n, "BFD session "+n.BFD+" is not up", false)
	}
	d.nextBFDRelease(now)
}

// gateByBFD lets neighbor n's BGP session run or holds it down: down while
// its bfd_instance is not Up, and after the session comes back from a
// flap until its bfd_holddown ends (bgp.Holddown), when the loop wakes
// for it (bfdRelease). why says why BFD is down; flap, whether it fell
// (a local AdminDown, or a state found at a start or reload, is none).
func (d *Daemon) gateByBFD(now time.Time, r *bgpRun, n *config.BGPNeighbor, why string, flap bool) {
	if n.BFD == "" {
		d.gateNeighbor(r, n, true, "")
		return
	}
	h := r.holds[n.Addr]
	if h == nil {
		h = &bgp.Holddown{}
		r.holds[n.Addr] = h
	}
	p := bgp.HoldParams{Base: n.BFDHolddown, Max: n.BFDHolddownMax}
	if !d.bfd.up[n.BFD] {
		if flap {
			h.Down(now, p)
		} else {
			h.Stop()
		}
		if hold := p.Hold(h.Flaps()); flap && hold > 0 {
			why = fmt.Sprintf("%s; flap %d: BGP waits %v once BFD is back up (bfd_holddown)", why, h.Flaps(), hold)
		}
		d.gateNeighbor(r, n, false, why)
		return
	}
	wasUp := h.IsUp()
	if rel := h.Up(now, p); now.Before(rel) {
		if !wasUp {
			d.log.Info("bgp neighbor held down after BFD flaps", "bgp_instance", r.cfg.Name, "neighbor", n.Addr.String(),
				"bfd_instance", n.BFD, "flaps", h.Flaps(), "hold", rel.Sub(now).Round(time.Millisecond))
		}
		return
	}
	d.gateNeighbor(r, n, true, "BFD session "+n.BFD+" is up")
}

// nextBFDRelease finds the earliest pending bfd_holddown end.
func (d *Daemon) nextBFDRelease(now time.Time) {
	var t time.Time
	for _, r := range d.bgp.runs {
		for _, h := range r.holds { // only BFD-guarded neighbors have one (gateAll)
			if h.Holding(now) && (t.IsZero() || h.Release().Before(t)) {
				t = h.Release()
			}
		}
	}
	d.bgp.bfdRelease = t
}

// gateNeighbor tears a neighbor's session down or lets it run again.
func (d *Daemon) gateNeighbor(r *bgpRun, n *config.BGPNeighbor, enabled bool, reason string) {
	if _, off := r.disabled[n.Addr]; off == !enabled {
		return
	}
	if enabled {
		delete(r.disabled, n.Addr)
	} else {
		r.disabled[n.Addr] = reason
	}
	sp, name, addr, log := r.sp, r.cfg.Name, n.Addr, d.log
	r.gate.do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := sp.SetEnabled(ctx, addr, enabled, reason); err != nil {
			log.Error("bgp neighbor follows BFD", "bgp_instance", name, "neighbor", addr.String(), "err", err)
			return
		}
		log.Info("bgp neighbor follows BFD", "bgp_instance", name, "neighbor", addr.String(), "enabled", enabled, "reason", reason)
	})
}

// bgpFollowBFD runs on the loop when BFD session name changes: the BGP
// sessions it guards go down with it and come back with it, once their
// bfd_holddown allows. flap is false for a local AdminDown.
func (d *Daemon) bgpFollowBFD(now time.Time, name, reason string, flap bool) {
	if d.bgp == nil {
		return
	}
	for _, r := range d.bgp.runs {
		for _, n := range r.cfg.Neighbors {
			if n.BFD == name {
				d.gateByBFD(now, r, n, "BFD session "+name+": "+reason, flap)
			}
		}
	}
	d.nextBFDRelease(now)
}

// bfdReleaseDue lets the neighbors whose bfd_holddown has ended run.
func (d *Daemon) bfdReleaseDue(now time.Time) {
	if d.bgp.bfdRelease.IsZero() || now.Before(d.bgp.bfdRelease) {
		return
	}
	for _, r := range d.bgp.runs {
		for _, n := range r.cfg.Neighbors {
			if n.BFD != "" && d.bfd.up[n.BFD] {
				d.gateByBFD(now, r, n, "", false)
			}
		}
	}
	d.nextBFDRelease(now)
}

// heldDown says why the daemon keeps neighbor addr's session down, for
// `vigil status`: its BFD session down, or its bfd_holddown running.
func (r *bgpRun) heldDown(now time.Time, addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return ""
	}
	why, off := r.disabled[a]
	if !off {
		return ""
	}
	if h := r.holds[a]; h != nil && h.Holding(now) {
		flaps := "1 flap"
		if h.Flaps() != 1 {
			flaps = fmt.Sprintf("%d flaps", h.Flaps())
		}
		return fmt.Sprintf("bfd_holddown after %s of BFD session %s: %v more", flaps, r.bfdOf(a), h.Release().Sub(now).Round(time.Millisecond))
	}
	return why
}

// bfdOf is the bfd_instance guarding neighbor a.
func (r *bgpRun) bfdOf(a netip.Addr) string {
	for _, n := range r.cfg.Neighbors {
		if n.Addr == a {
			return n.BFD
		}
	}
	return ""
}

func (r *bgpRun) stop() {
	r.gate.close()
	r.sp.Stop()
	r.cancel()
	<-r.done
}

// stopBGP stops every speaker at once (a NOTIFICATION Cease to each
// neighbor, which withdraws our routes at the routers).
func (d *Daemon) stopBGP() {
	if d.bgp == nil {
		return
	}
	for name, r := range d.bgp.runs {
		r.stop()
		delete(d.bgp.runs, name)
	}
	d.bgp = nil
}

// withdrawBGP hands every speaker an empty set of routes (shutdown): the
// withdrawals go out off the loop.
func (d *Daemon) withdrawBGP() {
	if d.bgp == nil || d.bgp.stopping {
		return
	}
	d.bgp.stopping = true
	d.pushBGP()
}

// drainBGP runs first at shutdown: withdraw every route, keep forwarding
// for the longest drain_time so that packets the routers already sent,
// and flows they move to the other directors, still find this director's
// rules; then close the sessions. The data plane goes after this.
func (d *Daemon) drainBGP() {
	if d.bgp == nil {
		return
	}
	d.withdrawBGP()
	var drain time.Duration
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	for _, r := range d.bgp.runs {
		if err := r.sp.Sync(ctx); err != nil {
			d.log.Warn("bgp withdraw at shutdown did not finish", "bgp_instance", r.cfg.Name, "err", err)
		}
		drain = max(drain, r.cfg.DrainTime)
	}
	cancel()
	if drain > 0 {
		d.log.Info("bgp routes withdrawn; draining before the rules go", "drain_time", drain)
		time.Sleep(drain)
	}
	d.stopBGP()
}

// reloadBGP makes the speakers follow a new configuration: removed blocks
// stop (their routes withdrawn), new ones start, a changed AS or router
// ID restarts the speaker, changed neighbors are replaced.
func (d *Daemon) reloadBGP(cfg *config.Config) (changes, errs []string) {
	if len(cfg.BGPInstances) == 0 {
		if d.bgp != nil {
			changes = append(changes, "bgp stopped")
			d.stopBGP()
		}
		return changes, nil
	}
	if d.bgp == nil {
		if err := d.startBGP(cfg); err != nil {
			return nil, []string{err.Error()}
		}
		return []string{"bgp started"}, nil
	}
	want := map[string]*config.BGPInstance{}
	for _, bi := range cfg.BGPInstances {
		want[bi.Name] = bi
	}
	for name, r := range d.bgp.runs {
		if want[name] == nil {
			changes = append(changes, "bgp_instance "+name+" removed")
			r.stop()
			delete(d.bgp.runs, name)
		}
	}
	for _, bi := range cfg.BGPInstances {
		r := d.bgp.runs[bi.Name]
		nc := d.speakerConfig(bi)
		switch {
		case r == nil:
			changes = append(changes, "bgp_instance "+bi.Name+" added")
		case r.sp.Config().LocalAS != nc.LocalAS || r.sp.Config().RouterID != nc.RouterID:
			changes = append(changes, "bgp_instance "+bi.Name+" restarted: its AS or router ID changed")
			r.stop()
			delete(d.bgp.runs, bi.Name)
		default:
			// r.cfg is what the loop last asked the speaker for, whatever
			// its worker has carried out so far.
			if old := speakerNeighbors(r.cfg); !slices.Equal(old, nc.Neighbors) {
				changes = append(changes, "bgp_instance "+bi.Name+" neighbors changed")
				// A neighbor replaced or removed starts afresh (enabled);
				// one unchanged keeps its state in the speaker, and its
				// hold-down here: disabling it again would be a second
				// DisablePeer, which flips gobgp's AdminDown flag.
				for a := range r.disabled {
					if !speaker.Unchanged(old, nc.Neighbors, a) {
						delete(r.disabled, a)
					}
				}
				// On the worker, after the disables and enables queued
				// before it (none reaches a replaced neighbor) and before
				// gateAll's below: a round trip to vigil-bgp (up to 5 s)
				// that the loop, sending VRRP adverts, must not wait for.
				// An error is logged; the reload's answer is given already.
				sp, name, ns, log := r.sp, bi.Name, nc.Neighbors, d.log
				r.gate.do(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					if err := sp.SetNeighbors(ctx, ns); err != nil {
						log.Error("bgp reload: neighbors not applied", "bgp_instance", name, "err", err)
					}
				})
			}
			r.cfg = bi
			d.gateAll(d.host.now(), r)
			continue
		}
		if err := d.startSpeaker(bi); err != nil {
			errs = append(errs, err.Error())
		}
	}
	d.bgp.cfgGen++
	return changes, errs
}

// pushBGP decides what to announce and hands each speaker its routes.
func (d *Daemon) pushBGP() {
	st := d.bgp
	if st == nil {
		return
	}
	now := d.host.now()
	d.bfdReleaseDue(now)
	if !st.holdUntil.IsZero() && !now.Before(st.holdUntil) {
		st.last = bgpKey{} // a held announcement is due
	}
	k := bgpKey{cfgGen: st.cfgGen, stopping: st.stopping}
	var served map[string]bool
	var tables map[string]string
	if b := d.bal; b != nil {
		k.modelGen = b.model.Generation()
		b.state.mu.Lock()
		k.appliedGen, served, tables = b.state.gen, b.state.served, b.state.tables
		b.state.mu.Unlock()
	}
	var masters strings.Builder
	for _, in := range d.insts {
		if len(in.spec.m().bgpAnnounce) > 0 && in.e.State() == vrrp.StateMaster {
			masters.WriteString(in.spec.name + "\n")
		}
	}
	k.masters = masters.String()
	if k == st.last {
		return
	}
	st.last = k
	in := bgp.Input{Stopping: st.stopping, Now: now, Previous: st.decisions, Hold: map[string]time.Duration{}}
	for _, bi := range d.cfg.BGPInstances {
		in.Hold[bi.Name] = bi.AnnounceDelay
	}
	seen := map[string]bool{}
	if b := d.bal; b != nil {
		// The announce lines come from the running configuration: a
		// reload that changes only them keeps the balancer as it is.
		byKey := map[string]*config.VirtualServer{}
		for _, vs := range d.cfg.VirtualServers {
			byKey[vs.Key()] = vs
		}
		for _, s := range b.specs {
			vs := b.quorum[s.Name()]
			if vs != nil {
				vs = byKey[vs.Key()]
			}
			if vs == nil || len(vs.BGPAnnounce) == 0 {
				continue
			}
			q, _ := b.model.QuorumUp(s.Name())
			key := fmt.Sprint(q, served[s.Name()], tables[s.Name()])
			since, ok := st.since[s.Name()]
			if !ok || since.key != key {
				since = bgpSince{key: key, at: now}
				st.since[s.Name()] = since
			}
			seen[s.Name()] = true
			in.Services = append(in.Services, bgp.Service{Source: vs.Key(), VIP: s.VIP, Quorum: q, Ready: served[s.Name()], Since: since.at, Announce: vs.BGPAnnounce})
		}
	}
	for name := range st.since {
		if !seen[name] {
			delete(st.since, name)
		}
	}
	for _, i := range d.insts {
		if len(i.spec.m().bgpAnnounce) == 0 {
			continue
		}
		bi := bgp.Instance{Name: i.spec.name, Master: i.e.State() == vrrp.StateMaster, Announce: i.spec.m().bgpAnnounce}
		for v := range i.vips() {
			bi.VIPs = append(bi.VIPs, v.Addr())
		}
		slices.SortFunc(bi.VIPs, netip.Addr.Compare)
		in.Instances = append(in.Instances, bi)
	}
	st.decisions = bgp.Decide(in)
	st.holdUntil = time.Time{}
	for _, dc := range st.decisions {
		if !dc.HoldUntil.IsZero() && (st.holdUntil.IsZero() || dc.HoldUntil.Before(st.holdUntil)) {
			st.holdUntil = dc.HoldUntil
		}
	}
	routes := bgp.Routes(st.decisions)
	for name, r := range st.runs {
		r.sp.Set(routes[name])
	}
}

// tableKeys says, per service of des, what its table is built from: its
// backends and their weights.
func tableKeys(des lb.Desired) map[string]string {
	out := make(map[string]string, len(des.Services))
	for _, s := range des.Services {
		var b strings.Builder
		for _, be := range s.Backends {
			fmt.Fprintf(&b, "%s/%d ", be.AddrPort(), be.Weight)
		}
		out[s.Name] = b.String()
	}
	return out
}

// servedServices lists the services the rules of des serve: active, with
// quorum and a real server, and for DR one whose MAC is known.
func servedServices(des lb.Desired) map[string]bool {
	out := make(map[string]bool, len(des.Services))
	for _, s := range des.Services {
		if !s.Active || s.Sorry || len(s.Backends) == 0 {
			continue
		}
		ok := s.Method != lb.DR
		for _, be := range s.Backends {
			ok = ok || !be.MAC.IsZero()
		}
		out[s.Name] = ok
	}
	return out
}

// wakeLoop makes the loop run a turn (its flush and pushes) from another
// goroutine: after an apply, which may make a virtual server ready to
// announce.
func (d *Daemon) wakeLoop() {
	if d.poll != nil {
		d.poll.post(func(time.Time) {})
	}
}

// bgpStatus reports the speakers for `vigil status`.
func (d *Daemon) bgpStatus() []control.BGPStatus {
	if d.bgp == nil {
		return nil
	}
	byInst := map[string][]bgp.Decision{}
	for _, dc := range d.bgp.decisions {
		byInst[dc.Instance] = append(byInst[dc.Instance], dc)
	}
	var out []control.BGPStatus
	for _, bi := range d.cfg.BGPInstances {
		r := d.bgp.runs[bi.Name]
		if r == nil {
			continue
		}
		bs := control.BGPStatus{Name: bi.Name, LocalAS: bi.LocalAS, RouterID: r.sp.Config().RouterID.String(), Sessions: []control.BGPPeerStatus{}, Routes: []control.BGPRoute{}}
		now := d.host.now()
		for _, s := range r.sp.Sessions() {
			bs.Sessions = append(bs.Sessions, control.BGPPeerStatus{Peer: s.Neighbor, Instance: bi.Name, RemoteAS: s.RemoteAS, State: s.State, Since: s.Since,
				Flaps: s.Flaps, LastError: s.LastError, LastErrorAt: s.LastErrorAt, Advertised: s.Announced, HeldDown: r.heldDown(now, s.Neighbor)})
		}
		for _, dc := range byInst[bi.Name] {
			cr := control.BGPRoute{Prefix: dc.Prefix.String(), Announced: dc.Announced, Reasons: dc.Reasons}
			for _, c := range dc.Communities {
				cr.Communities = append(cr.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
			}
			if dc.HasMED {
				m := dc.MED
				cr.MED = &m
			}
			bs.Routes = append(bs.Routes, cr)
		}
		out = append(out, bs)
	}
	return out
}
