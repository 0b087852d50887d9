package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"vigil/bfd"
	"vigil/bfd/link"
	"vigil/bfd/wire"
	"vigil/check"
	"vigil/config"
	"vigil/control"
	"vigil/internal/inet"
	"vigil/track"
	"vigil/vrrp"
)

// bfdState is the daemon's side of keepalived's bfd_instance: the sessions
// run in the BFD process (link.Process: a child running a link.Runner,
// never behind the loop's nft applies, reloads or garbage collections);
// their changes are posted to the loop (never waiting for it) and become
// track_bfd results, BFD_CHECK verdicts and bfd_takeover events
// (vrrp.PeerDown).
type bfdState struct {
	runner bfdRunner
	cancel context.CancelFunc
	done   chan struct{}

	// Owned by the loop.
	up map[string]bool // session name -> Up
	// checkerUp is what a real server's other checkers last said (id ->
	// up); BFD_CHECK is ANDed with it.
	checkerUp map[string]bool
	// lladdr are the link-layer addresses of IPv6 bfd_takeover's masters
	// (link-local, zoned with the instance's interface) and BFD neighbors
	// (global), learned from the neighbour table while all is well; see
	// takeoverAddr.
	lladdr  map[netip.Addr][6]byte
	relearn bool // the last look scheduled a second one soon
	// sched is the BFD process's scheduling last set.
	sched link.Scheduling
}

// bfdNice is the BFD process's nice value without bfd_priority: above
// everything else on the host by default, since a transmit that waits for
// a CPU is a false Down at the peer (keepalived leaves its BFD process at
// 0 unless bfd_priority says otherwise; benchmarks.md compares both).
const bfdNice = -10

// bfdScheduling is global_defs' scheduling of the BFD process.
func bfdScheduling(g *config.Global) link.Scheduling {
	s := link.Scheduling{RTPriority: g.BFDRTPriority, Nice: bfdNice, Name: g.BFDProcessName}
	if g.BFDPrioritySet {
		s.Nice = g.BFDPriority
	}
	if s.Name == "" {
		s.Name = "vigil_bfd"
	}
	return s
}

// bfdSessions maps the bfd_instance blocks onto the Runner's sessions.
func bfdSessions(cfg *config.Config) []link.Session {
	var out []link.Session
	for _, b := range cfg.BFDInstances {
		s := link.Session{Config: bfd.Config{Name: b.Name, Peer: b.Neighbor, Local: b.Source, MinRx: b.MinRx, MinTx: b.MinTx,
			IdleTx: b.IdleTx, Multiplier: uint8(b.Multiplier), Passive: b.Passive, MaxHops: uint8(b.MaxHops)}, TTL: b.TTL}
		if b.Neighbor.Is6() {
			s.TTL = b.HopLimit
		}
		out = append(out, s)
	}
	return out
}

// startBFD starts (or reconfigures) the sessions of cfg. Sessions start
// Down: unweighted track_bfd holds an instance in FAULT and BFD_CHECK a
// real server down until the peer answers, as in keepalived.
func (d *Daemon) startBFD(ctx context.Context, cfg *config.Config) {
	b := &d.bfd
	if b.up == nil {
		b.up, b.checkerUp = map[string]bool{}, map[string]bool{}
	}
	sessions := bfdSessions(cfg)
	if b.runner == nil {
		if len(sessions) == 0 {
			return
		}
		b.runner = d.host.newBFD(d.log, d.opts.DontRespawn)
		// The subscriber only posts: the loop may be busy, BFD must not
		// wait for it.
		b.runner.Subscribe("", func(ev link.Event) {
			d.poll.post(func(now time.Time) { d.bfdChanged(now, ev) })
		})
		rctx, cancel := context.WithCancel(ctx)
		b.cancel, b.done = cancel, make(chan struct{})
		go func() {
			defer close(b.done)
			if err := b.runner.Run(rctx); err != nil {
				d.log.Error("bfd", "err", err)
				if errors.Is(err, link.ErrNotRespawned) {
					// keepalived -R: a child that died ends the daemon.
					d.log.Error("stopping: the BFD process died and --dont-respawn is set")
					d.poll.post(func(time.Time) { d.stopping = true })
				}
			}
		}()
	}
	if sch := bfdScheduling(&cfg.Global); sch != b.sched {
		b.sched = sch
		if err := b.runner.SetScheduling(sch); err != nil {
			d.log.Warn("bfd_rt_priority/bfd_priority: the BFD process keeps its scheduling (needs CAP_SYS_NICE)", "err", err)
		}
	}
	if err := b.runner.Configure(sessions); err != nil {
		d.log.Error("bfd sessions not started", "err", err)
	}
	names := map[string]bool{}
	for _, s := range sessions {
		names[s.Name] = true
		up, _ := b.runner.Up(s.Name)
		b.up[s.Name] = up
		if d.tracking.results == nil {
			d.tracking.results = track.Results{}
		}
		d.tracking.results.Apply(track.Event{Kind: track.KindBFD, Name: s.Name, OK: up})
	}
	for name := range b.up {
		if !names[name] {
			delete(b.up, name)
			delete(d.tracking.results, track.Key{Kind: track.KindBFD, Name: name})
		}
	}
}

