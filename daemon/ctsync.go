package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"vigil/config"
	"vigil/control"
	"vigil/ctsync"
	"vigil/lb"
	"vigil/vrrp"
)

// Connection sync (lvs_sync_daemon, package ctsync): the daemon creates the
// Syncer, tells it which virtual servers' flows to sync and whether this
// director sends (MASTER of the sync instance) or keeps a copy (any other
// state), and orders a takeover's work so that the copy is in the kernel's
// conntrack table before the load-balancing rules and the VIPs are claimed.
//
// The hold rule: a director whose sync starts as a backup (at start, or
// when a reload restarts the sync) asks its peers for their whole table
// and does not preempt until it has it (Syncer.Synced) or syncHoldMax has
// passed: its instance runs as if configured nopreempt meanwhile. A master
// that fails is still replaced at once (nopreempt never stops a backup
// whose Master_Down_Timer fires), so a pair that has no master comes up
// whatever the sync does; only a director that would take over from a
// working master waits for the table.

// syncHoldMax bounds the hold: a peer that never answers (an old vigil, a
// firewall on the sync port) delays preemption by this much at most.
const syncHoldMax = 10 * time.Second

// syncInstallTimeout bounds the install of the copy on a takeover; the
// VIPs are claimed after it whatever it did.
const syncInstallTimeout = 5 * time.Second

// syncState is the daemon's connection sync; the loop owns every field but
// the install record, which d.work writes.
type syncState struct {
	cfg      *config.SyncDaemon // as running; nil: off
	s        syncer             // nil when off or when it failed to start
	cancel   context.CancelFunc
	started  time.Time
	err      string // why the configured sync is not running
	services []ctsync.Service
	master   bool // what the Syncer was last told

	// holding: the sync instance runs with NoPreempt until synced.
	holding bool
	// preHold names the instances that start held (syncPrepare): the
	// hold must be in the engine from its first step, or a backup whose
	// Master_Down_Timer ran out while the daemon was still starting would
	// preempt before the sync even began.
	preHold  map[string]bool
	synced   bool
	syncedAt time.Time
	gen      int // start generation: posts from an older start are ignored

	inst syncInstall
}

// syncInstall records the installs done on takeovers.
type syncInstall struct {
	mu       sync.Mutex
	count    uint64 // takeovers that installed
	entries  int    // entries the last install wrote
	took     time.Duration
	at       time.Time
	err      string
	failures uint64
}

// syncConfig maps lvs_sync_daemon to the engine's Config: the instance's
// unicast peers (and its advert source) when it has them on the sync
// interface, else multicast. iface is the instance's interface (its
// block's, a use_vmac interface's parent) and eng its engine's
// configuration; both are empty without a running instance.
func syncConfig(sd *config.SyncDaemon, iface string, eng vrrp.Config, logf func(string, ...any)) ctsync.Config {
	c := ctsync.Config{
		Interface: sd.Interface,
		Port:      uint16(sd.Port),
		TTL:       uint8(sd.TTL),
		MaxLen:    sd.MaxLen,
		SyncID:    uint8(sd.ID),
		Key:       sd.AuthKey,
		Logf:      logf,
	}
	// keepalived's IPVS sync daemon always multicasts on INTERFACE; vigil
	// uses the instance's unicast peers instead where multicast is
	// likely unwelcome: when the instance is unicast on that very
	// interface (its peers are reached through it).
	if len(eng.Peers) > 0 && iface == sd.Interface {
		c.Peers = slices.Clone(eng.Peers)
		c.Source = eng.SrcAddr
	} else {
		c.Group = sd.Group
	}
	return c
}

// syncSource is the director's own address on the sync interface: its
// first address of the group's family (IPv4 by default) that no instance
// floats. Left to the kernel, the source of a datagram could be a VIP
// or an FNAT local address the master holds on that interface, which the
// peers do not know as a director; invalid when there is none (the
// engine then lets the kernel choose).
func (d *Daemon) syncSource(ifname string, group netip.Addr, lookup addrLookup) netip.Addr {
	v6 := group.IsValid() && group.Is6()
	floating := map[netip.Addr]bool{}
	for _, in := range d.insts {
		for v := range in.vips() {
			floating[v.Addr()] = true
		}
	}
	addrs, err := lookup(ifname)
	if err != nil {
		return netip.Addr{}
	}
	for _, p := range addrs {
		a := p.Addr()
		if a.Is6() != v6 || floating[a] || a.IsLoopback() || (v6 && a.IsLinkLocalUnicast()) {
			continue
		}
		return a
	}
	return netip.Addr{}
}

