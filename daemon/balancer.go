package daemon

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"vigil/check"
	"vigil/config"
	"vigil/control"
	"vigil/internal/pace"
	"vigil/lb"
	"vigil/notify"
	"vigil/vrrp"
)

// balancer is the virtual_server half of keepalived.conf: health checkers
// (package check) report to the loop, which steps the pure model (package
// lb) and hands its desired state to the nftables data plane. The model
// also follows VRRP: a service whose VIP belongs to an instance answers
// only while that instance is MASTER.
type balancer struct {
	lbConfig
	model *lb.Model
	dp    dataplane
	rs    map[string]*rsInfo // by check.Server ID

	events  chan check.Event
	cancel  context.CancelFunc
	done    chan struct{}
	applyCh chan applyReq
	applied chan struct{}
	// state is the applier's record, shared with synchronous applies.
	state   *applyState
	dirty   bool
	lastGen uint64
	// released, while not closed, is the release of a stepping-down
	// master's VIPs on the ordered worker (closed once they are gone): the
	// applier waits for it before putting in rules that no longer serve
	// them (pushDesired).
	released chan struct{}
	// counting is set while a conntrack count for the lc/wlc/sed/nq
	// approximations is under way off the loop.
	counting bool
	counts   chan map[string]map[netip.AddrPort]int
	// countPace spaces the counts: each reads the whole conntrack table,
	// about 1 µs of CPU a flow (package pace). Started by countConns, ended by counted.
	countPace pace.Spacer
	// sweeping is set while a sweep of the data plane's flows runs off
	// the loop (sweepFlows).
	sweeping atomic.Bool
}

type rsInfo struct {
	cfg    *config.RealServer
	up     bool
	weight int
	detail string
}

// reconfigure makes the running virtual servers those of next. The first
// call opens the data plane and starts the applier; a reload's keeps them
// and the model, which it reconfigures in place, and every real server's
// health: one that was down stays down (its checks start failed, as with
// alpha, and one success brings it back). nil stops the checks, removes
// vigil's tables and closes the data plane.
func (d *Daemon) reconfigure(ctx context.Context, next *lbConfig) error {
	cur := d.bal
	if cur != nil {
		d.stopChecks(cur)
	}
	if next == nil {
		if cur != nil {
			d.closeBalancer(cur)
		}
		return nil
	}
	b := &balancer{lbConfig: *next, rs: make(map[string]*rsInfo, len(next.reals))}
	for id, r := range next.reals {
		b.rs[id] = &rsInfo{cfg: r.cfg, up: !r.alpha, weight: r.cfg.Weight}
	}
	var err error
	if cur != nil {
		keepHealth(cur, b)
		b.model, b.dp = cur.model, cur.dp
		b.applyCh, b.applied, b.state = cur.applyCh, cur.applied, cur.state
		evs, cerr := b.model.Configure(b.specs)
		if cerr != nil {
			return cerr
		}
		// The events are the new configuration's verdicts: its scripts
		// run, not those of cur (still d.bal here).
		d.quorumEvents(b, evs)
	} else {
		if b.model, err = lb.New(b.specs); err != nil {
			return err
		}
		if b.dp, err = d.host.openDataplane(d.log); err != nil {
			return fmt.Errorf("nftables data plane: %w (is the nftables package installed?)", err)
		}
	}
	d.followOwners(b)
	if err := d.startChecks(ctx, b); err != nil {
		return err
	}
	if b.state == nil {
		b.applyCh, b.applied, b.state = make(chan applyReq, 1), make(chan struct{}), &applyState{wake: d.wakeLoop}
		go d.applier(b.dp, b.state, b.applyCh, b.applied)
	}
	b.dirty = true
	d.bal = b
	d.rebindBridge()
	return nil
}

// followOwners makes the services of each instance-owned VIP active
// while that instance is MASTER, and reports whether that changed the
// model.
func (d *Daemon) followOwners(b *balancer) bool {
	changed := false
	for vip, owner := range b.owned {
		for _, in := range d.insts {
			if in.spec.name == owner && b.model.SetActive(vip, in.e.State() == vrrp.StateMaster) > 0 {
				changed = true
			}
		}
	}
	return changed
}