// stopBFD stops the sessions (their peers get AdminDown).
func (d *Daemon) stopBFD() {
	if d.bfd.cancel != nil {
		d.bfd.cancel()
		<-d.bfd.done
		d.bfd.cancel, d.bfd.runner = nil, nil
		d.bfd.sched = link.Scheduling{}
	}
}

// bfdChanged applies one session change on the loop.
func (d *Daemon) bfdChanged(now time.Time, ev link.Event) {
	bi := d.cfg.BFDInstance(ev.Session)
	if bi == nil {
		return
	}
	was := d.bfd.up[ev.Session]
	d.bfd.up[ev.Session] = ev.Up
	if bi.ToVRRP() {
		if was != ev.Up {
			d.tracked(now, track.Event{Kind: track.KindBFD, Name: ev.Session, OK: ev.Up, Detail: ev.Reason})
		}
		// The peer is gone only when the session fell to Down: a local
		// AdminDown (a removed session, the BFD process restarting) is
		// no sign of it.
		if ev.From == wire.Up && ev.To == wire.Down {
			for _, in := range d.insts {
				if slices.Contains(in.spec.m().bfdTakeover, ev.Session) {
					_ = in.e.Step(now, vrrp.PeerDown{Addr: d.takeoverAddr(in, bi),
						Reason: fmt.Sprintf("BFD session %s to %v went down (%s)", ev.Session, bi.Neighbor, ev.Diag)})
				}
			}
		}
		if ev.Up {
			d.learnTakeoverLLAddrs()
		}
	}
	if was != ev.Up {
		// A local AdminDown (a removed session, the BFD process
		// restarting) is no flap of the path for bfd_holddown.
		d.bgpFollowBFD(now, ev.Session, ev.Reason, ev.To != wire.AdminDown)
	}
	if bi.ToChecker() && was != ev.Up {
		d.bfdCheck(ev.Session, ev.Reason)
	}
}

// bfdGate is BFD_CHECK's part of a real server's health: the checkers'
// verdict up, ANDed with every session its BFD_CHECKs name being Up.
func (d *Daemon) bfdGate(e check.Event, rs *config.RealServer, up bool) bool {
	if len(rs.BFDChecks) == 0 {
		return up
	}
	if !strings.HasPrefix(e.Checker, "BFD_CHECK ") {
		if d.bfd.checkerUp == nil {
			d.bfd.checkerUp = map[string]bool{}
		}
		d.bfd.checkerUp[e.Server] = up
	}
	for _, name := range rs.BFDChecks {
		if bi := d.cfg.BFDInstance(name); bi != nil && bi.ToChecker() && !d.bfd.up[name] {
			return false
		}
	}
	return up
}

// bfdCheck re-evaluates the real servers with a BFD_CHECK on session name.
func (d *Daemon) bfdCheck(name, reason string) {
	if d.bal == nil {
		return
	}
	ids := make([]string, 0, len(d.bal.rs))
	for id := range d.bal.rs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		info := d.bal.rs[id]
		if !slices.Contains(info.cfg.BFDChecks, name) {
			continue
		}
		base, ok := d.bfd.checkerUp[id]
		if !ok {
			base = true
		}
		kind := check.ServerDown
		if base && d.bfd.up[name] {
			kind = check.ServerUp
		}
		d.checked(check.Event{Server: id, Kind: kind, Weight: info.weight, Checker: "BFD_CHECK " + name, Detail: reason})
	}
}

// bfdStatus returns the sessions for status, metrics and doctor.
func (d *Daemon) bfdStatus() ([]bfd.Status, map[string]uint64, link.Lateness) {
	if d.bfd.runner == nil {
		return nil, nil, link.Lateness{}
	}
	return d.bfd.runner.Status()
}

// RunsBFD reports whether BFD sessions run (bfd_instance blocks).
func (d *Daemon) RunsBFD() bool { return d.bfd.runner != nil }

// bfdRefs drops track_bfd lines of sessions whose events go to checkers
// only (bfd_instance's `checker`).
func bfdRefs(cfg *config.Config, refs []*config.TrackRef) []*config.TrackRef {
	var out []*config.TrackRef
	for _, r := range refs {
		if bi := cfg.BFDInstance(r.Name); bi != nil && bi.ToVRRP() {
			out = append(out, r)
		}
	}
	return out
}

