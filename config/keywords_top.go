package config

import (
	"time"
	"vigil/internal/inet"
)

var topTable *table[Config]

// named reads the NAME of `keyword NAME {`.
func (b *builder) named(n *Node) (string, bool) {
	if len(n.Args) == 0 {
		b.errorf(n.Key.Pos, "%s: missing name: expected %s NAME {", n.Key.Text, n.Key.Text)
		return "", false
	}
	b.extra(n, 1)
	return keep(n.Args[0].Text), b.needBlock(n)
}

// namedOnly is named for the blocks whose name keepalived 2.2.7 refuses to
// see followed by other words (vrrp_instance VI_1 primary {,
// vrrp_sync_group and virtual_server_group likewise): an error, though
// the block is still read so that its contents are checked too.
func (b *builder) namedOnly(n *Node) (string, bool) {
	if len(n.Args) > 1 {
		b.errorf(n.Args[1].Pos, "%s %s: unexpected %q after the name: expected %s NAME { (keepalived refuses this block)", n.Key.Text, n.Args[0].Text, n.Args[1].Text, n.Key.Text)
		one := *n
		one.Args = n.Args[:1]
		n = &one
	}
	return b.named(n)
}

func init() {
	topTable = newTable("top level", "Blocks of a keepalived.conf. `include` and the `@id`, `$NAME=` and `~SEQ` forms are handled by the preprocessor before these.", []keyword[Config]{
		{Name: "global_defs", Status: Supported, Doc: "Daemon-wide settings.", Parse: func(b *builder, n *Node, c *Config) {
			if !b.needBlock(n) {
				return
			}
			if !posValid(c.Global.Pos) {
				c.Global.Pos = n.Key.Pos
			}
			globalTable.run(b, n.Block, &c.Global)
		}},
		{Name: "vrrp_script", Status: Supported, Doc: "A tracking script.", Parse: func(b *builder, n *Node, c *Config) {
			name, ok := b.named(n)
			if !ok {
				return
			}
			s := &VRRPScript{Pos: n.Key.Pos, Name: name, Interval: time.Second, Rise: 1, Fall: 1}
			scriptTable.run(b, n.Block, s)
			if s.Script == nil {
				b.errorf(n.Key.Pos, "vrrp_script %s: no script: expected script PATH", name)
				return
			}
			if old := c.idx.scripts[name]; old != nil {
				// keepalived accepts this silently; the first one is used.
				b.warnf(n.Key.Pos, "vrrp_script %s is already defined at %s: this one is ignored", name, old.Pos)
				return
			}
			c.Scripts = append(c.Scripts, s)
			c.idx.scripts[name] = s
		}},
		{Name: "track_file", Status: Supported, Doc: "A tracked file.", Parse: trackFileBlock},
		{Name: "vrrp_track_file", Status: Supported, Doc: "Old name of track_file.", Parse: trackFileBlock},
		{Name: "vrrp_track_process", Status: Supported, Doc: "A tracked process.", Parse: func(b *builder, n *Node, c *Config) {
			name, ok := b.named(n)
			if !ok {
				return
			}
			t := &TrackProcess{Pos: n.Key.Pos, Name: name, Weight: 1, Quorum: 1, QuorumMax: -1}
			trackProcessTable.run(b, n.Block, t)
			if len(t.Process) == 0 {
				b.errorf(n.Key.Pos, "vrrp_track_process %s: no process: expected process NAME", name)
				return
			}
			if t.QuorumMax >= 0 && t.QuorumMax < t.Quorum {
				b.errorf(n.Key.Pos, "vrrp_track_process %s: quorum_max %d is below quorum %d", name, t.QuorumMax, t.Quorum)
			}
			if old := c.idx.trackProcs[name]; old != nil {
				b.errorf(n.Key.Pos, "vrrp_track_process %s is already defined at %s", name, old.Pos)
				return
			}
			c.TrackProcesses = append(c.TrackProcesses, t)
			c.idx.trackProcs[name] = t
		}},
		{Name: "vrrp_sync_group", Status: Supported, Doc: "Instances that change state together.", Parse: func(b *builder, n *Node, c *Config) {
			name, ok := b.namedOnly(n)
			if !ok {
				return
			}
			g := &SyncGroup{Pos: n.Key.Pos, Name: name}
			syncGroupTable.run(b, n.Block, g)
			for _, old := range c.SyncGroups {
				if old.Name == name {
					b.errorf(n.Key.Pos, "vrrp_sync_group %s is already defined at %s", name, old.Pos)
					return
				}
			}
			c.SyncGroups = append(c.SyncGroups, g)
		}},
		{Name: "vrrp_instance", Status: Supported, Doc: "A virtual router.", Parse: func(b *builder, n *Node, c *Config) {
			name, ok := b.namedOnly(n)
			if !ok {
				return
			}
			i := &Instance{Pos: n.Key.Pos, Name: name, Family: inet.IPv4, Priority: 100, AdvertInt: time.Second, UnicastTTL: -1, DownTimerAdverts: 3}
			instanceTable.run(b, n.Block, i)
			if old := c.idx.instances[name]; old != nil {
				b.errorf(n.Key.Pos, "vrrp_instance %s is already defined at %s", name, old.Pos)
				return
			}
			c.idx.instances[name] = i
			c.Instances = append(c.Instances, i)
		}},
		ignoredWith[Config]("net_namespace", "Run in a network namespace; run vigil under `ip netns exec` instead.", checkArg("a namespace name")),
		ignoredWith[Config]("net_namespace_ipvs", "Namespace for IPVS configuration.", checkAny),
		ignoredWith[Config]("namespace_with_ipsets", "Allow ipsets in a namespace on old kernels.", checkFlag),
		ignoredWith[Config]("instance", "Name used for pid files of several daemons in one namespace.", checkArg("an instance name")),
		ignoredWith[Config]("use_pid_dir", "Put pid files in /run/keepalived.", checkFlag),
		ignoredWith[Config]("linkbeat_use_polling", "Poll link state with MII/ethtool instead of netlink.", checkFlag),
		ignoredWith[Config]("child_wait_time", "Time to wait for child processes at shutdown.", checkInt(0, 4294967295)),
		{Name: "garp_group", Status: Supported, Doc: "Pacing of gratuitous ARPs and unsolicited NAs per interface or group of interfaces: see its block.", Parse: parseGarpGroup},
		{Name: "linkbeat_interfaces", Status: Ignored, Doc: "Interfaces to poll for link state: IFNAME [MII|ETHTOOL|IOCTL] per line; vigil uses netlink link state.", Parse: func(b *builder, n *Node, c *Config) {
			b.interfaceLines(n, func(it *Node) {
				if len(it.Args) > 0 {
					switch it.Args[0].Text {
					case "MII", "ETHTOOL", "IOCTL":
					default:
						b.errorf(it.Args[0].Pos, "linkbeat_interfaces %s: unexpected %q: expected MII, ETHTOOL or IOCTL", it.Key.Text, it.Args[0].Text)
					}
				}
			})
		}},
		{Name: "track_group", Status: Ignored, Doc: "NAME { group { INSTANCE... } }: instances that go to FAULT when a static address, route or rule naming the group disappears.", Parse: func(b *builder, n *Node, c *Config) {
			name, ok := b.named(n)
			if !ok {
				return
			}
			if b.trackGroups == nil {
				b.trackGroups = map[string]bool{}
			}
			b.trackGroups[name] = true
			for _, it := range n.Block {
				if it.Key.Text != "group" {
					b.errorf(it.Key.Pos, "unknown keyword %q in track_group", it.Key.Text)
					continue
				}
				b.stringList(it)
			}
		}},
		{Name: "interface_up_down_delays", Status: Ignored, Doc: "Debounce of interface state changes: IFNAME DOWN_DELAY [UP_DELAY] per line, seconds 0..255.", Parse: func(b *builder, n *Node, c *Config) {
			b.interfaceLines(n, func(it *Node) {
				for _, w := range it.Args {
					b.durWord("interface_up_down_delays "+it.Key.Text, w, 0, 255*time.Second)
				}
			})
		}},
		{Name: "bfd_instance", Status: Supported, Doc: "A BFD session (RFC 5880, 5881): see its block.", Parse: parseBFDInstance},
		listKW("static_ipaddress", "Addresses set at startup whatever the VRRP state (same syntax as virtual_ipaddress, plus track_group).", (*builder).staticVIPs, func(c *Config) *[]*VIP { return &c.StaticAddresses }),
		listKW("static_routes", "Routes set at startup (ip route syntax).", (*builder).routeList, func(c *Config) *[]*Route { return &c.StaticRoutes }),
		listKW("static_rules", "Policy rules set at startup (ip rule syntax).", (*builder).ruleList, func(c *Config) *[]*Rule { return &c.StaticRules }),
		{Name: "virtual_server_group", Status: Supported, Doc: "Named set of addresses, ranges (A-B, A/len) with ports, and fwmarks.", Parse: func(b *builder, n *Node, c *Config) {
			name, ok := b.namedOnly(n)
			if !ok {
				return
			}
			g := &VirtualServerGroup{Pos: n.Key.Pos, Name: name}
			for _, it := range n.Block {
				if e := b.vsgEntry(it); e != nil {
					g.Entries = append(g.Entries, e)
				}
			}
			if old := c.VirtualServerGroup(name); old != nil {
				// keepalived accepts this silently; the first one is used.
				b.warnf(n.Key.Pos, "virtual_server_group %s is already defined at %s: this one is ignored", name, old.Pos)
				return
			}
			c.VirtualServerGroups = append(c.VirtualServerGroups, g)
		}},
		{Name: "virtual_server", Status: Supported, Doc: "A load-balanced service.", Parse: func(b *builder, n *Node, c *Config) {
			if vs := b.virtualServer(n); vs != nil {
				c.VirtualServers = append(c.VirtualServers, vs)
			}
		}},
		{Name: "local_address_group", Status: Supported, Doc: "DPVS extension: source addresses of FNAT services, `IP|IP-RANGE [IFNAME]` per line.", Parse: func(b *builder, n *Node, c *Config) {
			name, ok := b.named(n)
			if !ok {
				return
			}
			g := &LocalAddressGroup{Pos: n.Key.Pos, Name: name}
			for _, it := range n.Block {
				first, last, ok := parseRange(it.Key.Text)
				if !ok {
					b.errorf(it.Key.Pos, "local_address_group %s: invalid address %q: expected IP, IP-LAST or IP/LEN", name, it.Key.Text)
					continue
				}
				e := &LocalAddress{Pos: it.Key.Pos, First: first, Last: last}
				if len(it.Args) > 0 {
					e.Dev = keep(it.Args[0].Text)
				}
				if len(it.Args) > 1 {
					b.warnf(it.Args[1].Pos, "local_address_group %s: unexpected %q: ignored", name, it.Args[1].Text)
				}
				g.Entries = append(g.Entries, e)
			}
			if c.LocalAddressGroup(name) != nil {
				b.errorf(n.Key.Pos, "local_address_group %s is already defined", name)
				return
			}
			c.LocalAddressGroups = append(c.LocalAddressGroups, g)
		}},
		{Name: "bgp_instance", Status: Supported, Doc: "vigil extension: a BGP speaker announcing virtual servers to routers (active-active directors behind ECMP).", Parse: bgpInstanceBlock},
		{Name: "SSL", Status: Supported, Doc: "TLS client settings of SSL_GET.", Parse: func(b *builder, n *Node, c *Config) {
			if !b.needBlock(n) {
				return
			}
			s := &SSLConfig{Pos: n.Key.Pos}
			sslTable.run(b, n.Block, s)
			c.SSL = s
		}},
	})
}

