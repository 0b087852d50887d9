package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"vigil/check"
	"vigil/config"
	"vigil/control"
	"vigil/dataplane/nft"
	"vigil/internal/inet"
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
	model   *lb.Model
	dp      dataplane
	specs   []lb.ServiceConfig
	servers []check.Server
	// targets maps a checked real server (check.Server.ID) to every
	// service it serves: a virtual_server_group expands into one service
	// per address, all sharing the real servers' health.
	targets map[string][]rsTarget
	rs      map[string]*rsInfo
	// checks are the checker blocks of each real server (by check.Server
	// ID), compared by value to tell whether a reload leaves the health
	// checks as they are (positions included: a moved block restarts its
	// checks, which keeps the servers' health).
	checks map[string][]*config.Checker
	quorum map[string]*config.VirtualServer // service name -> its block
	// owned maps a VIP to the instance that owns it.
	owned map[netip.Addr]string

	events  chan check.Event
	cancel  context.CancelFunc
	done    chan struct{}
	applyCh chan applyReq
	applied chan struct{}
	// state is the applier's record, shared with synchronous applies.
	state   *applyState
	dirty   bool
	lastGen uint64
	// counting is set while a conntrack count for the lc/wlc/sed/nq
	// approximations is under way off the loop.
	counting bool
	counts   chan map[string]map[netip.AddrPort]int
}

type rsTarget struct {
	svc string
	rs  netip.AddrPort
}

type rsInfo struct {
	cfg    *config.RealServer
	up     bool
	weight int
	detail string
}

