package config

import (
	"errors"
	"net/netip"
	"strings"
	"time"
	"vigil/internal/inet"
)

const (
	defaultDelayLoop      = 60 * time.Second
	defaultConnectTimeout = 5 * time.Second
)

func (b *builder) validateVirtualServers() {
	type vsKey struct {
		kind   VSKind
		addr   netip.Addr
		port   uint16
		proto  Protocol
		fwmark uint32
		group  string
	}
	seen := map[vsKey]*VirtualServer{}
	kept := b.cfg.VirtualServers[:0]
	for _, vs := range b.cfg.VirtualServers {
		if !b.validateVS(vs) {
			continue
		}
		k := vsKey{vs.Kind, vs.Addr, vs.Port, vs.Protocol, vs.Fwmark, vs.Group}
		if o := seen[k]; o != nil {
			// keepalived accepts this without a word; the second
			// definition would replace the first one's real servers.
			b.warnf(vs.Pos, "virtual_server %s is already defined at %s", vs.Key(), o.Pos)
		}
		seen[k] = vs
		kept = append(kept, vs)
		b.checkForwarding(vs)
	}
	b.cfg.VirtualServers = kept
	b.checkLVSTimeouts()
}

// checkLVSTimeouts warns when lvs_timeouts is set beside a NAT or FNAT
// service: keepalived's IPVS would time those connections out, vigil's
// conntrack keeps them for the host's timeouts (an established TCP
// connection: 5 days by default, against IPVS's 15 minutes).
func (b *builder) checkLVSTimeouts() {
	t := b.cfg.Global.LVSTimeouts
	if t.Pos.Line == 0 {
		return
	}
	for _, vs := range b.cfg.VirtualServers {
		if vs.NeedsForwarding() {
			b.warnf(t.Pos, "lvs_timeouts applies to lb_kind DR only (how long a director remembers a flow); the connections of virtual_server %s (lb_kind %s) live in conntrack and follow the host's net.netfilter.nf_conntrack_* timeouts", vs.Key(), vs.forwardingMethod())
			return
		}
	}
}

// checkForwarding warns about a NAT or FNAT service on a host that does not
// forward its family: the kernel translates the destination and then drops
// the packet instead of routing it to the real server, so every connection
// times out while the health checks (sent by the director itself) pass.
func (b *builder) checkForwarding(vs *VirtualServer) {
	if b.env.Forwarding == nil || !vs.NeedsForwarding() {
		return
	}
	on, known := b.env.Forwarding(vs.Family)
	if !known || on {
		return
	}
	key := "net.ipv4.ip_forward"
	if vs.Family == inet.IPv6 {
		key = "net.ipv6.conf.all.forwarding"
	}
	b.warnf(vs.Pos, "virtual_server %s uses lb_kind %s but %s is 0 on this host: the director will drop every connection it translates (set %s=1)", vs.Key(), vs.forwardingMethod(), key, key)
}