// syncServices lists the NAT and FNAT services of the LB model, whose
// flows are synced. A fwmark service has no address to match a flow on,
// and DR needs no sync (Maglev: every director picks the same server).
func syncServices(specs []lb.ServiceConfig) []ctsync.Service {
	var out []ctsync.Service
	for _, sc := range specs {
		if !sc.VIP.IsValid() || (sc.Method != lb.NAT && sc.Method != lb.FNAT) {
			continue
		}
		proto := uint8(6)
		switch sc.Proto {
		case lb.UDP:
			proto = 17
		case lb.SCTP:
			proto = 132
		}
		out = append(out, ctsync.Service{VIP: sc.VIP, Proto: proto, Port: sc.Port})
	}
	return out
}

// syncInst is the running instance lvs_sync_daemon follows, or nil.
func (d *Daemon) syncInst() *instance {
	if d.sync.cfg == nil {
		return nil
	}
	for _, in := range d.insts {
		if in.spec.name == d.sync.cfg.Instance {
			return in
		}
	}
	return nil
}

// syncPrepare, before the instances start, names those that start held:
// the sync instance and the other members of its vrrp_sync_group.
func (d *Daemon) syncPrepare(cfg *config.Config) {
	d.sync.preHold = syncHeld(cfg)
}

// syncHeld names the instances the hold applies to.
func syncHeld(cfg *config.Config) map[string]bool {
	sd := cfg.Global.LVSSyncDaemon
	if sd == nil {
		return nil
	}
	held := map[string]bool{sd.Instance: true}
	for _, g := range cfg.SyncGroups {
		if slices.Contains(g.Members, sd.Instance) {
			for _, m := range g.Members {
				held[m] = true
			}
		}
	}
	return held
}

// syncEngineConfig is the configuration an instance's engine starts with:
// its own, with NoPreempt while the sync holds it.
func (d *Daemon) syncEngineConfig(b built) vrrp.Config {
	c := b.engine
	if d.sync.preHold[b.spec.name] {
		c.NoPreempt = true
	}
	return c
}

// startSync starts the sync cfg configures, if any. A sync that cannot
// start is logged and reported (status, doctor), never fatal: VRRP and the
// load balancer run without it.
func (d *Daemon) startSync(ctx context.Context, now time.Time, cfg *config.Config) {
	st := &d.sync
	st.cfg = cfg.Global.LVSSyncDaemon
	st.gen++
	st.err, st.synced, st.syncedAt, st.started, st.master = "", false, time.Time{}, now, false
	// Engines started held (syncPrepare) are released below unless the
	// sync runs as a backup.
	st.holding, st.preHold = len(st.preHold) > 0, nil
	if st.cfg == nil {
		return
	}
	in := d.syncInst()
	if in == nil {
		st.err = fmt.Sprintf("vrrp_instance %s is not running", st.cfg.Instance)
		d.log.Error("connection sync not started", "instance", st.cfg.Instance, "err", st.err)
		return
	}
	defer func() {
		if st.holding && (st.s == nil || st.master) {
			d.syncHold(now, in, false) // nothing to wait for
		}
	}()
	log := d.log.With("sync", st.cfg.Interface)
	scfg := syncConfig(st.cfg, in.spec.iface(), in.e.Config(), func(f string, args ...any) { log.Info(fmt.Sprintf(f, args...)) })
	if !scfg.Source.IsValid() {
		scfg.Source = d.syncSource(st.cfg.Interface, scfg.Group, d.host.ifaceAddrs)
	}
	s, err := d.host.newSyncer(scfg)
	if err == nil {
		sctx, cancel := context.WithCancel(ctx)
		if err = s.Start(sctx); err != nil {
			cancel()
			_ = s.Close()
		} else {
			st.s, st.cancel = s, cancel
		}
	}
	if err != nil {
		st.err = err.Error()
		d.log.Error("connection sync not started", "interface", st.cfg.Interface, "instance", st.cfg.Instance, "err", err)
		return
	}
	d.syncSetServices()
	st.master = in.e.State() == vrrp.StateMaster
	s.SetMaster(st.master)
	// Every director asks: a backup for the master's table, and the
	// request arms the Syncer's own bound on Synced.
	s.RequestFull()
	if st.master {
		st.synced, st.syncedAt = true, now
	}
	d.log.Info("connection sync started", "interface", st.cfg.Interface, "instance", st.cfg.Instance, "id", st.cfg.ID,
		"master", st.master, "authenticated", len(st.cfg.AuthKey) > 0, "services", len(st.services))
	if st.master {
		return
	}
	d.syncHold(now, in, true)
	gen, synced := st.gen, s.Synced()
	go func() {
		t := time.NewTimer(syncHoldMax)
		defer t.Stop()
		why := "the Syncer is synced (a full table arrived, or no peer answered the request)"
		select {
		case <-synced:
		case <-t.C:
			why = fmt.Sprintf("no full table after %v", syncHoldMax)
		case <-ctx.Done():
			return
		}
		d.poll.post(func(now time.Time) { d.syncDone(now, gen, why) })
	}()
}

