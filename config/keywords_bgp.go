package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// BGP is a vigil extension of keepalived.conf (keepalived has no BGP):
// a bgp_instance block names a BGP speaker and its neighbors, and
// `bgp_announce NAME` in a virtual_server or vrrp_instance says which
// addresses it announces. Active-active directors behind a router's ECMP
// use it instead of VRRP.

// BGPInstance is a bgp_instance block.
type BGPInstance struct {
	Pos  Pos
	Name string
	// LocalAS is the speaker's AS number, 1..4294967295 (required).
	LocalAS uint32
	// RouterID is the BGP identifier; invalid means a local IPv4
	// address, chosen by the daemon.
	RouterID netip.Addr
	// DrainTime is how long a director that withdrew its routes at
	// shutdown keeps forwarding before it removes its rules, so that
	// packets already on their way (and the router's switch-over) still
	// find them. Default 2s.
	DrainTime time.Duration
	// AnnounceDelay holds back a virtual server's address, after it
	// gains its quorum (or its real servers change while it is not
	// announced), until its real servers have been unchanged this long:
	// the director that comes back then announces with the same table
	// as the others instead of one built from its first real server up.
	// Default 0 (announce at once).
	AnnounceDelay time.Duration
	Neighbors     []*BGPNeighbor
}

// BGPNeighbor is a neighbor block inside a bgp_instance.
type BGPNeighbor struct {
	Pos      Pos
	Addr     netip.Addr
	RemoteAS uint32
	// HoldTime is the proposed hold time: 0 (no keepalives) or 3..65535
	// seconds (RFC 4271 4.2); default 90s.
	HoldTime time.Duration
	// Password turns on TCP MD5 signatures (RFC 2385).
	Password string
	// BFD names a bfd_instance whose session gates this neighbor.
	BFD    string
	BFDPos Pos
	// BFDHolddown is how long the BGP session stays down after its BFD
	// session comes back Up from its first flap, doubling with each
	// further flap up to BFDHolddownMax (RFC 5882 3.1 hysteresis; see
	// bgp.Holddown). Default 1s and 60s; 0 lets BGP follow BFD at once.
	BFDHolddown, BFDHolddownMax time.Duration
	holddownPos                 Pos
	// Port is the neighbor's TCP port (default 179).
	Port uint16

	hasRemoteAS bool
}

// BGPAnnounce is one `bgp_announce NAME [community A:B]... [med N]` line.
type BGPAnnounce struct {
	Pos         Pos
	Instance    string
	Communities []uint32
	MED         uint32
	HasMED      bool
}

// BGPInstance returns the bgp_instance called name, or nil.
func (c *Config) BGPInstance(name string) *BGPInstance {
	return lookup(nil, c.BGPInstances, name, func(x *BGPInstance) string { return x.Name })
}

var (
	bgpInstanceTable *table[BGPInstance]
	bgpNeighborTable *table[BGPNeighbor]
)

// holddownKW is bfd_holddown or bfd_holddown_max: seconds 0..max, the
// first of the two lines kept for the neighbor's checks of them.
func holddownKW(name, doc string, max time.Duration, field func(*BGPNeighbor) *time.Duration) keyword[BGPNeighbor] {
	return keyword[BGPNeighbor]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, nb *BGPNeighbor) {
		b.noBlock(n)
		if d, ok := b.durArg(n, 0, max); ok {
			*field(nb) = d
			if nb.holddownPos.Line == 0 {
				nb.holddownPos = n.Key.Pos
			}
		}
	}}
}

func asnArg(b *builder, n *Node) (uint32, bool) {
	b.noBlock(n)
	v, ok := b.intArg(n, 1, 1<<32-1)
	return uint32(v), ok
}