// validateVS applies defaults and inheritance; false drops the service.
func (b *builder) validateVS(vs *VirtualServer) bool {
	var grp *VirtualServerGroup
	fwmarkOnly := vs.Kind == VSFwmark
	switch vs.Kind {
	case VSGroup:
		grp = b.cfg.VirtualServerGroup(vs.Group)
		if grp == nil {
			// keepalived -t accepts this and then runs no service at all.
			b.warnf(vs.Pos, "virtual_server group %s: virtual_server_group %s is not defined: the service does nothing", vs.Group, vs.Group)
		} else {
			fwmarkOnly = len(grp.Entries) > 0
			for _, e := range grp.Entries {
				if !e.IsFwmark {
					fwmarkOnly = false
					vs.Family = e.Family
					break
				}
			}
		}
	}
	if grp != nil {
		// keepalived 2.2.7 removes a service whose group mixes all three
		// kinds of entry, whatever its ip_family (observed with inet and
		// inet6 alike).
		var v4, v6, fw bool
		for _, e := range grp.Entries {
			switch {
			case e.IsFwmark:
				fw = true
			case e.Family == inet.IPv6:
				v6 = true
			default:
				v4 = true
			}
		}
		if v4 && v6 && fw {
			b.errorf(vs.Pos, "virtual_server group %s: the group mixes IPv4, IPv6 and fwmark entries, which keepalived refuses: split the group", grp.Name)
			return false
		}
	}
	if grp != nil && len(grp.Entries) == 0 {
		b.errorf(grp.Pos, "virtual_server_group %s has no entries", grp.Name)
	}
	if grp != nil && vs.PersistenceTimeout == 0 {
		for _, e := range grp.Entries {
			if !e.IsFwmark && e.Port == 0 {
				b.errorf(e.Pos, "virtual_server_group %s: %s without a port is only valid for persistent services", grp.Name, e.First)
				break
			}
		}
	}
	// A fwmark service has the family of ip_family, else of its first
	// real server.
	famKnown := vs.Kind == VSAddr || grp != nil && !fwmarkOnly || vs.has&fIPFamily != 0
	if !famKnown && len(vs.RealServers) > 0 {
		vs.Family, famKnown = inet.Of(vs.RealServers[0].Addr), true
	}
	if vs.has&fProtocol != 0 && fwmarkOnly {
		b.errorf(vs.kw.at(vs.Pos, "protocol"), "virtual_server %s: protocol is meaningless for a fwmark service: ignored", vs.Key())
		vs.Protocol = ProtoNone
	}
	if vs.has&fProtocol == 0 && !fwmarkOnly && (vs.Kind != VSGroup || grp != nil) {
		b.errorf(vs.Pos, "virtual_server %s: protocol is missing: expected protocol TCP|UDP|SCTP (keepalived defaults to UDP)", vs.Key())
		vs.Protocol = UDP
	}
	if vs.has&fScheduler == 0 {
		if p := vs.kw.at(Pos{}, "lb_algo", "lvs_sched"); posValid(p) {
			b.infof(p, "virtual_server %s: no valid scheduler: using wlc", vs.Key())
		} else {
			b.errorf(vs.Pos, "virtual_server %s: lb_algo is missing: using wlc (keepalived reports this as an error too)", vs.Key())
		}
		vs.Scheduler = "wlc"
	}
	if vs.has&fMethod == 0 {
		if p := vs.kw.at(Pos{}, "lb_kind", "lvs_method"); posValid(p) {
			b.infof(p, "virtual_server %s: no valid forwarding method: using NAT", vs.Key())
		} else {
			b.errorf(vs.Pos, "virtual_server %s: lb_kind is missing: using NAT (keepalived reports this as an error too)", vs.Key())
		}
		vs.Method = NAT
	}
	if vs.has&fProtocol == 0 && posValid(vs.kw.at(Pos{}, "protocol")) && !fwmarkOnly {
		vs.has |= fProtocol // the bad value was reported where it was written
		vs.Protocol = UDP
	}
	flags := vs.SchedFlags[:0]
	for _, f := range vs.SchedFlags {
		if want := strings.TrimSuffix(strings.TrimSuffix(f, "-port"), "-fallback"); want != f && want != vs.Scheduler {
			b.errorf(vs.kw.at(vs.Pos, f), "virtual_server %s: %s only applies to the %s scheduler: ignored", vs.Key(), f, want)
			continue
		}
		flags = append(flags, f)
	}
	vs.SchedFlags = flags
	if vs.OPS && vs.Protocol != UDP {
		b.errorf(vs.kw.at(vs.Pos, "ops"), "virtual_server %s: ops (one-packet scheduling) needs protocol UDP: cleared", vs.Key())
		vs.OPS = false
	}
	if vs.Kind == VSAddr && vs.Port == 0 && vs.PersistenceTimeout == 0 {
		b.errorf(vs.Pos, "virtual_server %s: port 0 is only valid for persistent services: expected IP PORT or persistence_timeout", vs.Key())
	}
	if vs.Method == FNAT {
		switch {
		case vs.LaddrGroupName == "":
			b.errorf(vs.kw.at(vs.Pos, "lb_kind", "lvs_method"), "virtual_server %s: lb_kind FNAT needs laddr_group_name NAME", vs.Key())
		case b.cfg.LocalAddressGroup(vs.LaddrGroupName) == nil:
			b.errorf(vs.kw.at(vs.Pos, "laddr_group_name"), "virtual_server %s: local_address_group %s is not defined", vs.Key(), vs.LaddrGroupName)
		}
	} else if vs.LaddrGroupName != "" {
		b.warnf(vs.kw.at(vs.Pos, "laddr_group_name"), "virtual_server %s: laddr_group_name only applies to lb_kind FNAT: ignored", vs.Key())
	}

	// Inherited checker settings: virtual server → real server → checker.
	t := &vs.timers
	orDefault(vs.has, fDelayLoop, &t.DelayLoop, defaultDelayLoop)
	vs.DelayLoop, vs.ConnectTimeout, vs.DelayBeforeRetry, vs.Warmup = t.DelayLoop, t.ConnectTimeout, t.DelayBeforeRetry, t.Warmup
	vs.Retry = t.Retry
	orDefault(vs.has, fQuorum, &vs.Quorum, 1)

	type rsKey struct {
		addr netip.Addr
		port uint16
	}
	seen := map[rsKey]bool{}
	rss := vs.RealServers[:0]
	total := 0
	for _, rs := range vs.RealServers {
		if vs.Kind == VSGroup && grp != nil && !fwmarkOnly && inet.Of(rs.Addr) != vs.Family && rs.Method != TUN {
			// keepalived -t accepts this; the kernel would refuse it.
			b.warnf(rs.Pos, "virtual_server %s: real server %s is %s but the group's addresses are %s", vs.Key(), rs.Addr, inet.Of(rs.Addr), vs.Family)
		} else if famKnown && inet.Of(rs.Addr) != vs.Family && rs.Method != TUN {
			b.errorf(rs.Pos, "virtual_server %s: real server %s is %s but the service is %s: skipped", vs.Key(), rs.Addr, inet.Of(rs.Addr), vs.Family)
			continue
		}
		if vs.Kind == VSFwmark && rs.has&fPort != 0 {
			b.errorf(rs.Pos, "virtual_server %s: real server %s has a port but fwmark services forward to the original port: port cleared", vs.Key(), rs.Addr)
			rs.Port = 0
		} else if vs.Kind == VSGroup && fwmarkOnly && rs.has&fPort != 0 {
			b.errorf(rs.Pos, "virtual_server %s: real server %s has a port but the group is fwmarks only: port ignored", vs.Key(), rs.Addr)
			rs.Port = 0
		}
		if rs.has&fPort == 0 && vs.Kind == VSAddr {
			rs.Port = vs.Port
		}
		if vs.Kind == VSAddr && (rs.Method == DR || rs.Method == TUN || rs.has&fMethod == 0 && (vs.Method == DR || vs.Method == TUN)) && rs.Port != vs.Port && vs.Port != 0 {
			b.errorf(rs.Pos, "virtual_server %s: real server %s port %d differs from the service port but %s cannot change ports: using %d", vs.Key(), rs.Addr, rs.Port, vs.Method, vs.Port)
			rs.Port = vs.Port
		}
		k := rsKey{rs.Addr, rs.Port}
		if seen[k] {
			b.errorf(rs.Pos, "virtual_server %s: real server %s port %d is duplicated: second one removed", vs.Key(), rs.Addr, rs.Port)
			continue
		}
		seen[k] = true
		orDefault(rs.has, fMethod, &rs.Method, vs.Method)
		if rs.Method == FNAT && vs.Method != FNAT {
			b.errorf(rs.Pos, "virtual_server %s: real server %s uses FNAT but the service does not", vs.Key(), rs.Addr)
		}
		orDefault(rs.has, fInhibit, &rs.InhibitOnFailure, vs.InhibitOnFailure)
		orDefault(rs.has, fAlpha, &rs.Alpha, vs.Alpha)
		orDefault(rs.has, fVirtualhost, &rs.Virtualhost, vs.Virtualhost)
		inherit(&rs.timers, rs.has, t, vs.has)
		rs.ConnectTimeout, rs.Retry, rs.DelayBeforeRetry, rs.Warmup, rs.DelayLoop =
			rs.timers.ConnectTimeout, rs.timers.Retry, rs.timers.DelayBeforeRetry, rs.timers.Warmup, rs.timers.DelayLoop
		rs.has |= vs.has & (fConnectTimeout | fRetry | fDelayBeforeRetry | fWarmup | fDelayLoop)
		checkers := rs.Checkers[:0]
		for _, c := range rs.Checkers {
			if b.resolveChecker(vs, rs, c) {
				checkers = append(checkers, c)
			}
		}
		rs.Checkers = checkers
		total += rs.Weight
		rss = append(rss, rs)
	}
	vs.RealServers = rss
	if len(vs.RealServers) == 0 {
		b.errorf(vs.Pos, "virtual_server %s has no real servers: ignored", vs.Key())
		return false
	}
	if s := vs.SorryServer; s != nil {
		switch {
		case !s.Addr.IsValid():
			b.errorf(s.Pos, "virtual_server %s: sorry_server_lvs_method without sorry_server", vs.Key())
			vs.SorryServer = nil
		case vs.Kind == VSAddr && inet.Of(s.Addr) != vs.Family && s.Method != TUN:
			b.errorf(s.Pos, "virtual_server %s: sorry server %s is %s but the service is %s: ignored", vs.Key(), s.Addr, inet.Of(s.Addr), vs.Family)
			vs.SorryServer = nil
		default:
			if s.Method == MethodUnset {
				s.Method = vs.Method
			}
			if s.Port == 0 && vs.Kind == VSAddr {
				s.Port = vs.Port
			}
		}
	}
	if vs.Quorum > total {
		b.errorf(vs.kw.at(vs.Pos, "quorum"), "virtual_server %s: quorum %d exceeds the total weight %d of the real servers: reduced to %d", vs.Key(), vs.Quorum, total, total)
		vs.Quorum = total
	}
	if vs.Hysteresis >= vs.Quorum && vs.Hysteresis > 0 {
		b.errorf(vs.kw.at(vs.Pos, "hysteresis"), "virtual_server %s: hysteresis %d must be below quorum %d: set to 0", vs.Key(), vs.Hysteresis, vs.Quorum)
		vs.Hysteresis = 0
	}
	if vs.Family == inet.IPv6 && vs.PersistenceGranularity.IsValid() && vs.PersistenceGranularity.Addr().Is4() && vs.Kind == VSAddr {
		b.errorf(vs.kw.at(vs.Pos, "persistence_granularity"), "virtual_server %s: persistence_granularity must be a prefix length for IPv6", vs.Key())
		vs.PersistenceGranularity = netip.Prefix{}
	}
	return true
}