// adopt takes on what a reload changed in the running virtual servers
// that neither the model nor the checks hold (sameLB(d.bal, next)): the
// quorum_up / quorum_down and notify_up / notify_down scripts, and which
// instance owns a VIP. The checks and the health they found keep going;
// the next notification runs the scripts of next, as keepalived does.
func (d *Daemon) adopt(next *lbConfig) {
	b := d.bal
	b.quorum, b.reals, b.owned = next.quorum, next.reals, next.owned
	for id, r := range next.reals {
		if info := b.rs[id]; info != nil {
			info.cfg = r.cfg
		}
	}
	if d.followOwners(b) {
		b.dirty = true
	}
}

// lbRunning is the configuration of the running virtual servers; nil
// without any.
func (d *Daemon) lbRunning() *lbConfig {
	if d.bal == nil {
		return nil
	}
	return &d.bal.lbConfig
}

// keepHealth carries the health the checks of cur found over to next: a
// real server down in cur starts down in next, its checks failed.
func keepHealth(cur, next *balancer) {
	for i := range next.servers {
		srv := &next.servers[i]
		old := cur.rs[srv.ID]
		if old == nil || old.up {
			continue
		}
		for j := range srv.Checks {
			srv.Checks[j].Schedule.Alpha = true
		}
		next.rs[srv.ID].up, next.rs[srv.ID].detail = false, old.detail
	}
}

// startChecks runs b's health checks until stopChecks; their results
// reach the loop through b.events.
func (d *Daemon) startChecks(ctx context.Context, b *balancer) error {
	b.events = make(chan check.Event, 1024)
	b.counts = make(chan map[string]map[netip.AddrPort]int, 1)
	runner, err := d.host.newChecks(b.servers, check.RunnerOptions{Logger: d.log, OnEvent: func(e check.Event) {
		select {
		case b.events <- e:
		case <-ctx.Done():
		}
	}})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	b.cancel, b.done = cancel, make(chan struct{})
	go func() {
		defer close(b.done)
		_ = runner.Run(rctx)
	}()
	return nil
}

// stopChecks stops b's health checks and steps the model with the results
// they had sent.
func (d *Daemon) stopChecks(b *balancer) {
	if b.cancel == nil {
		return
	}
	b.cancel()
	<-b.done
	b.cancel = nil
	for {
		select {
		case e := <-b.events:
			d.checked(e)
		default:
			return
		}
	}
}

// closeBalancer ends the load balancer: quorum-down notifications, the
// applier's last state, vigil's tables removed.
func (d *Daemon) closeBalancer(b *balancer) {
	d.quorumEvents(b, b.model.Shutdown())
	close(b.applyCh)
	<-b.applied
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.dp.Flush(ctx); err != nil {
		d.log.Error("remove nftables tables", "err", err)
	}
	_ = b.dp.Close()
	d.bal = nil
	d.rebindBridge()
}

// applyReq is one desired state and the model generation it came from;
// after, if not nil, is closed once the VIPs released before it are gone.
type applyReq struct {
	gen   uint64
	des   lb.Desired
	after <-chan struct{}
}

// applyState records the newest generation in the kernel, so that a state
// applied synchronously is never overwritten by an older one the applier
// was still holding.
type applyState struct {
	mu  sync.Mutex
	gen uint64
	// served lists the services the applied rules serve (for BGP, which
	// announces an address only once its rules are in); wake wakes the
	// loop after each apply.
	served map[string]bool
	// tables are, per service, its applied backends and weights: what
	// its table is built from (BGP's announce_delay waits for them to
	// settle).
	tables map[string]string
	wake   func()
	// digests are the applied services' TableDigest, made by the applier
	// (off the loop: hashing 1,000 tables of 16,381 slots takes tens of
	// milliseconds) and only for the services whose table inputs changed
	// (digestKeys). Under dmu, not mu, which an apply holds for as long as
	// nft takes.
	dmu        sync.Mutex
	digests    map[string]string
	digestKeys map[string]string
	// lingering is how many removed real servers the data plane watches
	// for reset flows (nft's Sweep); the loop's tick runs while there are
	// any (periodicWork).
	lingering atomic.Int32
}

// setLingering records the data plane's count of watched real servers and,
// when it changed, has the loop start or stop its tick.
func (d *Daemon) setLingering(st *applyState, n int) {
	if st.lingering.Swap(int32(n)) != int32(n) && d.poll != nil {
		d.poll.post(func(time.Time) { d.setPeriodic() })
	}
}