func trackFileBlock(b *builder, n *Node, c *Config) {
	name, ok := b.named(n)
	if !ok {
		return
	}
	t := &TrackFile{Pos: n.Key.Pos, Name: name, Weight: 1}
	trackFileTable.run(b, n.Block, t)
	if t.File == "" {
		b.errorf(n.Key.Pos, "%s %s: no file: expected file PATH", n.Key.Text, name)
		return
	}
	if old := c.idx.trackFiles[name]; old != nil {
		b.errorf(n.Key.Pos, "%s %s is already defined at %s", n.Key.Text, name, old.Pos)
		return
	}
	c.TrackFiles = append(c.TrackFiles, t)
	c.idx.trackFiles[name] = t
}

// vsgEntry parses one virtual_server_group line.
func (b *builder) vsgEntry(it *Node) *VSGroupEntry {
	e := &VSGroupEntry{Pos: it.Key.Pos, Family: inet.IPv4}
	if it.HasBlock {
		b.errorf(it.Key.Pos, "virtual_server_group: unexpected block after %s", it.Key.Text)
	}
	if it.Key.Text == "fwmark" {
		if len(it.Args) == 0 {
			b.errorf(it.Key.Pos, "virtual_server_group fwmark: missing value: expected an integer 1..4294967295")
			return nil
		}
		v, ok := b.intWord("virtual_server_group fwmark", it.Args[0], 1, 1<<32-1)
		if !ok {
			return nil
		}
		e.IsFwmark, e.Fwmark = true, uint32(v)
		if len(it.Args) > 1 {
			switch it.Args[1].Text {
			case "inet":
			case "inet6":
				e.Family = inet.IPv6
			default:
				b.errorf(it.Args[1].Pos, "virtual_server_group fwmark %d: unexpected %q: expected inet or inet6", v, it.Args[1].Text)
			}
		}
		return e
	}
	first, last, ok := parseRange(it.Key.Text)
	if !ok {
		b.errorf(it.Key.Pos, "virtual_server_group: invalid address %q: expected IP, IP-LAST or IP/LEN", it.Key.Text)
		return nil
	}
	e.First, e.Last, e.Family = first, last, inet.Of(first)
	if len(it.Args) > 0 {
		p, ok := b.portWord("virtual_server_group port", it.Args[0])
		if !ok {
			return nil
		}
		e.Port = p
	}
	return e
}