func init() {
	bgpNeighborTable = newTable("neighbor IP { }", "vigil extension: one BGP neighbor of a bgp_instance (a router). vigil opens the TCP connection; it never listens on port 179.", []keyword[BGPNeighbor]{
		{Name: "remote_as", Status: Supported, Doc: "The neighbor's AS number, 1..4294967295 (required); equal to local_as makes an iBGP session.", Parse: func(b *builder, n *Node, nb *BGPNeighbor) {
			if v, ok := asnArg(b, n); ok {
				nb.RemoteAS, nb.hasRemoteAS = v, true
			}
		}},
		{Name: "hold_time", Status: Supported, Doc: "Proposed hold time in seconds: 0 or 3..65535 (default 90); keepalives go every third of it.", Parse: func(b *builder, n *Node, nb *BGPNeighbor) {
			b.noBlock(n)
			d, ok := b.durArg(n, 0, 65535*time.Second)
			if !ok {
				return
			}
			if d%time.Second != 0 || (d > 0 && d < 3*time.Second) {
				b.errorf(n.Args[0].Pos, "hold_time %s: expected 0 or whole seconds 3..65535 (RFC 4271)", n.Args[0].Text)
				return
			}
			nb.HoldTime = d
		}},
		strKW("password", "TCP MD5 signature key (RFC 2385), as the router's `neighbor password`.", "a password", func(nb *BGPNeighbor) *string { return &nb.Password }, 0),
		{Name: "bfd_instance", Status: Supported, Doc: "A bfd_instance whose session must be up for this BGP session to run: the session is torn down while BFD is down, and after BFD flapped it waits bfd_holddown before it reconnects.", Parse: func(b *builder, n *Node, nb *BGPNeighbor) {
			b.noBlock(n)
			if s, ok := b.strArg(n, "a bfd_instance name"); ok {
				nb.BFD, nb.BFDPos = s, n.Key.Pos
			}
		}},
		holddownKW("bfd_holddown", "Seconds (fractions allowed) the BGP session stays down after its bfd_instance comes back Up from a flap (default 1; 0: it follows BFD at once). Each further flap doubles it, up to bfd_holddown_max; once the BGP session has run for bfd_holddown_max it is forgiven its flaps. The first Up after the start is never held, nor one after a local AdminDown (the BFD process restarting): a BGP session that ran runs again at once. RFC 5882 3.1's hysteresis: a flapping BFD session does not reset the BGP session, and the routers' ECMP groups, on every flap.", time.Hour, func(nb *BGPNeighbor) *time.Duration { return &nb.BFDHolddown }),
		holddownKW("bfd_holddown_max", "Seconds: the longest bfd_holddown may grow to with repeated flaps, and how long the BGP session must run for its flaps to be forgotten (default 60; at least bfd_holddown).", 24*time.Hour, func(nb *BGPNeighbor) *time.Duration { return &nb.BFDHolddownMax }),
		{Name: "port", Status: Supported, Doc: "The neighbor's TCP port (default 179).", Parse: func(b *builder, n *Node, nb *BGPNeighbor) {
			b.noBlock(n)
			if w, ok := b.arg(n, "a port"); ok {
				if p, ok := b.portWord("port", w); ok && p != 0 {
					nb.Port = p
				} else if ok {
					b.errorf(w.Pos, "port 0: expected 1..65535")
				}
			}
		}},
	})
	bgpInstanceTable = newTable("bgp_instance NAME { }", "vigil extension: a BGP speaker that announces virtual servers' addresses to routers, for active-active directors behind ECMP. Started only when a bgp_instance exists.", []keyword[BGPInstance]{
		{Name: "local_as", Status: Supported, Doc: "This speaker's AS number, 1..4294967295 (required).", Parse: func(b *builder, n *Node, bi *BGPInstance) {
			if v, ok := asnArg(b, n); ok {
				bi.LocalAS = v
			}
		}},
		{Name: "router_id", Status: Supported, Doc: "BGP identifier, an IPv4 address (default: an IPv4 address of this host).", Parse: func(b *builder, n *Node, bi *BGPInstance) {
			b.noBlock(n)
			a, ok := b.addrArg(n)
			if !ok {
				return
			}
			if !a.Is4() {
				b.errorf(n.Args[0].Pos, "router_id %s: expected an IPv4 address", a)
				return
			}
			bi.RouterID = a
		}},
		durKW("drain_time", "Seconds a stopping director keeps forwarding after withdrawing its routes (default 2).", 0, time.Hour, func(bi *BGPInstance) *time.Duration { return &bi.DrainTime }, 0),
		durKW("announce_delay", "Seconds a virtual server's address waits, once it has its quorum and rules, until its real servers have stopped changing, before it is announced (default 0): a director that comes back then announces with the same Maglev table as the others, not one built from its first real server up; above delay_loop plus connect_timeout, every health check has had its turn. Withdrawal is never delayed.", 0, time.Hour, func(bi *BGPInstance) *time.Duration { return &bi.AnnounceDelay }, 0),
		{Name: "neighbor", Status: Supported, Doc: "A neighbor block: IP { remote_as ... }.", Parse: func(b *builder, n *Node, bi *BGPInstance) {
			if len(n.Args) == 0 {
				b.errorf(n.Key.Pos, "neighbor: missing address: expected neighbor IP {")
				return
			}
			b.extra(n, 1)
			a, ok := b.addrWord("neighbor", n.Args[0])
			if !ok || !b.needBlock(n) {
				return
			}
			nb := &BGPNeighbor{Pos: n.Key.Pos, Addr: a, HoldTime: 90 * time.Second, Port: 179, BFDHolddown: time.Second, BFDHolddownMax: time.Minute}
			bgpNeighborTable.run(b, n.Block, nb)
			if nb.holddownPos.Line > 0 {
				switch {
				case nb.BFD == "":
					b.warnf(nb.holddownPos, "bgp_instance %s: neighbor %s: bfd_holddown has no effect without bfd_instance", bi.Name, a)
				case nb.BFDHolddownMax < nb.BFDHolddown:
					b.errorf(nb.holddownPos, "bgp_instance %s: neighbor %s: bfd_holddown_max %s is below bfd_holddown %s: expected at least bfd_holddown", bi.Name, a, fmtSeconds(nb.BFDHolddownMax), fmtSeconds(nb.BFDHolddown))
					nb.BFDHolddownMax = nb.BFDHolddown
				}
			}
			if !nb.hasRemoteAS {
				b.errorf(n.Key.Pos, "bgp_instance %s: neighbor %s: remote_as is missing", bi.Name, a)
				return
			}
			for _, old := range bi.Neighbors {
				if old.Addr == a {
					b.errorf(n.Key.Pos, "bgp_instance %s: neighbor %s is already defined at %s", bi.Name, a, old.Pos)
					return
				}
			}
			bi.Neighbors = append(bi.Neighbors, nb)
		}},
	})
}