// syncDone ends the hold of start generation gen.
func (d *Daemon) syncDone(now time.Time, gen int, why string) {
	st := &d.sync
	if gen != st.gen || st.synced {
		return
	}
	st.synced, st.syncedAt = true, now
	d.log.Info("connection sync: the copy is ready; the instance may preempt", "instance", st.cfg.Instance, "why", why, "after", now.Sub(st.started).String())
	if in := d.syncInst(); in != nil {
		d.syncHold(now, in, false)
	}
}

// syncHold makes the sync instance's engine run with NoPreempt (on) or
// with its configured preemption (off), and with it every other member of
// its vrrp_sync_group: a member that preempted would take the whole group,
// the sync instance included, to MASTER.
func (d *Daemon) syncHold(now time.Time, in *instance, on bool) {
	d.sync.holding = on
	held := syncHeld(d.cfg)
	for _, m := range d.insts {
		if m != in && !held[m.spec.name] {
			continue
		}
		// The engine's configuration is the only copy kept (instanceSpec):
		// the hold sets its NoPreempt, and its release puts back the
		// configured one.
		c := m.e.Config()
		c.NoPreempt = on || m.spec.noPreempt
		if err := m.e.Reload(c, now); err != nil {
			d.log.Warn("connection sync: hold preemption", "instance", m.spec.name, "on", on, "err", err)
		}
	}
}

// stopSync stops the sync.
func (d *Daemon) stopSync() {
	st := &d.sync
	st.gen++
	if st.s != nil {
		st.cancel()
		if err := st.s.Close(); err != nil {
			d.log.Warn("connection sync: close", "err", err)
		}
	}
	// A new Syncer starts without services: the next one must be told
	// them even if they did not change (a master without services sends
	// nothing).
	st.s, st.cancel, st.cfg, st.holding, st.services = nil, nil, nil, false, nil
}

// syncSetServices hands the Syncer the LB model's NAT and FNAT services.
func (d *Daemon) syncSetServices() {
	st := &d.sync
	if st.s == nil {
		return
	}
	var specs []lb.ServiceConfig
	if d.bal != nil {
		specs = d.bal.specs
	}
	svcs := syncServices(specs)
	if reflect.DeepEqual(svcs, st.services) && st.services != nil {
		return
	}
	st.services = svcs
	st.s.SetServices(svcs)
}

// syncTransitions is the takeover hook of apply: for transitions of the
// sync instance it returns the work to run on d.work before anything else
// of the Ready (no_accept, the LB claim, the VIPs). On becoming MASTER the
// copy is installed and then the Syncer sends; on leaving MASTER it goes
// back to receiving.
func (d *Daemon) syncTransitions(in *instance, ts []vrrp.Transition) func() {
	st := &d.sync
	if st.s == nil || st.cfg == nil || in.spec.name != st.cfg.Instance || len(ts) == 0 {
		return nil
	}
	master := ts[len(ts)-1].To == vrrp.StateMaster
	if master == st.master {
		return nil
	}
	st.master = master
	s, rec, name := st.s, &st.inst, in.spec.name
	if !master {
		return func() {
			s.SetMaster(false)
			s.RequestFull() // the new master's table, from now on this director's copy
		}
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), syncInstallTimeout)
		start := time.Now()
		n, err := boundedInstall(ctx, s)
		cancel()
		took := time.Since(start)
		s.SetMaster(true)
		rec.mu.Lock()
		rec.count++
		rec.entries, rec.took, rec.at = n, took, start
		rec.err = ""
		if err != nil {
			rec.err = err.Error()
			rec.failures++
		}
		rec.mu.Unlock()
		if err != nil {
			d.log.Error("connection sync: installing the synced connections before claiming the VIPs", "instance", name, "installed", n, "took", took.String(), "err", err)
			return
		}
		d.log.Info("connection sync: synced connections installed before claiming the VIPs", "instance", name, "installed", n, "took", took.String())
	}
}

// boundedInstall runs s.Install and returns when it does or when ctx ends,
// whichever is first: the VIPs wait for the install, but never longer
// than the bound, even if the install itself does not honour ctx.
func boundedInstall(ctx context.Context, s syncer) (int, error) {
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := s.Install(ctx)
		done <- result{n, err}
	}()
	select {
	case r := <-done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("install not done after %v: claiming the VIPs anyway: %w", syncInstallTimeout, ctx.Err())
	}
}