// inherit fills the timers not written at this level from the parent.
func inherit(t *checkTimers, has fieldSet, p *checkTimers, phas fieldSet) {
	if has&fConnectTimeout == 0 {
		t.ConnectTimeout = p.ConnectTimeout
	}
	if has&fRetry == 0 {
		t.Retry = p.Retry
	}
	if has&fDelayBeforeRetry == 0 {
		t.DelayBeforeRetry = p.DelayBeforeRetry
	}
	if has&fWarmup == 0 {
		t.Warmup = p.Warmup
	}
	if has&fDelayLoop == 0 {
		t.DelayLoop = p.DelayLoop
	}
}

// resolveChecker applies the real server's settings and the per-type
// defaults to a checker; false drops it.
func (b *builder) resolveChecker(vs *VirtualServer, rs *RealServer, c *Checker) bool {
	t := &c.timers
	inherit(t, c.has, &rs.timers, rs.has)
	set := c.has | rs.has
	if set&fConnectTimeout == 0 {
		t.ConnectTimeout = defaultConnectTimeout
	}
	if set&fRetry == 0 {
		switch c.Type {
		case CheckDNS:
			t.Retry = 3
		case CheckMisc:
			t.Retry = 0
		default:
			t.Retry = 1
		}
	}
	if set&fDelayBeforeRetry == 0 {
		switch c.Type {
		case CheckDNS:
			t.DelayBeforeRetry = t.DelayLoop
		case CheckHTTP, CheckSSL:
			t.DelayBeforeRetry = 3 * time.Second
		default:
			t.DelayBeforeRetry = time.Second
		}
	}
	if set&fWarmup == 0 {
		t.Warmup = t.DelayLoop
	}
	orDefault(c.has, fAlpha, &c.Alpha, rs.Alpha)
	c.ConnectTimeout, c.Retry, c.DelayBeforeRetry, c.Warmup, c.DelayLoop = t.ConnectTimeout, t.Retry, t.DelayBeforeRetry, t.Warmup, t.DelayLoop
	orDefault(c.has, fConnectIP, &c.ConnectIP, rs.Addr)
	if c.has&fConnectPort == 0 {
		c.ConnectPort = rs.Port
		if rs.Port == 0 && vs.Kind == VSAddr {
			c.ConnectPort = vs.Port
		}
	}
	if c.BindTo.IsValid() && c.BindTo.Is4() != c.ConnectIP.Is4() {
		b.errorf(c.Pos, "%s of real server %s: bindto %s and connect_ip %s are of different families", c.Type, rs.Addr, c.BindTo, c.ConnectIP)
		c.BindTo = netip.Addr{}
	}
	switch c.Type {
	case CheckMisc:
		if c.has&fMiscTimeout == 0 {
			c.Misc.Timeout = c.DelayLoop
		}
	case CheckHTTP, CheckSSL:
		if c.HTTP.Virtualhost == "" {
			c.HTTP.Virtualhost = rs.Virtualhost
		}
	case CheckFile:
		if b.cfg.idx.trackFiles[c.File.TrackFile] == nil {
			b.errorf(c.Pos, "FILE_CHECK of real server %s: track_file %s is not defined", rs.Addr, c.File.TrackFile)
			return false
		}
		if !c.File.WeightSet {
			c.File.Weight = b.cfg.idx.trackFiles[c.File.TrackFile].Weight
		}
	case CheckUDP:
		if c.UDP.MinReplyLength > c.UDP.MaxReplyLength {
			b.errorf(c.Pos, "UDP_CHECK of real server %s: min_reply_length %d is above max_reply_length %d", rs.Addr, c.UDP.MinReplyLength, c.UDP.MaxReplyLength)
		}
	case CheckDRPath:
		m := rs.Method
		if m == MethodUnset {
			m = vs.Method
		}
		if m != DR || vs.Kind != VSAddr || !vs.Addr.Is4() {
			b.errorf(c.Pos, "DR_PATH_CHECK of real server %s: only for lb_kind DR virtual servers with an IPv4 address (a vigil extension)", rs.Addr)
			return false
		}
		c.DRPath.VIP = vs.Addr
	case CheckTCP, CheckPing, CheckSMTP, CheckDNS:
	}
	if c.SMTP != nil {
		for _, h := range c.SMTP.Hosts {
			h.SMTP = &SMTPCheck{HeloName: c.SMTP.HeloName}
			b.resolveChecker(vs, rs, h)
			h.SMTP = nil
		}
	}
	if c.ConnectPort == 0 && c.Type == CheckDNS {
		c.ConnectPort = 53
	}
	if c.ConnectPort == 0 && c.Type == CheckSMTP {
		c.ConnectPort = 25
	}
	if c.ConnectPort == 0 && c.Type != CheckPing && c.Type != CheckMisc && c.Type != CheckFile {
		b.warnf(c.Pos, "%s of real server %s has no port to connect to: expected connect_port", c.Type, rs.Addr)
	}
	return true
}