// bgpInstanceBlock parses a top-level bgp_instance block.
func bgpInstanceBlock(b *builder, n *Node, c *Config) {
	name, ok := b.named(n)
	if !ok {
		return
	}
	bi := &BGPInstance{Pos: n.Key.Pos, Name: name, DrainTime: 2 * time.Second}
	bgpInstanceTable.run(b, n.Block, bi)
	if bi.LocalAS == 0 {
		b.errorf(n.Key.Pos, "bgp_instance %s: local_as is missing", name)
		return
	}
	if len(bi.Neighbors) == 0 {
		b.warnf(n.Key.Pos, "bgp_instance %s: no neighbor: nothing is announced", name)
	}
	if old := c.BGPInstance(name); old != nil {
		b.errorf(n.Key.Pos, "bgp_instance %s is already defined at %s", name, old.Pos)
		return
	}
	c.BGPInstances = append(c.BGPInstances, bi)
}

// bgpAnnounceKW is the `bgp_announce NAME [community A:B]... [med N]`
// row of virtual_server (and, without options, of vrrp_instance).
func bgpAnnounceKW[T any](doc string, options bool, field func(*T) *[]*BGPAnnounce) keyword[T] {
	return keyword[T]{Name: "bgp_announce", Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if len(n.Args) == 0 {
			b.errorf(n.Key.Pos, "bgp_announce: missing name: expected bgp_announce BGP_INSTANCE")
			return
		}
		a := &BGPAnnounce{Pos: n.Key.Pos, Instance: n.Args[0].Text}
		args := n.Args[1:]
		for len(args) > 0 {
			w := args[0]
			if !options {
				b.errorf(w.Pos, "bgp_announce %s: unexpected %q: expected nothing after the name", a.Instance, w.Text)
				return
			}
			if len(args) < 2 || (w.Text != "community" && w.Text != "med") {
				b.errorf(w.Pos, "bgp_announce %s: unexpected %q: expected community A:B or med N", a.Instance, w.Text)
				return
			}
			val := args[1]
			switch w.Text {
			case "community":
				c, ok := parseCommunity(val.Text)
				if !ok {
					b.errorf(val.Pos, "bgp_announce %s: community %q: expected A:B with A and B in 0..65535", a.Instance, val.Text)
					return
				}
				a.Communities = append(a.Communities, c)
			case "med":
				m, ok := b.intWord("bgp_announce med", val, 0, 1<<32-1)
				if !ok {
					return
				}
				a.MED, a.HasMED = uint32(m), true
			}
			args = args[2:]
		}
		for _, old := range *field(v) {
			if old.Instance == a.Instance {
				b.errorf(n.Key.Pos, "bgp_announce %s is already given at %s", a.Instance, old.Pos)
				return
			}
		}
		*field(v) = append(*field(v), a)
	}}
}

// parseCommunity reads an RFC 1997 community written A:B.
func parseCommunity(s string) (uint32, bool) {
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 10, 16)
	l, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return uint32(h)<<16 | uint32(l), true
}

// validateBGP resolves bgp_announce references and warns about
// forwarding methods that do not survive a flow moving between directors.
func (b *builder) validateBGP() {
	c := b.cfg
	for _, vs := range c.VirtualServers {
		for _, a := range vs.BGPAnnounce {
			if c.BGPInstance(a.Instance) == nil {
				b.errorf(a.Pos, "virtual_server %s: bgp_announce: bgp_instance %s is not defined", vs.Key(), a.Instance)
				continue
			}
			if vs.Kind == VSFwmark {
				b.errorf(a.Pos, "virtual_server %s: bgp_announce needs an address to announce; a fwmark service has none", vs.Key())
				continue
			}
			if vs.Method != DR {
				m := vs.Method
				if m == MethodUnset {
					m = NAT
				}
				b.warnf(a.Pos, "virtual_server %s: bgp_announce with lb_kind %s: a flow the router moves to another director breaks unless connection state is shared; DR is the mode for active-active", vs.Key(), m)
			}
		}
	}
	for _, in := range c.Instances {
		for _, a := range in.BGPAnnounce {
			if c.BGPInstance(a.Instance) == nil {
				b.errorf(a.Pos, "vrrp_instance %s: bgp_announce: bgp_instance %s is not defined", in.Name, a.Instance)
			}
		}
	}
	for _, bi := range c.BGPInstances {
		for _, nb := range bi.Neighbors {
			if nb.BFD != "" && !b.bfdNames[nb.BFD] {
				b.errorf(nb.BFDPos, "bgp_instance %s: neighbor %s: bfd_instance %s is not defined", bi.Name, nb.Addr, nb.BFD)
			}
		}
	}
}