// tableDigests returns the TableDigest of each applied service.
func (st *applyState) tableDigests() map[string]string {
	st.dmu.Lock()
	defer st.dmu.Unlock()
	return st.digests
}

// digest records the table digests of des, the state just applied.
func (st *applyState) digest(des lb.Desired, tables map[string]string) {
	digests, keys := make(map[string]string, len(des.Services)), make(map[string]string, len(des.Services))
	for i := range des.Services {
		s := &des.Services[i]
		k := fmt.Sprint(s.Selection, s.Hash, s.PersistenceMask, len(s.Maglev), tables[s.Name])
		if d, ok := st.digests[s.Name]; ok && st.digestKeys[s.Name] == k {
			digests[s.Name] = d
		} else {
			digests[s.Name] = s.TableDigest()
		}
		keys[s.Name] = k
	}
	st.dmu.Lock()
	st.digests, st.digestKeys = digests, keys
	st.dmu.Unlock()
}

// applyNow applies req unless something newer is already in place.
func (d *Daemon) applyNow(dp dataplane, st *applyState, req applyReq) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gen != 0 && req.gen <= st.gen {
		return nil
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dp.Apply(ctx, req.des); err != nil {
		return err
	}
	st.gen = req.gen
	d.setLingering(st, dp.Lingering())
	st.served, st.tables = servedServices(req.des), tableKeys(req.des)
	st.digest(req.des, st.tables)
	if st.wake != nil {
		st.wake()
	}
	d.log.Debug("nftables applied", "services", len(req.des.Services), "generation", req.gen, "took", time.Since(start))
	return nil
}

// applier applies the latest desired state: a burst of health changes
// costs one nft transaction, and the VRRP loop never waits for nft. A state
// that follows a master's step-down waits until the ordered worker has
// removed its VIPs (req.after).
func (d *Daemon) applier(dp dataplane, st *applyState, ch <-chan applyReq, done chan<- struct{}) {
	defer close(done)
	for req := range ch {
		if req.after != nil {
			<-req.after
		}
		if err := d.applyNow(dp, st, req); err != nil {
			d.log.Error("nftables apply failed; the previous rules stay", "err", err)
		}
	}
}

// pushDesired hands the model's desired state to the applier, replacing
// any state not yet applied.
func (d *Daemon) pushDesired() {
	b := d.bal
	if b == nil || !b.dirty {
		return
	}
	b.dirty = false
	g := b.model.Generation()
	if g == b.lastGen && b.lastGen != 0 {
		return
	}
	b.lastGen = g
	req := applyReq{gen: g, des: b.model.Desired()}
	if b.released != nil {
		// The worker runs in order, so the newest release is the last
		// one to wait for.
		select {
		case <-b.released:
			b.released = nil
		default:
			req.after = b.released
		}
	}
	select {
	case <-b.applyCh: // drop the stale one
	default:
	}
	b.applyCh <- req
}

// claimVIPs runs before a new master adds its VIPs: the services behind
// them become active, and it returns the apply to run (on d.work, before
// the VIPs go in, waiting for nft) so that no client's first packet to a
// freshly claimed VIP meets the host's own TCP stack (a reset) instead of
// the dispatch rule. Nil when the VIPs carry no service.
func (d *Daemon) claimVIPs(in *instance) func() {
	b := d.bal
	if b == nil {
		return nil
	}
	serves := false
	for v := range in.vips() {
		p := v.Prefix
		if b.model.SetActive(p.Addr(), true) > 0 {
			serves = true
		}
		if _, ok := b.owned[p.Addr()]; ok {
			serves = true
		}
	}
	if !serves {
		return nil
	}
	// Even when the model already had the services active (an address
	// owner at startup), the applier may not have put them in the kernel
	// yet: applyNow skips the work if it has.
	g := b.model.Generation()
	b.lastGen, b.dirty = g, false
	dp, st, req, name := b.dp, b.state, applyReq{gen: g, des: b.model.Desired()}, in.spec.name
	return func() {
		if err := d.applyNow(dp, st, req); err != nil {
			d.log.Error("nftables apply before claiming the VIPs failed; claiming them anyway", "instance", name, "err", err)
		}
	}
}