// validateScriptSecurity mirrors keepalived's script checks: scripts that
// would run as root without enable_script_security make `keepalived -t`
// exit with status 6; with Env.CheckScript, unusable tracking scripts are
// errors and unusable notify/check scripts warnings (keepalived accepts
// those and fails at run time).
func (b *builder) validateScriptSecurity() {
	g := &b.cfg.Global
	type use struct {
		c     *Command
		track bool
	}
	var uses []use
	add := func(track bool, cs ...*Command) {
		for _, c := range cs {
			if c != nil && len(c.Args) > 0 {
				uses = append(uses, use{c, track})
			}
		}
	}
	notify := func(n *Notify) {
		add(false, n.Master, n.Backup, n.Fault, n.Stop, n.Deleted, n.Any, n.MasterRxLowerPri)
	}
	for _, s := range b.cfg.Scripts {
		add(true, s.Script)
	}
	add(false, g.StartupScript, g.ShutdownScript)
	for _, f := range []*Fifo{g.NotifyFifo, g.VRRPNotifyFifo, g.LVSNotifyFifo} {
		if f != nil {
			add(false, f.Script)
		}
	}
	for _, i := range b.cfg.Instances {
		notify(&i.Notify)
	}
	for _, sg := range b.cfg.SyncGroups {
		notify(&sg.Notify)
	}
	for _, vs := range b.cfg.VirtualServers {
		add(false, vs.QuorumUp, vs.QuorumDown)
		for _, rs := range vs.RealServers {
			add(false, rs.NotifyUp, rs.NotifyDown)
			for _, c := range rs.Checkers {
				if c.Misc != nil {
					add(false, c.Misc.Path)
				}
			}
		}
	}
	if len(uses) == 0 {
		return
	}
	// Without script_user keepalived runs scripts as keepalived_script
	// when that user exists, else as root.
	defaultUser := ""
	if b.env.UserExists != nil && b.env.UserExists("keepalived_script") {
		defaultUser = "keepalived_script"
	}
	// Each user and group a script names must exist (reported once).
	for _, who := range []struct {
		what   string
		exists func(string) bool
		name   func(*Command) string
	}{
		{"user", b.env.UserExists, func(c *Command) string { return c.User }},
		{"group", b.env.GroupExists, func(c *Command) string { return c.Group }},
	} {
		if who.exists == nil {
			continue
		}
		bad := map[string]bool{}
		for _, u := range uses {
			if name := who.name(u.c); name != "" && !bad[name] && !who.exists(name) {
				bad[name] = true
				b.errorf(u.c.Pos, "script %q: %s %s does not exist", u.c.Path(), who.what, name)
			}
		}
	}
	if !g.EnableScriptSecurity {
		for _, u := range uses {
			if b.env.CheckScript != nil && b.env.CheckScript(u.c.Path(), false) != nil {
				// A script that cannot run is no security risk.
				continue
			}
			user := u.c.User
			if user == "" {
				user = g.ScriptUser
			}
			if user == "" {
				user = defaultUser
			}
			if user == "" || user == "root" || user == "0" {
				b.errorf(u.c.Pos, "script %q would run as root but enable_script_security is not set (keepalived -t exits 6): set enable_script_security or script_user", u.c.Path())
				break
			}
		}
	}
	if g.EnableScriptSecurity && g.ScriptUser == "" && defaultUser == "" {
		// The default user is keepalived_script; vigil assumes it does not
		// exist (keepalived then refuses the scripts), as on most hosts.
		for _, u := range uses {
			if u.c.User == "" {
				b.errorf(u.c.Pos, "script %q has no user: enable_script_security is set without script_user and the default user keepalived_script is assumed missing", u.c.Path())
				break
			}
		}
	}
	if b.env.CheckScript == nil {
		return
	}
	for _, u := range uses {
		err := b.env.CheckScript(u.c.Path(), g.EnableScriptSecurity)
		if err == nil {
			continue
		}
		if u.track && !errors.Is(err, ErrScriptTolerated) {
			b.errorf(u.c.Pos, "script %q cannot be used: %v: the tracking script is disabled", u.c.Path(), err)
		} else {
			b.warnf(u.c.Pos, "script %q cannot be used: %v", u.c.Path(), err)
		}
	}
}