// buildBalancer maps the virtual servers of cfg. It returns nil when there
// are none.
func buildBalancer(cfg *config.Config) (*balancer, error) {
	if len(cfg.VirtualServers) == 0 {
		return nil, nil
	}
	b := &balancer{targets: map[string][]rsTarget{}, rs: map[string]*rsInfo{}, checks: map[string][]*config.Checker{}, quorum: map[string]*config.VirtualServer{}, owned: map[netip.Addr]string{}}
	for _, in := range cfg.Instances {
		for _, v := range in.VIPs {
			b.owned[v.Prefix.Addr()] = in.Name
		}
		for _, v := range in.ExcludedVIPs {
			b.owned[v.Prefix.Addr()] = in.Name
		}
	}
	var errs []error
	for _, vs := range cfg.VirtualServers {
		if err := b.addVirtualServer(cfg, vs); err != nil {
			errs = append(errs, fmt.Errorf("%s: virtual_server %s: %w", vs.Pos, vs.Key(), err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

type vsAddr struct {
	vip    netip.Addr
	port   uint16
	fwmark uint32
	fam    inet.Family
}

// expand lists the addresses (or fwmarks) a virtual_server stands for.
func expand(cfg *config.Config, vs *config.VirtualServer) ([]vsAddr, error) {
	switch vs.Kind {
	case config.VSAddr:
		return []vsAddr{{vip: vs.Addr, port: vs.Port}}, nil
	case config.VSFwmark:
		return []vsAddr{{fwmark: vs.Fwmark, fam: vs.Family}}, nil
	}
	for _, g := range cfg.VirtualServerGroups {
		if g.Name != vs.Group {
			continue
		}
		var out []vsAddr
		for _, e := range g.Entries {
			if e.IsFwmark {
				out = append(out, vsAddr{fwmark: e.Fwmark, fam: e.Family})
				continue
			}
			for a := e.First; a.IsValid() && a.Compare(e.Last) <= 0; a = a.Next() {
				out = append(out, vsAddr{vip: a, port: e.Port})
				if len(out) > 65536 {
					return nil, fmt.Errorf("virtual_server_group %s expands to more than 65536 addresses", g.Name)
				}
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("virtual_server_group %q is not defined", vs.Group)
}

func lbMethod(m config.Method) (lb.Method, error) {
	switch m {
	case config.NAT, config.MethodUnset:
		return lb.NAT, nil
	case config.DR:
		return lb.DR, nil
	case config.FNAT:
		return lb.FNAT, nil
	}
	return 0, fmt.Errorf("lb_kind %s is not supported by vigil (NAT, DR and FNAT are)", m)
}

func lbProto(p config.Protocol) lb.Proto {
	switch p {
	case config.UDP:
		return lb.UDP
	case config.SCTP:
		return lb.SCTP
	}
	return lb.TCP
}

func localAddrs(cfg *config.Config, name string) ([]netip.Addr, error) {
	for _, g := range cfg.LocalAddressGroups {
		if g.Name != name {
			continue
		}
		var out []netip.Addr
		for _, e := range g.Entries {
			for a := e.First; a.IsValid() && a.Compare(e.Last) <= 0; a = a.Next() {
				out = append(out, a)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("local_address_group %q is not defined", name)
}

func (b *balancer) addVirtualServer(cfg *config.Config, vs *config.VirtualServer) error {
	method, err := lbMethod(vs.Method)
	if err != nil {
		return err
	}
	addrs, err := expand(cfg, vs)
	if err != nil {
		return err
	}
	var laddrs []netip.Addr
	if method == lb.FNAT {
		if laddrs, err = localAddrs(cfg, vs.LaddrGroupName); err != nil {
			return err
		}
	}
	var rscs []lb.RealServerConfig
	for _, r := range vs.RealServers {
		rscs = append(rscs, lb.RealServerConfig{Addr: r.Addr, Port: r.Port, Weight: r.Weight, InhibitOnFailure: r.InhibitOnFailure,
			UThreshold: int(r.UThreshold), LThreshold: int(r.LThreshold), Alpha: r.Alpha || vs.Alpha})
	}
	for _, a := range addrs {
		sc := lb.ServiceConfig{Proto: lbProto(vs.Protocol), VIP: a.vip, Port: a.port, FwMark: a.fwmark, Family: a.fam,
			Method: method, Scheduler: vs.Scheduler, SchedFlags: vs.SchedFlags, Persistence: vs.PersistenceTimeout,
			Quorum: vs.Quorum, Hysteresis: vs.Hysteresis, Omega: vs.Omega, SorryInhibit: vs.SorryServerInhibit,
			LocalAddrs: laddrs, RealServers: rscs}
		if vs.PersistenceGranularity.IsValid() {
			sc.PersistenceMask = vs.PersistenceGranularity.Bits()
		}
		if vs.SorryServer != nil {
			sc.Sorry = netip.AddrPortFrom(vs.SorryServer.Addr, vs.SorryServer.Port)
		}
		if owner, ok := b.owned[a.vip]; ok {
			sc.Inactive = true
			if method == lb.DR {
				sc.Interface = instanceIface(cfg, owner)
			}
		}
		if method == lb.DR && sc.Interface == "" && len(vs.BGPAnnounce) > 0 {
			sc.Interface = bgpInterface(vs) // active-active: no VRRP instance owns the VIP
		}
		if method == lb.DR && sc.Interface == "" {
			return fmt.Errorf("lb_kind DR needs the interface the VIP %v arrives on: put the VIP in a vrrp_instance's virtual_ipaddress", a.vip)
		}
		b.specs = append(b.specs, sc)
		b.quorum[sc.Name()] = vs
		for _, r := range vs.RealServers {
			id := vs.Key() + " " + netip.AddrPortFrom(r.Addr, r.Port).String()
			b.targets[id] = append(b.targets[id], rsTarget{svc: sc.Name(), rs: netip.AddrPortFrom(r.Addr, r.Port)})
		}
	}
	for _, r := range vs.RealServers {
		id := vs.Key() + " " + netip.AddrPortFrom(r.Addr, r.Port).String()
		srv := check.Server{ID: id, Weight: r.Weight, Omega: vs.Omega}
		for _, c := range r.Checkers {
			// An SMTP_CHECK's deprecated host blocks are checkers of their
			// own, each with its target; all must pass.
			all := []*config.Checker{c}
			if c.SMTP != nil {
				for _, h := range c.SMTP.Hosts {
					hc := *h
					hc.SMTP = &config.SMTPCheck{HeloName: c.SMTP.HeloName}
					all = append(all, &hc)
				}
			}
			for _, c := range all {
				w, err := watch(cfg, c, r.Weight)
				if err != nil {
					return fmt.Errorf("%s: %s: %w", c.Pos, c.Type, err)
				}
				srv.Checks = append(srv.Checks, *w)
			}
		}
		b.servers = append(b.servers, srv)
		// The checkers themselves hold no comparable config, so a reload
		// compares the blocks they were built from.
		b.checks[id] = r.Checkers
		b.rs[id] = &rsInfo{cfg: r, up: !(r.Alpha || vs.Alpha), weight: r.Weight}
	}
	return nil
}

func instanceIface(cfg *config.Config, name string) string {
	for _, in := range cfg.Instances {
		if in.Name == name {
			if in.UseVMAC {
				return in.VMACIfname()
			}
			return in.Interface
		}
	}
	return ""
}

// errNoChecker: a checker type config accepts but nothing here maps onto
// package check. TestEveryCheckerTypeIsMapped fails before a run does.
var errNoChecker = errors.New("no health checker for this checker type")

// watch maps one checker block onto package check; rsWeight is the real
// server's configured weight (FILE_CHECK's base). BFD_CHECK has no checker:
// config reports it.
func watch(cfg *config.Config, c *config.Checker, rsWeight int) (*check.Watch, error) {
	t := check.Target{Addr: netip.AddrPortFrom(c.ConnectIP, c.ConnectPort), BindAddr: c.BindTo, BindPort: c.BindPort,
		BindIf: c.BindIf, Fwmark: c.Fwmark, Timeout: c.ConnectTimeout}
	var ck check.Checker
	var err error
	var kind check.Kind
	rise := 1
	switch c.Type {
	case config.CheckTCP:
		kind = check.KindTCP
		ck, err = check.NewTCP(check.TCPConfig{Target: t})
	case config.CheckHTTP, config.CheckSSL:
		kind = check.KindHTTP
		hc := check.HTTPConfig{Target: t, TLS: c.Type == config.CheckSSL}
		if h := c.HTTP; h != nil {
			hc.SNI, hc.Protocol, hc.VirtualHost = h.EnableSNI, h.Protocol, h.Virtualhost
			for _, u := range h.URLs {
				cu := check.URL{Path: u.Path, Digest: u.Digest, VirtualHost: u.Virtualhost,
					RegexNoMatch: u.RegexNoMatch, RegexMinOffset: u.RegexMinOffset, RegexMaxOffset: u.RegexMaxOffset}
				if u.Regex != "" {
					// config warned about a pattern RE2 cannot compile:
					// that URL fails its checks, the rest of the config runs.
					re, err := regexp.Compile(u.Regex)
					if err != nil {
						cu.BadRegex = fmt.Sprintf("%q: %v", u.Regex, err)
					}
					cu.Regex = re
				}
				for _, r := range u.StatusCodes {
					cu.StatusCodes = append(cu.StatusCodes, check.CodeRange{Lo: r.Min, Hi: r.Max})
				}
				hc.URLs = append(hc.URLs, cu)
			}
			if !h.FastRecovery && len(h.URLs) > 1 {
				rise = len(h.URLs)
			}
		}
		ck, err = check.NewHTTP(hc)
	case config.CheckMisc:
		kind = check.KindMisc
		m := c.Misc
		if m == nil || m.Path == nil {
			return nil, errors.New("misc_path is missing")
		}
		mc := check.MiscConfig{Argv: m.Path.Args, Timeout: m.Timeout, Dynamic: m.Dynamic}
		user, group := m.Path.User, m.Path.Group
		if user == "" {
			user, group = cfg.Global.ScriptUser, cfg.Global.ScriptGroup
		}
		if user != "" {
			cred, err := notify.LookupCredential(user, group)
			if err != nil {
				return nil, err
			}
			mc.User = &check.Credential{UID: cred.UID, GID: cred.GID}
		}
		ck, err = check.NewMisc(mc)
	case config.CheckDNS:
		kind = check.KindDNS
		dc := check.DNSConfig{Target: t}
		if c.DNS != nil {
			dc.Type, dc.Name = c.DNS.Type, c.DNS.Name
		}
		ck, err = check.NewDNS(dc)
	case config.CheckUDP:
		kind = check.KindUDP
		uc := check.UDPConfig{Target: t}
		if u := c.UDP; u != nil {
			uc.Payload, uc.RequireReply, uc.ReplyPattern, uc.ReplyMask = u.Payload, u.RequireReply, u.ReplyPattern, u.ReplyMask
			uc.MinReplyLength, uc.MaxReplyLength = u.MinReplyLength, u.MaxReplyLength
		}
		ck, err = check.NewUDP(uc)
	case config.CheckPing:
		kind = check.KindPing
		ck, err = check.NewPing(check.PingConfig{Target: t})
	case config.CheckSMTP:
		kind = check.KindSMTP
		sc := check.SMTPConfig{Target: t}
		if c.SMTP != nil {
			sc.HeloName = c.SMTP.HeloName
		}
		ck, err = check.NewSMTP(sc)
	case config.CheckDRPath:
		kind = check.KindDRPath
		ck, err = check.NewDRPath(check.DRPathConfig{Real: c.ConnectIP, VIP: c.DRPath.VIP, Port: c.ConnectPort, Timeout: c.ConnectTimeout})
	case config.CheckFile:
		kind = check.KindFile
		f := c.File
		tf := cfg.TrackFile(f.TrackFile)
		if tf == nil {
			return nil, fmt.Errorf("track_file %s is not defined", f.TrackFile)
		}
		fc := check.FileConfig{Name: tf.Name, Path: tf.File, Weight: f.Weight, Reverse: f.Reverse, Dynamic: f.Dynamic, BaseWeight: rsWeight}
		if !f.WeightSet {
			fc.Reverse = tf.Reverse
		}
		ck, err = check.NewFile(fc)
	default:
		// BFD_CHECK never gets here (config reads it into
		// RealServer.BFDChecks); anything else is a checker nobody mapped.
		return nil, fmt.Errorf("%w: %v", errNoChecker, c.Type)
	}
	if err != nil {
		return nil, err
	}
	sched := check.DefaultSchedule(kind)
	sched.DelayLoop, sched.Retry, sched.DelayBeforeRetry, sched.Warmup, sched.Alpha = c.DelayLoop, c.Retry, c.DelayBeforeRetry, c.Warmup, c.Alpha
	sched.Rise = rise
	sched.LogAllFailures = c.LogAllFailures.Value || cfg.Global.CheckerLogAllFails
	if kind == check.KindFile {
		// FILE_CHECK takes none of the timing options: the file is read
		// every FilePollInterval from the start, and a change counts at once.
		sched = check.Schedule{DelayLoop: check.FilePollInterval, Alpha: c.Alpha, Rise: 1, LogAllFailures: sched.LogAllFailures}
	}
	return &check.Watch{Checker: ck, Schedule: sched}, nil
}

// startBalancer programs the data plane and starts the health checks.
func (d *Daemon) startBalancer(ctx context.Context, b *balancer) error {
	if b == nil {
		return nil
	}
	var err error
	if d.bal != nil && d.bal.model != nil {
		// A reload must not forget health: a real server that was down
		// stays down (its checks start failed, as with alpha, and one
		// success brings it back), and the model keeps its state.
		for i := range b.servers {
			srv := &b.servers[i]
			old := d.bal.rs[srv.ID]
			if old == nil || old.up {
				continue
			}
			for j := range srv.Checks {
				srv.Checks[j].Schedule.Alpha = true
			}
			b.rs[srv.ID].up, b.rs[srv.ID].detail = false, old.detail
		}
		b.model, b.dp = d.bal.model, d.bal.dp
		evs, cerr := b.model.Configure(b.specs)
		if cerr != nil {
			return cerr
		}
		d.quorumEvents(evs)
	} else {
		if b.model, err = lb.New(b.specs); err != nil {
			return err
		}
		if b.dp, err = d.host.openDataplane(d.log); err != nil {
			return fmt.Errorf("nftables data plane: %w (is the nftables package installed?)", err)
		}
	}
	for vip, owner := range b.owned {
		for _, in := range d.insts {
			if in.spec.cfg.Name == owner {
				b.model.SetActive(vip, in.e.State() == vrrp.StateMaster)
			}
		}
	}
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
	if d.bal == nil || d.bal.applyCh == nil {
		b.applyCh, b.applied, b.state = make(chan applyReq, 1), make(chan struct{}), &applyState{wake: d.wakeLoop}
		go d.applier(b.dp, b.state, b.applyCh, b.applied)
	} else {
		b.applyCh, b.applied, b.state = d.bal.applyCh, d.bal.applied, d.bal.state
	}
	b.dirty = true
	d.bal = b
	d.rebindBridge()
	return nil
}

// applyReq is one desired state and the model generation it came from.
type applyReq struct {
	gen uint64
	des lb.Desired
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
	// des is the applied state; digests its services' TableDigest, made
	// when first asked (status, metrics), per generation. Under dmu, not
	// mu, which an apply holds for as long as nft takes.
	dmu     sync.Mutex
	des     lb.Desired
	digests map[string]string
}

// tableDigests returns the TableDigest of each applied service.
func (st *applyState) tableDigests() map[string]string {
	st.dmu.Lock()
	defer st.dmu.Unlock()
	if st.digests == nil {
		st.digests = make(map[string]string, len(st.des.Services))
		for i := range st.des.Services {
			st.digests[st.des.Services[i].Name] = st.des.Services[i].TableDigest()
		}
	}
	return st.digests
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
	st.served, st.tables = servedServices(req.des), tableKeys(req.des)
	st.dmu.Lock()
	st.des, st.digests = req.des, nil
	st.dmu.Unlock()
	if st.wake != nil {
		st.wake()
	}
	d.log.Debug("nftables applied", "services", len(req.des.Services), "generation", req.gen, "took", time.Since(start))
	return nil
}

// applier applies the latest desired state: a burst of health changes
// costs one nft transaction, and the VRRP loop never waits for nft.
func (d *Daemon) applier(dp dataplane, st *applyState, ch <-chan applyReq, done chan<- struct{}) {
	defer close(done)
	for req := range ch {
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
	for p := range in.spec.vips {
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
	dp, st, req, name := b.dp, b.state, applyReq{gen: g, des: b.model.Desired()}, in.spec.cfg.Name
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
		d.quorumEvents(evs)
	}
	b.dirty = true
}

func (d *Daemon) quorumEvents(evs []lb.Event) {
	for _, ev := range evs {
		d.log.Warn("virtual server "+ev.Kind.String(), "service", ev.Service, "weight", ev.Weight, "quorum", ev.Quorum)
		vs := d.bal.quorum[ev.Service]
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

// vrrpChanged makes the services of an instance's VIPs follow its state.
func (d *Daemon) vrrpChanged(in *instance, master bool) {
	b := d.bal
	if b == nil {
		return
	}
	for p := range in.spec.vips {
		if b.model.SetActive(p.Addr(), master) > 0 {
			b.dirty = true // the loop pushes it after this step
		}
	}
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
	b.counting = true
	dp, ch := b.dp, b.counts
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conns, err := dp.Conns(cctx)
		if err != nil {
			d.log.Debug("conntrack count", "err", err)
			conns = nil
		}
		counts := nft.ConnCounts(conns)
		select {
		case ch <- counts:
		case <-ctx.Done():
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

// stopBalancer stops the checks and removes vigil's tables.
func (d *Daemon) stopBalancer(final bool) {
	b := d.bal
	if b == nil {
		return
	}
	if b.cancel != nil {
		b.cancel()
		<-b.done
		b.cancel = nil
	drain:
		for {
			select {
			case e := <-b.events:
				d.checked(e)
			default:
				break drain
			}
		}
	}
	if !final {
		return
	}
	d.quorumEvents(b.model.Shutdown())
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
			return strings.Compare(a.Virtual, b.Virtual)
		}
		return strings.Compare(a.Client, b.Client)
	})
	return out, nil
}

// sameBalancer reports whether a reload leaves the virtual servers as
// they are, so their checks and health can keep running.
func sameBalancer(a, b *balancer) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(a.specs, b.specs) && reflect.DeepEqual(a.targets, b.targets) && reflect.DeepEqual(a.checks, b.checks)
}