// virtualServer parses `virtual_server IP [PORT] | fwmark N | group NAME {`.
// interfaceLines checks a block of `IFNAME ...` lines: each must name an
// interface of this host, and check reads the words after it.
func (b *builder) interfaceLines(n *Node, check func(it *Node)) {
	if !b.needBlock(n) {
		return
	}
	for _, it := range n.Block {
		if !b.ifExists(it.Key.Text) {
			b.errorf(it.Key.Pos, "%s: interface %s does not exist", n.Key.Text, it.Key.Text)
		}
		check(it)
	}
}

func (b *builder) virtualServer(n *Node) *VirtualServer {
	vs := &VirtualServer{Pos: n.Key.Pos, Family: inet.IPv4}
	if len(n.Args) == 0 {
		b.errorf(n.Key.Pos, "virtual_server: missing address: expected IP [PORT], fwmark N or group NAME")
		return nil
	}
	if !b.needBlock(n) {
		return nil
	}
	ok := true
	switch first := n.Args[0]; first.Text {
	case "fwmark":
		vs.Kind = VSFwmark
		if len(n.Args) < 2 {
			b.errorf(first.Pos, "virtual_server fwmark: missing value: expected an integer 1..4294967295")
			ok = false
			break
		}
		v, good := b.intWord("virtual_server fwmark", n.Args[1], 1, 1<<32-1)
		vs.Fwmark, ok = uint32(v), good
	case "group":
		vs.Kind = VSGroup
		if len(n.Args) < 2 {
			b.errorf(first.Pos, "virtual_server group: missing name")
			ok = false
			break
		}
		vs.Group = n.Args[1].Text
	default:
		a, good := parseAddr(first.Text)
		if !good {
			b.errorf(first.Pos, "virtual_server %q: expected an IP address, fwmark N or group NAME", first.Text)
			ok = false
			break
		}
		vs.Addr, vs.Family = a, inet.Of(a)
		if len(n.Args) > 1 {
			p, good := b.portWord("virtual_server port", n.Args[1])
			if !good {
				ok = false
				break
			}
			vs.Port = p
			vs.has |= fPort
		}
	}
	vsTable.run(b, n.Block, vs)
	if !ok {
		return nil
	}
	return vs
}