// bfdSnapshot fills the BFD part of a status document from runner (the
// daemon's, taken on the loop). It runs off the loop: the sessions'
// status is a request to the BFD process.
func bfdSnapshot(runner bfdRunner, s *control.Status) {
	if runner == nil {
		return
	}
	sts, drops, late := runner.Status()
	errs := runner.SendErrors()
	for _, st := range sts {
		bs := control.BFDSessionStatus{Name: st.Name, Peer: st.Peer.String(), State: st.State.String(), RemoteState: st.RemoteState.String(),
			LocalDisc: st.LocalDisc, RemoteDisc: st.RemoteDisc, TxInterval: control.Duration(st.TxInterval),
			RxInterval: control.Duration(st.RxInterval), DetectTime: control.Duration(st.DetectTime),
			MinRx: control.Duration(st.Cfg.MinRx), MinTx: control.Duration(st.Cfg.MinTx), Multiplier: int(st.Cfg.Multiplier),
			RemoteMinRx: control.Duration(st.RemoteMinRx), RemoteMinTx: control.Duration(st.RemoteMinTx),
			RemoteMultiplier: int(st.RemoteMultiplier), Since: st.Since, LastRx: st.LastRx, Sent: st.Sent, Received: st.Received,
			Flaps: st.Flaps, Drops: st.Drops, SendError: errs[st.Name]}
		if st.Local.IsValid() {
			bs.Local = st.Local.String()
		}
		if p, ok := runner.Port(st.Name); ok {
			bs.Port = int(p)
		}
		if !st.LastDown.At.IsZero() {
			bs.LastDown = st.LastDown.Diag.String() + ": " + st.LastDown.Reason
			bs.LastDownDiag = int(st.LastDown.Diag)
			bs.LastDownAt = st.LastDown.At
		}
		if len(bs.Drops) == 0 {
			bs.Drops = nil
		}
		s.BFD = append(s.BFD, bs)
	}
	s.BFDRunner = &control.BFDRunnerStatus{Drops: drops, WakeLateMax: control.Duration(late.Max), Wakes: late.Sends,
		LateOverInterval: late.Over, RxOverflow: late.RxOverflow, HandoffMax: control.Duration(late.Handoff), Restarts: late.Restarts, PID: late.PID}
}

// takeoverAddr is the router a bfd_takeover session's Down is about, as
// the instance in knows its master. It is the session's neighbor_ip,
// except that an IPv6 instance knows its master by the link-local address
// its adverts come from (RFC 5798 section 5.1.2.1) while the session's
// neighbor is usually a global address: the neighbor is that master when
// the neighbour table gave both the same link-layer address on the
// instance's interface (learnTakeoverLLAddrs, before the failure: after
// it the entries may be gone). Then the master's address is returned, and
// the engine's PeerDown matches it.
func (d *Daemon) takeoverAddr(in *instance, bi *config.BFDInstance) netip.Addr {
	peer := bi.Neighbor.Unmap()
	m := in.e.Status().MasterAddr
	if in.e.Config().Family != inet.IPv6 || !peer.Is6() || !m.IsLinkLocalUnicast() || m == peer {
		return peer
	}
	mm, ok1 := d.bfd.lladdr[m.WithZone(in.spec.ifname)]
	pm, ok2 := d.bfd.lladdr[peer]
	if ok1 && ok2 && mm == pm {
		return m
	}
	return peer
}

// takeoverLLWant lists the addresses whose link-layer addresses
// takeoverAddr needs: each IPv6 bfd_takeover instance's current master
// (link-local, zoned) and its sessions' neighbors.
func (d *Daemon) takeoverLLWant() []netip.Addr {
	var want []netip.Addr
	for _, in := range d.insts {
		if len(in.spec.m().bfdTakeover) == 0 || in.e.Config().Family != inet.IPv6 {
			continue
		}
		m := in.e.Status().MasterAddr
		if !m.IsLinkLocalUnicast() || m == in.e.Config().SrcAddr {
			continue // no master known, or this node is it
		}
		want = append(want, m.WithZone(in.spec.ifname))
		for _, name := range in.spec.m().bfdTakeover {
			if bi := d.cfg.BFDInstance(name); bi != nil && bi.Neighbor.Is6() && !bi.Neighbor.IsLinkLocalUnicast() {
				want = append(want, bi.Neighbor.Unmap())
			}
		}
	}
	return want
}

// learnTakeoverLLAddrs reads (and starts resolving, see addr.Neighbours)
// the link-layer addresses takeoverAddr needs. It runs on the loop every
// 2 s and when a session comes Up, so a new master is learned within 2 s.
// An address still wanted keeps its last known link-layer address when
// the table no longer has it (a failed entry after a cut).
func (d *Daemon) learnTakeoverLLAddrs() {
	want := d.takeoverLLWant()
	if len(want) == 0 {
		d.bfd.lladdr = nil
		return
	}
	got, err := d.host.neighbours(want)
	if err != nil {
		d.log.Warn("neighbour table", "err", err)
		return
	}
	next := make(map[netip.Addr][6]byte, len(want))
	missing := false
	for _, a := range want {
		if mac, ok := got[a]; ok {
			next[a] = mac
		} else if mac, ok := d.bfd.lladdr[a]; ok {
			next[a] = mac
		} else {
			missing = true
		}
	}
	d.bfd.lladdr = next
	if missing && !d.bfd.relearn {
		// Neighbour discovery answers within milliseconds on a LAN: look
		// again soon rather than at the next tick (once: an address that
		// stays unresolved waits for the tick).
		d.bfd.relearn = true
		time.AfterFunc(200*time.Millisecond, func() {
			d.poll.post(func(time.Time) { d.learnTakeoverLLAddrs() })
		})
	} else {
		d.bfd.relearn = false
	}
}