// reloadSync applies a reload: a changed lvs_sync_daemon (or a new or
// removed one) restarts or stops the sync; the services follow the new
// LB model; a hold still in force is put back on an engine the reload
// reconfigured.
func (d *Daemon) reloadSync(now time.Time, cfg *config.Config) []string {
	st := &d.sync
	old, nu := st.cfg, cfg.Global.LVSSyncDaemon
	if !sameSync(old, nu) || (nu != nil && st.s == nil) {
		d.stopSync()
		d.startSync(d.runCtx, now, cfg)
		switch {
		case nu == nil:
			return []string{"connection sync stopped"}
		case old == nil:
			return []string{"connection sync started"}
		}
		return []string{"connection sync restarted"}
	}
	if st.cfg != nil {
		st.cfg = nu
	}
	d.syncSetServices()
	if in := d.syncInst(); in != nil && st.holding {
		d.syncHold(now, in, true)
	}
	return nil
}

// sameSync compares two lvs_sync_daemon settings, positions aside.
func sameSync(a, b *config.SyncDaemon) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Pos, y.Pos, x.AuthPos, y.AuthPos = config.Pos{}, config.Pos{}, config.Pos{}, config.Pos{}
	return reflect.DeepEqual(x, y)
}

// syncStatus is the sync's part of a status snapshot, as the loop holds
// it; Daemon.status adds the engine's counters (addSyncEngine).
func (d *Daemon) syncStatus(now time.Time) *control.SyncStatus {
	st := &d.sync
	if st.cfg == nil {
		return nil
	}
	out := &control.SyncStatus{
		Interface:     st.cfg.Interface,
		Instance:      st.cfg.Instance,
		ID:            st.cfg.ID,
		Port:          st.cfg.Port,
		Authenticated: len(st.cfg.AuthKey) > 0,
		Running:       st.s != nil,
		Error:         st.err,
		Started:       st.started,
		Services:      len(st.services),
		Holding:       st.holding && !st.synced,
		Synced:        st.synced,
		SyncedAt:      st.syncedAt,
		Master:        st.master, // the engine's own view replaces it (addSyncEngine)
	}
	if in := d.syncInst(); in != nil && len(in.e.Config().Peers) > 0 {
		for _, p := range in.e.Config().Peers {
			out.Peers = append(out.Peers, control.SyncPeer{Addr: p.String(), Configured: true})
		}
	} else if st.cfg.Group.IsValid() {
		out.Group = st.cfg.Group.String()
	}
	st.inst.mu.Lock()
	out.Installs, out.InstallFailures = st.inst.count, st.inst.failures
	out.LastInstall = control.SyncInstall{At: st.inst.at, Entries: st.inst.entries, Took: control.Duration(st.inst.took), Error: st.inst.err}
	st.inst.mu.Unlock()
	return out
}

// addSyncEngine adds the Syncer's own counters and peers to out. It runs
// off the loop (Daemon.status): Syncer.Status takes the engine's lock,
// which its receive path may hold while it takes in a large table, and
// the loop must never wait for it.
func addSyncEngine(out *control.SyncStatus, es ctsync.Status, now time.Time) {
	out.Master = es.Master
	out.Entries = es.Entries
	out.Sent, out.Received, out.Installed, out.Deleted = es.Sent, es.Received, es.Installed, es.Deleted
	out.SentPackets, out.ReceivedPackets = es.SentPackets, es.ReceivedPackets
	out.Overflow, out.Gaps, out.FullSyncs, out.FullSent, out.Resyncs = es.Overflow, es.Gaps, es.FullSyncs, es.FullSent, es.Resyncs
	out.Lag = control.Duration(es.Lag)
	out.LastError = es.LastError
	out.LastFullSync = es.LastFullSync
	if len(es.Dropped) > 0 {
		out.Dropped = map[string]uint64{}
		for k, v := range es.Dropped {
			out.Dropped[k] = v
		}
	}
	for _, p := range es.Peers {
		ps := control.SyncPeer{Addr: p.Addr.String(), Master: p.Master, LastSeen: p.LastSeen, Epoch: p.Epoch}
		if !p.LastSeen.IsZero() {
			ps.Age = control.Duration(now.Sub(p.LastSeen))
		}
		merged := false
		for k := range out.Peers {
			if out.Peers[k].Addr == ps.Addr {
				// Two statements: in one tuple assignment ps would be
				// stored before its Configured was set.
				ps.Configured = true
				out.Peers[k], merged = ps, true
			}
		}
		if !merged {
			out.Peers = append(out.Peers, ps)
		}
	}
}