// checked steps the model with a health event.
func (d *Daemon) checked(e check.Event) {
	b := d.bal
	if b == nil {
		return
	}
	info := b.rs[e.Server]
	if info == nil {
		return
	}
	up := d.bfdGate(e, info.cfg, e.Kind == check.ServerUp || e.Kind == check.ServerWeight)
	info.up, info.weight, info.detail = up, e.Weight, e.Detail
	if !e.Initial {
		d.log.Info("real server health changed", "event", e.Kind.String(), "server", e.Server, "weight", e.Weight, "checker", e.Checker, "detail", e.Detail)
		var cmd *config.Command
		if e.Kind == check.ServerUp {
			cmd = info.cfg.NotifyUp
		} else if e.Kind == check.ServerDown {
			cmd = info.cfg.NotifyDown
		}
		if cmd != nil && len(cmd.Args) > 0 && d.notifier != nil {
			d.notifier.Exec(e.Server, e.Kind.String(), notify.Command{Argv: cmd.Args})
		}
	}
	for _, t := range b.targets[e.Server] {
		evs, err := b.model.SetHealth(t.svc, t.rs, up, e.Weight)
		if err != nil {
			d.log.Error("load balancer model", "err", err)
			continue
		}
		d.quorumEvents(b, evs)
	}
	b.dirty = true
}

// quorumEvents logs the quorum changes of b's model and runs the
// quorum_up / quorum_down scripts b's configuration gives them.
func (d *Daemon) quorumEvents(b *balancer, evs []lb.Event) {
	for _, ev := range evs {
		d.log.Warn("virtual server "+ev.Kind.String(), "service", ev.Service, "weight", ev.Weight, "quorum", ev.Quorum)
		vs := b.quorum[ev.Service]
		if vs == nil || d.notifier == nil {
			continue
		}
		cmd := vs.QuorumUp
		if ev.Kind == lb.QuorumDown {
			cmd = vs.QuorumDown
		}
		if cmd != nil && len(cmd.Args) > 0 {
			d.notifier.Exec(ev.Service, ev.Kind.String(), notify.Command{Argv: cmd.Args})
		}
	}
}

// vrrpChanged makes the services of an instance's VIPs follow its state,
// and reports whether that changed the model.
func (d *Daemon) vrrpChanged(in *instance, master bool) bool {
	b := d.bal
	if b == nil {
		return false
	}
	changed := false
	for v := range in.vips() {
		if b.model.SetActive(v.Addr(), master) > 0 {
			b.dirty = true // the loop pushes it after this step
			changed = true
		}
	}
	return changed
}

// releasing returns the channel the ordered worker closes once a
// stepping-down master's VIPs are gone; the applier waits for it before
// the rules that served them go (pushDesired). Claim is the other way
// round (claimVIPs: rules first, on the worker), so that a client's
// packet to a VIP this node holds always meets the dispatch rule, never
// the host's own stack.
func (d *Daemon) releasing() chan struct{} {
	ch := make(chan struct{})
	d.bal.released = ch
	return ch
}

// needsCounts lists the services whose weights or thresholds follow
// connection counts.
func (b *balancer) needsCounts() []lb.ServiceConfig {
	var out []lb.ServiceConfig
	for _, s := range b.specs {
		if s.NeedsConnCounts() {
			out = append(out, s)
		}
	}
	return out
}

// countConns starts a conntrack count off the loop (listing conntrack can
// take a while on a busy director); the loop receives it on b.counts.
func (d *Daemon) countConns(ctx context.Context) {
	b := d.bal
	if b == nil || b.counting || len(b.needsCounts()) == 0 {
		return
	}
	now := time.Now() // the real clock: what a count costs is real time
	if !b.countPace.Due(now) {
		return
	}
	b.counting = true
	b.countPace.Begin(now)
	dp, ch := b.dp, b.counts
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		counts, err := dp.CountConns(cctx)
		if err != nil {
			d.log.Debug("conntrack count", "err", err)
			counts = map[string]map[netip.AddrPort]int{}
		}
		select {
		case ch <- counts:
		case <-ctx.Done():
		}
	}()
}

// sweepFlows has the data plane delete the reset flows of real servers
// that left while connections to them were established (nft's Sweep: a
// conntrack dump while such a server lingers, nothing otherwise), off the
// loop, one sweep at a time. Called on the 2 s tick, which runs while
// the data plane watches any such server (periodicWork).
func (d *Daemon) sweepFlows(ctx context.Context) {
	b := d.bal
	if b == nil || !b.sweeping.CompareAndSwap(false, true) {
		return
	}
	dp, st := b.dp, b.state
	go func() {
		defer b.sweeping.Store(false)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := dp.Sweep(cctx)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("conntrack sweep of removed real servers", "err", err)
		}
		if st != nil {
			d.setLingering(st, n)
		}
	}()
}

