package nft

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"sigs.k8s.io/knftables"

	"vigil/internal/inet"
	"vigil/lb"
)

// Traffic statistics, what `ipvsadm --stats` shows per virtual and real
// server: connections, and packets and bytes in each direction, counted by
// named nft counters so that reading them costs the packet path nothing.
//
// NAT and FNAT: a filter chain right after DNAT (priority dstnat+1, at
// prerouting for traffic through the director and at output for clients on
// it) sends packets of flows vigil DNATed ("ct status dnat") to the
// service's statistics chain through a verdict map keyed by the flow's
// original destination address, then one rule per service of that address
// (protocol and original destination port). There the real server is the
// packet's destination (original direction, after DNAT) or its source
// (reply direction), and one counter map lookup finds its counter:
//
//	<id>_cin   packets and bytes client → real server ("in")
//	<id>_cout  packets and bytes real server → client ("out")
//	<id>_cnew  first packets of flows (ct state new): connections
//
// A packet that is not load-balanced costs one rule (ct status). fwmark
// services are not counted: nothing in a reply packet says which service
// its flow went through.
//
// DR: the service's ingress chain already sees every packet, and the rule
// that rewrites the destination MAC counts into <id>_cin by that MAC in
// the same rule; a rule before it takes TCP SYNs (new connections) and
// counts them into <id>_cnew too. Replies do not cross the director, so
// DR has no "out". The counter maps hold every MAC the forwarding maps
// can produce, so a counter lookup never fails where forwarding would
// succeed. Real servers that share a MAC share one counter, which the
// first of them (in address order) reports.
//
// Counters are created with their real server and deleted with it; an
// Apply that keeps a real server keeps its counts. A full rewrite of the
// tables (first Apply, or after someone edited them) starts them at zero,
// which Prometheus reads as a counter reset.

// Stats are a virtual or real server's traffic counts.
type Stats struct {
	Conns      uint64
	InPackets  uint64
	InBytes    uint64
	OutPackets uint64
	OutBytes   uint64
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.Conns += o.Conns
	s.InPackets += o.InPackets
	s.InBytes += o.InBytes
	s.OutPackets += o.OutPackets
	s.OutBytes += o.OutBytes
}

// counterKind says which field of Stats a counter feeds.
type counterKind int

const (
	countNew counterKind = iota
	countIn
	countOut
)

// counterRef is what a named counter counts.
type counterRef struct {
	family  knftables.Family
	service string // lb.Service.Name
	backend netip.AddrPort
	kind    counterKind
}

// statsPriority is just after DNAT (dstnat, -100) in prerouting and
// output: packets carry the real server's address by then.
const statsPriority = knftables.BaseChainPriority("-99")

func counterName(s *lb.Service, kind counterKind, b lb.Backend) string {
	k := [...]string{"n", "i", "o"}[kind]
	return s.ID + "_c" + k + "_" + keyName(b.AddrPort())
}

// counted lists the backends whose traffic is counted: the eligible ones
// and the draining ones (whose established flows still flow), sorted.
func counted(s *lb.Service) []lb.Backend {
	all := append(slices.Clone(s.Backends), s.Draining...)
	slices.SortFunc(all, func(a, b lb.Backend) int { return a.AddrPort().Compare(b.AddrPort()) })
	return slices.CompactFunc(all, func(a, b lb.Backend) bool { return a.AddrPort() == b.AddrPort() })
}