// realServer parses `real_server IP [PORT] {`.
func (b *builder) realServer(n *Node, vs *VirtualServer) *RealServer {
	rs := &RealServer{Pos: n.Key.Pos, Weight: 1}
	if len(n.Args) == 0 {
		b.errorf(n.Key.Pos, "real_server: missing address: expected IP [PORT]")
		return nil
	}
	a, ok := parseAddr(n.Args[0].Text)
	if !ok {
		b.errorf(n.Args[0].Pos, "real_server %q: expected an IPv4 or IPv6 address", n.Args[0].Text)
	}
	rs.Addr = a
	if len(n.Args) > 1 {
		p, good := b.portWord("real_server port", n.Args[1])
		if good {
			rs.Port = p
			rs.has |= fPort
		}
		ok = ok && good
	}
	if !b.needBlock(n) {
		return nil
	}
	rsTable.run(b, n.Block, rs)
	if !ok {
		return nil
	}
	return rs
}

// checker parses a checker block with its type-specific table first and
// the common options second.
func (b *builder) checker(n *Node, t CheckerType) *Checker {
	c := &Checker{Pos: n.Key.Pos, Type: t}
	switch t {
	case CheckHTTP, CheckSSL:
		c.HTTP = &HTTPCheck{Protocol: "1.0"}
	case CheckMisc:
		c.Misc = &MiscCheck{}
	case CheckDNS:
		c.DNS = &DNSCheck{Type: "SOA", Name: "."}
	case CheckUDP:
		c.UDP = &UDPCheck{MaxReplyLength: 255}
	case CheckSMTP:
		c.SMTP = &SMTPCheck{}
	case CheckFile:
		c.File = &FileCheck{}
	case CheckDRPath:
		c.DRPath = &DRPathCheck{}
	}
	if !b.needBlock(n) {
		return nil
	}
	specific := checkerTables[t.String()]
	for _, it := range n.Block {
		if specific != nil {
			if _, ok := specific.lookup(it.Key.Text); ok {
				specific.one(b, it, c)
				continue
			}
		}
		if t == CheckFile {
			b.errorf(it.Key.Pos, "unknown keyword %q in FILE_CHECK", it.Key.Text)
			continue
		}
		if _, ok := checkerTable.lookup(it.Key.Text); !ok {
			b.errorf(it.Key.Pos, "unknown keyword %q in %s", it.Key.Text, t)
			continue
		}
		checkerTable.one(b, it, c)
	}
	switch {
	case c.HTTP != nil && len(c.HTTP.URLs) == 0:
		b.errorf(n.Key.Pos, "%s has no url: expected url { path ... }", t)
		return nil
	case c.Misc != nil && (c.Misc.Path == nil || len(c.Misc.Path.Args) == 0):
		b.errorf(n.Key.Pos, "MISC_CHECK has no misc_path: expected misc_path COMMAND")
		return nil
	case c.File != nil && c.File.TrackFile == "":
		b.errorf(n.Key.Pos, "FILE_CHECK has no track_file: expected track_file NAME")
		return nil
	}
	return c
}

func posValid(p Pos) bool { return p.File != "" || p.Line > 0 }