// counted gives the model the connection counts.
func (d *Daemon) counted(counts map[string]map[netip.AddrPort]int) {
	b := d.bal
	if b == nil {
		return
	}
	b.counting = false
	b.countPace.End(time.Now())
	for _, s := range b.needsCounts() {
		m := counts[s.Name()]
		if m == nil {
			m = map[netip.AddrPort]int{}
		}
		// Real servers of fwmark and all-ports services have port 0 in
		// the model, whatever port each connection used.
		fixed := m
		for _, r := range s.RealServers {
			if r.Port == 0 {
				fixed = map[netip.AddrPort]int{}
				for ap, n := range m {
					fixed[netip.AddrPortFrom(ap.Addr(), 0)] += n
				}
				break
			}
		}
		if err := b.model.SetConnCounts(s.Name(), fixed); err != nil {
			d.log.Debug("connection counts", "service", s.Name(), "err", err)
			continue
		}
		b.dirty = true
	}
}

// refreshMACs reads the neighbour table for the real servers of DR
// services, which the data plane needs to rewrite frames to them, and
// prods the kernel to resolve the ones it does not know yet.
func (d *Daemon) refreshMACs() {
	b := d.bal
	if b == nil {
		return
	}
	want := drReals(b.specs)
	if len(want) == 0 {
		return
	}
	macs, err := d.host.neighbours(want)
	if err != nil {
		d.log.Warn("neighbour table", "err", err)
		return
	}
	for a, mac := range macs {
		if b.model.SetMAC(a, lb.MAC(mac)) {
			b.dirty = true
		}
	}
}

// drReals lists the real servers of DR services, whose MACs the data plane
// needs, once each.
func drReals(specs []lb.ServiceConfig) []netip.Addr {
	var out []netip.Addr
	for _, s := range specs {
		if s.Method != lb.DR {
			continue
		}
		for _, r := range s.RealServers {
			if !slices.Contains(out, r.Addr.Unmap()) {
				out = append(out, r.Addr.Unmap())
			}
		}
	}
	return out
}

// serviceStatus reports the virtual servers for `vigil status`.
func (d *Daemon) serviceStatus() []control.ServiceStatus {
	b := d.bal
	if b == nil {
		return nil
	}
	des := b.model.Desired()
	digests := b.state.tableDigests()
	var out []control.ServiceStatus
	for _, s := range des.Services {
		ss := control.ServiceStatus{Name: s.Name, Scheduler: s.Scheduler, Kind: s.Method.String(), Active: s.Active, Quorum: !s.Sorry, TableDigest: digests[s.Name]}
		weights := map[netip.AddrPort]int{}
		for _, be := range s.Backends {
			weights[netip.AddrPortFrom(be.Addr, be.Port)] = be.Weight
		}
		vs := b.quorum[s.Name]
		for _, r := range vs.RealServers {
			ap := netip.AddrPortFrom(r.Addr, r.Port)
			info := b.rs[vs.Key()+" "+ap.String()]
			rs := control.RealStatus{Addr: ap.String(), Weight: weights[ap], Up: info != nil && info.up}
			if info != nil && !info.up {
				rs.Detail = info.detail
			}
			ss.RealServers = append(ss.RealServers, rs)
		}
		out = append(out, ss)
	}
	return out
}

// connsFrom lists the load-balanced connections, like `ipvsadm -lnc`.
func (d *Daemon) connsFrom(ctx context.Context, dp dataplane) ([]control.Conn, error) {
	cs, err := dp.Conns(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]control.Conn, 0, len(cs))
	for _, c := range cs {
		cc := control.Conn{Proto: c.Proto, State: c.State, Expires: control.Duration(c.Expires), Client: c.Client.String(),
			Virtual: c.VIP.String(), Real: c.Real.String()}
		if c.Local.IsValid() {
			cc.Local = c.Local.String()
		}
		out = append(out, cc)
	}
	slices.SortFunc(out, func(a, b control.Conn) int {
		if a.Virtual != b.Virtual {
			return cmp.Compare(a.Virtual, b.Virtual)
		}
		return cmp.Compare(a.Client, b.Client)
	})
	return out, nil
}