// statsNAT renders the statistics of a NAT or FNAT service.
func statsNAT(t *table, s *lb.Service, refs map[string]counterRef) {
	if s.FwMark != 0 || !s.VIP.IsValid() {
		return
	}
	f := fam(s)
	addrType, vipMap := "ipv4_addr", "stats_vip4"
	if s.Family == inet.IPv6 {
		addrType, vipMap = "ipv6_addr", "stats_vip6"
	}
	if t.chains["stats"] == nil {
		t.chain("stats_in").base = &baseChain{typ: knftables.FilterType, hook: knftables.PreroutingHook, priority: statsPriority}
		t.chain("stats_in").add("jump stats")
		t.chain("stats_out").base = &baseChain{typ: knftables.FilterType, hook: knftables.OutputHook, priority: statsPriority}
		t.chain("stats_out").add("jump stats")
		t.chain("stats")
	}
	if t.sets[vipMap] == nil {
		t.addSet(&set{name: vipMap, isMap: true, typ: addrType + " : verdict"})
		t.chain("stats").add("meta nfproto", nfproto(s), "ct status dnat ct original", f, "daddr vmap @"+vipMap)
		// Keep the two families' rules in a fixed order.
		slices.Sort(t.chain("stats").rules)
	}
	vc := "stats_" + lb.NameOf(s.VIP)
	t.sets[vipMap].elems[s.VIP.String()] = "goto " + vc
	sc := s.ID + "_st"
	match := "meta l4proto " + s.Proto.String()
	if s.Port != 0 {
		match += fmt.Sprintf(" ct original proto-dst %d", s.Port)
	}
	t.chain(vc).add(match, "goto", sc)

	port := withPort(s)
	keyType, in, out := addrType, f+" daddr", f+" saddr"
	if port {
		p := s.Proto.String()
		keyType += " . inet_service"
		in += " . " + p + " dport"
		out += " . " + p + " sport"
	}
	maps := map[counterKind]*set{}
	for _, k := range []struct {
		kind counterKind
		name string
	}{{countNew, "_cnew"}, {countIn, "_cin"}, {countOut, "_cout"}} {
		maps[k.kind] = t.addSet(&set{name: s.ID + k.name, isMap: true, typ: keyType + " : counter"})
	}
	c := t.chain(sc)
	c.add("ct direction reply counter name", out, "map @"+maps[countOut].name, "return")
	c.add("ct state new counter name", in, "map @"+maps[countNew].name)
	c.add("counter name", in, "map @"+maps[countIn].name)
	for _, b := range counted(s) {
		key := b.Addr.String()
		if port {
			p := b.Port
			if p == 0 {
				p = s.Port
			}
			key += fmt.Sprintf(" . %d", p)
		}
		for kind, m := range maps {
			name := counterName(s, kind, b)
			t.counters[name] = true
			m.elems[key] = name
			refs[name] = counterRef{family: t.family, service: s.Name, backend: b.AddrPort(), kind: kind}
		}
	}
}

// sortStats puts, in every per-address statistics chain, the rules of
// services with a port before those of all-ports services of the same
// address, which would otherwise take their packets.
func sortStats(t *table) {
	for name, c := range t.chains {
		if !strings.HasPrefix(name, "stats_") || c.base != nil {
			continue
		}
		slices.SortStableFunc(c.rules, func(a, b string) int {
			return cmp.Compare(b2i(!strings.Contains(a, "proto-dst")), b2i(!strings.Contains(b, "proto-dst")))
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// drCounters creates the counter maps of a DR service, keyed by real
// server MAC, and returns the statements that count a forwarded packet
// (in) and a new connection (new).
func drCounters(t *table, s *lb.Service, refs map[string]counterRef) (in, nw string) {
	cin := t.addSet(&set{name: s.ID + "_cin", isMap: true, typ: "ether_addr : counter"})
	var cnew *set
	if s.Proto == lb.TCP {
		cnew = t.addSet(&set{name: s.ID + "_cnew", isMap: true, typ: "ether_addr : counter"})
	}
	for _, b := range counted(s) {
		if b.MAC.IsZero() {
			continue
		}
		mac := b.MAC.String()
		if _, dup := cin.elems[mac]; dup {
			continue
		}
		name := counterName(s, countIn, b)
		t.counters[name] = true
		cin.elems[mac] = name
		refs[name] = counterRef{family: t.family, service: s.Name, backend: b.AddrPort(), kind: countIn}
		if cnew != nil {
			name := counterName(s, countNew, b)
			t.counters[name] = true
			cnew.elems[mac] = name
			refs[name] = counterRef{family: t.family, service: s.Name, backend: b.AddrPort(), kind: countNew}
		}
	}
	in = "counter name ether daddr map @" + cin.name
	if cnew != nil {
		nw = "counter name ether daddr map @" + cnew.name
	}
	return in, nw
}
