package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"time"

	"vigil/check"
	"vigil/config"
	"vigil/internal/inet"
	"vigil/lb"
)

// lbConfig is what the virtual_server half of a configuration becomes:
// the services of the load-balancing model (package lb), the real servers
// to health-check (package check) and how their results map back onto the
// services. lbConfigFor builds it from the configuration alone, with the
// two host facts it needs passed in (lbLookups), so it is table-tested
// without a host (lbconfig_test.go); the balancer (balancer.go) runs it.
type lbConfig struct {
	specs   []lb.ServiceConfig
	servers []check.Server
	// targets maps a checked real server (check.Server.ID) to every
	// service it serves: a virtual_server_group expands into one service
	// per address, all sharing the real servers' health.
	targets map[string][]rsTarget
	reals   map[string]realServer
	// checks are the checker blocks of each real server (by check.Server
	// ID), compared by value to tell whether a reload leaves the health
	// checks as they are (positions included: a moved block restarts its
	// checks, which keeps the servers' health).
	checks map[string][]*config.Checker
	quorum map[string]*config.VirtualServer // service name -> its block
	// owned maps a VIP to the instance that owns it.
	owned map[netip.Addr]string
}

type rsTarget struct {
	svc string
	rs  netip.AddrPort
}

// realServer is a checked real server's block; alpha: it starts down.
type realServer struct {
	cfg   *config.RealServer
	alpha bool
}

// lbLookups are the host facts the translation needs: the interface a
// route to an address leaves by (a DR service announced over BGP that no
// VRRP instance owns forwards there), and a user's credentials
// (MISC_CHECK's script user).
type lbLookups struct {
	routeDevice func(netip.Addr) (string, error)
	credential  func(user, group string) (*check.Credential, error)
}

// lbConfigFor maps the virtual servers of cfg. It returns nil when there
// are none.
func lbConfigFor(cfg *config.Config, look lbLookups) (*lbConfig, error) {
	if len(cfg.VirtualServers) == 0 {
		return nil, nil
	}
	b := &lbConfig{targets: map[string][]rsTarget{}, reals: map[string]realServer{}, checks: map[string][]*config.Checker{}, quorum: map[string]*config.VirtualServer{}, owned: map[netip.Addr]string{}}
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
		if err := b.addVirtualServer(cfg, vs, look); err != nil {
			errs = append(errs, fmt.Errorf("%s: virtual_server %s: %w", vs.Pos, vs.Key(), err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return b, nil
}

// sameLB reports whether a reload leaves the virtual servers as they are,
// so their checks and health can keep running.
func sameLB(a, b *lbConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return reflect.DeepEqual(a.specs, b.specs) && reflect.DeepEqual(a.targets, b.targets) && reflect.DeepEqual(a.checks, b.checks)
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

func (b *lbConfig) addVirtualServer(cfg *config.Config, vs *config.VirtualServer, look lbLookups) error {
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
		if method == lb.DR {
			sc.FlowTimeout, sc.FlowFinTimeout = flowTimeouts(cfg.Global.LVSTimeouts, sc.Proto)
		}
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
			sc.Interface = bgpInterface(vs, look.routeDevice) // active-active: no VRRP instance owns the VIP
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
				w, err := watch(cfg, c, r.Weight, look.credential)
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
		b.reals[id] = realServer{cfg: r, alpha: r.Alpha || vs.Alpha}
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

// bgpInterface is, for a DR virtual server announced over BGP and owned
// by no VRRP instance, the interface its traffic arrives on: the one its
// real servers are reached through (DR forwards on the same link).
func bgpInterface(vs *config.VirtualServer, routeDevice func(netip.Addr) (string, error)) string {
	for _, r := range vs.RealServers {
		if dev, err := routeDevice(r.Addr); err == nil && dev != "" {
			return dev
		}
	}
	return ""
}

// errNoChecker: a checker type config accepts but nothing here maps onto
// package check. TestEveryCheckerTypeIsMapped fails before a run does.
var errNoChecker = errors.New("no health checker for this checker type")

// watch maps one checker block onto package check; rsWeight is the real
// server's configured weight (FILE_CHECK's base), credential looks up
// MISC_CHECK's user. BFD_CHECK has no checker: config reports it.
func watch(cfg *config.Config, c *config.Checker, rsWeight int, credential func(user, group string) (*check.Credential, error)) (*check.Watch, error) {
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
			if mc.User, err = credential(user, group); err != nil {
				return nil, err
			}
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

// flowTimeouts is what lvs_timeouts sets for a DR service's flow memory
// (lb.Service.FlowTimeout): udp for UDP, tcp and tcpfin for the others (as
// IPVS, SCTP goes with TCP); zero leaves lb's default, IPVS's, as
// keepalived leaves the kernel's.
func flowTimeouts(t config.LVSTimeouts, p lb.Proto) (idle, fin time.Duration) {
	if p == lb.UDP {
		return t.UDP, 0
	}
	return t.TCP, t.TCPFin
}
