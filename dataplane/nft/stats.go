package nft

import (
	"fmt"
	"net/netip"
	"slices"

	"sigs.k8s.io/knftables"

	"vigil/internal/inet"
	"vigil/lb"
)

// Traffic statistics, what `ipvsadm --stats` shows per virtual and real
// server: connections, and packets and bytes in each direction. They are
// the per-element counters of sets declared with "counter": a rule that
// looks a packet's key up in such a set counts the packet into the
// element it finds, and a lookup that misses ends the rule. Elements are
// keyed by the service and the real server, so rendering adds and removes
// elements only, in bulk, as it does for the scheduling maps, and an Apply
// that keeps a real server keeps its counts (unless most of a set changes
// at once: the set is then flushed and refilled, like the maps, and every
// count in it starts again).
//
// NAT and FNAT: base chains right after DNAT (priority dstnat+1, at
// prerouting for traffic through the director and at output for clients on
// it) look up the packets of flows vigil DNATed ("ct status dnat") by the
// flow's original destination address, the protocol, and the real server's
// address and port: the packet's destination in the original direction
// (after DNAT), its source in the reply direction. Per family (4, 6; "a"
// for services that forward every port, keyed without the port):
//
//	stats4_in   packets and bytes client → real server ("in")
//	stats4_out  packets and bytes real server → client ("out")
//	stats4_new  first packets of flows (ct state new): connections
//
// A packet that is not load-balanced costs three rules that stop at "ct
// status". fwmark services are not counted: nothing in a reply packet says
// which service its flow went through. Two services of one address and
// protocol that send to the same real server and port share one element
// (the first service's): their packets look the same.
//
// DR: the service's ingress chain already sees every packet; the rule that
// rewrites the destination MAC looks the packet up in stats4dr_in by
// (VIP, protocol, port, real server MAC) in the same rule, and a rule
// before it takes TCP SYNs (new connections) and also looks them up in
// stats4dr_new. Replies do not cross the director, so DR has no "out".
// Since a miss would end the forwarding rule, the sets hold every MAC the
// forwarding maps can produce. Real servers of one service that share a
// MAC share one element, reported by the first of them.
//
// A full rewrite of the tables (first Apply, or after someone edited them)
// starts the counts at zero, which Prometheus reads as a counter reset.

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

// counterRef is what an element of a statistics set counts.
type counterRef struct {
	family  knftables.Family
	service string // lb.Service.Name
	backend netip.AddrPort
	kind    counterKind
}

// statsPriority is just after DNAT (dstnat, -100) in prerouting and
// output: packets carry the real server's address by then.
const statsPriority = knftables.BaseChainPriority("-99")

// statsSet returns the table's statistics set name, creating it with its
// key type: a set whose every element carries a counter. (knftables has
// no field for a set's element statement; the declaration rides on the
// type, which it writes as "type T ;".)
func statsSet(t *table, name, keyType string) *set {
	if st := t.sets[name]; st != nil {
		return st
	}
	return t.addSet(&set{name: name, typ: keyType + " ; counter", counted: true})
}

// refKey names one element of one statistics set in rendered.counters.
func refKey(set, elem string) string { return set + " " + elem }

// counted lists the backends whose traffic is counted: the eligible ones
// and the draining ones (whose established flows still flow), sorted.
func counted(s *lb.Service) []lb.Backend {
	all := append(slices.Clone(s.Backends), s.Draining...)
	slices.SortFunc(all, func(a, b lb.Backend) int { return a.AddrPort().Compare(b.AddrPort()) })
	return slices.CompactFunc(all, func(a, b lb.Backend) bool { return a.AddrPort() == b.AddrPort() })
}

// statsNAT renders the statistics of a NAT or FNAT service: its real
// servers' elements in the table's statistics sets.
func statsNAT(t *table, s *lb.Service, refs map[string]counterRef) {
	if s.FwMark != 0 || !s.VIP.IsValid() {
		return
	}
	port := withPort(s)
	v := "4"
	if s.Family == inet.IPv6 {
		v = "6"
	}
	if !port {
		v += "a"
	}
	sets := map[counterKind]*set{}
	for kind, suffix := range [...]string{countNew: "_new", countIn: "_in", countOut: "_out"} {
		sets[counterKind(kind)] = statsSet(t, "stats"+v+suffix, statsKeyType(s.Family, port))
	}
	for _, b := range counted(s) {
		key := s.VIP.String() + " . " + s.Proto.String() + " . " + b.Addr.String()
		if port {
			key += fmt.Sprintf(" . %d", s.BackendPort(b))
		}
		if _, taken := sets[countIn].elems[key]; taken {
			// Another service of this address and protocol sends to the
			// same real server and port: packets cannot tell the two
			// apart, and the first one's element counts both.
			continue
		}
		for kind, st := range sets {
			st.elems[key] = ""
			refs[refKey(st.name, key)] = counterRef{family: t.family, service: s.Name, backend: b.AddrPort(), kind: kind}
		}
	}
}

// statsKeyType is the type of a counter map's key: the virtual address
// (the flow's original destination), the protocol, and the real server's
// address and, unless the service forwards every port, its port.
func statsKeyType(f inet.Family, port bool) string {
	a := "ipv4_addr"
	if f == inet.IPv6 {
		a = "ipv6_addr"
	}
	k := a + " . inet_proto . " + a
	if port {
		k += " . inet_service"
	}
	return k
}

// statsChains renders the two base chains that count NAT and FNAT
// traffic, one rule per statistics set: a packet whose flow vigil DNATed
// is looked up by the flow's original destination address, the protocol
// and the real server (the packet's destination in the original
// direction, after DNAT; its source in the reply direction), which counts
// it into the element found. Called once every service is rendered.
func statsChains(t *table) {
	var rules []string
	for _, v := range []string{"4", "4a", "6", "6a"} {
		if t.sets["stats"+v+"_in"] == nil {
			continue
		}
		ip := "ip"
		if v[0] == '6' {
			ip = "ip6"
		}
		in, out := "ct original "+ip+" daddr . meta l4proto . "+ip+" daddr", "ct original "+ip+" daddr . meta l4proto . "+ip+" saddr"
		if len(v) == 1 {
			in += " . th dport"
			out += " . th sport"
		}
		rules = append(rules,
			"ct status dnat ct direction original "+in+" @stats"+v+"_in",
			"ct status dnat ct state new "+in+" @stats"+v+"_new",
			"ct status dnat ct direction reply "+out+" @stats"+v+"_out")
	}
	if len(rules) == 0 {
		return
	}
	// After DNAT (dstnat, -100): at prerouting for traffic through the
	// director, at output for clients on it. The same rules in both, rather
	// than a jump to a shared chain, which would cost every packet a hop.
	for _, c := range []struct {
		name string
		hook knftables.BaseChainHook
	}{{"stats_in", knftables.PreroutingHook}, {"stats_out", knftables.OutputHook}} {
		ch := t.chain(c.name)
		ch.base = &baseChain{typ: knftables.FilterType, hook: c.hook, priority: statsPriority}
		for _, r := range rules {
			ch.add(r)
		}
	}
}

// drCounters adds a DR service's real servers to the statistics sets of
// the netdev table and returns the lookups that count a forwarded packet
// (in) and a new connection (nw, TCP only), to be placed in the rules
// after the destination MAC is set.
func drCounters(t *table, s *lb.Service, refs map[string]counterRef) (in, nw string) {
	f := fam(s)
	a := "ipv4_addr"
	v := "4dr"
	if s.Family == inet.IPv6 {
		a, v = "ipv6_addr", "6dr"
	}
	keyType, key := a+" . inet_proto . inet_service . ether_addr", f+" daddr . meta l4proto . th dport . ether daddr"
	if s.Port == 0 {
		keyType, key, v = a+" . inet_proto . ether_addr", f+" daddr . meta l4proto . ether daddr", v+"a"
	}
	sin := statsSet(t, "stats"+v+"_in", keyType)
	var snew *set
	if s.Proto == lb.TCP {
		snew = statsSet(t, "stats"+v+"_new", keyType)
	}
	for _, b := range counted(s) {
		if b.MAC.IsZero() {
			continue
		}
		k := s.VIP.String() + " . " + s.Proto.String()
		if s.Port != 0 {
			k += fmt.Sprintf(" . %d", s.Port)
		}
		k += " . " + b.MAC.String()
		if _, dup := sin.elems[k]; dup {
			continue
		}
		sin.elems[k] = ""
		refs[refKey(sin.name, k)] = counterRef{family: t.family, service: s.Name, backend: b.AddrPort(), kind: countIn}
		if snew != nil {
			snew.elems[k] = ""
			refs[refKey(snew.name, k)] = counterRef{family: t.family, service: s.Name, backend: b.AddrPort(), kind: countNew}
		}
	}
	in = key + " @" + sin.name
	if snew != nil {
		nw = key + " @" + snew.name
	}
	return in, nw
}
