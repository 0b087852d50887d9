package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/knftables"

	"vigil/internal/inet"
	"vigil/lb"
)

// hashSeed is the jhash seed of every hashing rule. It must be fixed: nft
// gives a rule without "seed" a random one, and then two directors (or one
// director before and after a restart) would send a flow to different real
// servers, breaking every DR connection on failover.
const hashSeed = "0x76696769" // "vigi"

// FNATPorts is the number of source ports vigil gives each FNAT local
// address towards one real server: the unprivileged range 1024-65535 it
// passes to "snat to".
const FNATPorts = 65535 - 1024 + 1

// FNATCapacity is how many concurrent flows an FNAT service can keep open
// to one real server before its local address pool runs out of ports: the
// daemon compares it with Conns to warn in time.
func FNATCapacity(s *lb.Service) int { return s.FNATCapacity(FNATPorts) }

// pinTimeout bounds how long a DR flow that started while a real server was
// draining stays pinned to the new Maglev table after its last packet.
const pinTimeout = 15 * time.Minute

// dynSetSize is the capacity of the sets the packet path fills
// (persistence, DR pins): nft's default, stated so that it is visible.
const dynSetSize = 65535

// env is what rendering needs besides the desired state: facts about the
// host, and what the previous Apply left in the kernel.
type env struct {
	// devMAC is the MAC address of each DR ingress device that exists.
	devMAC map[string]lb.MAC
	// drOwners is, per DR service ID, the real server each Maglev slot
	// sent established flows to after the previous Apply.
	drOwners map[string][]netip.AddrPort
}

// rendered is the result of render: the ruleset, and the DR slot owners to
// remember once it is applied.
type rendered struct {
	rs       *ruleset
	drOwners map[string][]netip.AddrPort
	// counters says what each element of the statistics sets counts
	// (stats.go), by refKey.
	counters map[string]counterRef
}

// render turns desired into vigil's tables. A service that cannot be
// rendered (a DR device that does not exist, say) is left out and
// reported, so that one bad service does not hold the others back.
func render(desired lb.Desired, e env) (rendered, error) {
	out := rendered{rs: newRuleset(), drOwners: map[string][]netip.AddrPort{}, counters: map[string]counterRef{}}
	var errs []error
	for i := range desired.Services {
		s := &desired.Services[i]
		var err error
		switch s.Method {
		case lb.NAT, lb.FNAT:
			if err = renderNAT(out.rs, s); err == nil {
				statsNAT(out.rs.table(knftables.InetFamily), s, out.counters)
			}
		case lb.DR:
			err = renderDR(out, s, e)
		default:
			err = fmt.Errorf("method %v is not supported", s.Method)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.Name, err))
		}
	}
	if t := out.rs.tables[knftables.InetFamily]; t != nil {
		statsChains(t)
		localGuardChain(t)
		realGuardChain(t)
	}
	return out, errors.Join(errs...)
}

// fam is the nft keyword of the service's family: "ip" or "ip6".
// fam is the nft payload family of s's addresses: "ip" or "ip6".
func fam(s *lb.Service) string {
	if s.Family == inet.IPv6 {
		return "ip6"
	}
	return "ip"
}

func nfproto(s *lb.Service) string {
	if s.Family == inet.IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// match is the part of a rule that selects the service's packets.
func match(s *lb.Service) string {
	var b []string
	if s.FwMark != 0 {
		b = append(b, fmt.Sprintf("meta mark 0x%08x meta nfproto %s", s.FwMark, nfproto(s)))
	} else {
		b = append(b, fam(s)+" daddr "+s.VIP.String())
	}
	b = append(b, "meta l4proto "+s.Proto.String())
	if s.FwMark == 0 && s.Port != 0 {
		b = append(b, "th dport "+strconv.Itoa(int(s.Port)))
	}
	return strings.Join(b, " ")
}

// withPort reports whether the service forwards to real server ports, as
// opposed to keeping the client's destination port (all-ports and fwmark
// services whose real servers have no port).
func withPort(s *lb.Service) bool {
	for _, b := range s.Backends {
		if b.Port != 0 {
			return true
		}
	}
	for _, b := range s.Draining {
		if b.Port != 0 {
			return true
		}
	}
	return false
}

func fullBits(s *lb.Service) int {
	if s.Family == inet.IPv6 {
		return 128
	}
	return 32
}

// mask is " & MASK" for a persistence granularity below the full length.
func mask(s *lb.Service) string {
	bits := s.PersistenceMask
	if bits <= 0 || bits >= fullBits(s) {
		return ""
	}
	m := make([]byte, fullBits(s)/8)
	for i := 0; i < bits; i++ {
		m[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(m)
	return " & " + a.String()
}

// hashInput is what jhash hashes for the service's lb.Hash.
func hashInput(s *lb.Service) string {
	f := fam(s)
	switch s.Hash {
	case lb.HashSourceAddrPort:
		return f + " saddr . th sport"
	case lb.HashDestAddr:
		return f + " daddr"
	case lb.HashFlow:
		return f + " saddr . th sport . " + f + " daddr . th dport"
	default: // HashSourceAddr
		return f + " saddr" + mask(s)
	}
}

// selector is the expression whose value picks a slot, and the number of
// slots.
func selector(s *lb.Service) (string, int) {
	switch s.Selection {
	case lb.SelectHash:
		w := s.TotalWeight()
		return fmt.Sprintf("jhash %s mod %d seed %s", hashInput(s), w, hashSeed), w
	case lb.SelectMaglev:
		m := len(s.Maglev)
		return fmt.Sprintf("jhash %s mod %d seed %s", hashInput(s), m, hashSeed), m
	case lb.SelectRandom:
		w := s.TotalWeight()
		return fmt.Sprintf("numgen random mod %d", w), w
	default:
		w := s.TotalWeight()
		return fmt.Sprintf("numgen inc mod %d", w), w
	}
}

// slots lists, for each backend index, the element keys it owns: weighted
// ranges, or its Maglev slots.
func slots(s *lb.Service) [][]string {
	out := make([][]string, len(s.Backends))
	if s.Selection == lb.SelectMaglev {
		for i, b := range s.Maglev {
			out[b] = append(out[b], strconv.Itoa(i))
		}
		return out
	}
	start := 0
	for i, b := range s.Backends {
		if expanded(s) {
			for k := start; k < start+b.Weight; k++ {
				out[i] = append(out[i], strconv.Itoa(k))
			}
		} else if b.Weight == 1 {
			out[i] = []string{strconv.Itoa(start)}
		} else {
			out[i] = []string{fmt.Sprintf("%d-%d", start, start+b.Weight-1)}
		}
		start += b.Weight
	}
	return out
}

// expanded reports whether weighted ranges must be spelled out slot by
// slot: nft 1.0.6 rejects a masked address inside jhash when the map has
// the interval flag ("Value 4294967040 exceeds valid range 0-0").
func expanded(s *lb.Service) bool {
	return s.Selection == lb.SelectHash && s.Hash == lb.HashSourceAddr && mask(s) != ""
}

// slotFlags: weighted ranges need an interval map, Maglev slots do not.
func slotFlags(s *lb.Service) []knftables.SetFlag {
	if s.Selection == lb.SelectMaglev || expanded(s) {
		return nil
	}
	return []knftables.SetFlag{knftables.IntervalFlag}
}

// keyName makes a real server address:port safe inside an nft name.
func keyName(ap netip.AddrPort) string {
	return lb.NameOf(ap.Addr()) + "_" + strconv.Itoa(int(ap.Port()))
}

// natChains are the base chains of table inet vigil: new flows to a VIP
// arrive at prerouting (through the director) or output (from it), and
// both go to dispatch; FNAT's source rewrite is at postrouting.
func natChains(t *table) {
	if t.chains["prerouting"] != nil {
		return
	}
	t.chain("prerouting").base = &baseChain{typ: knftables.NATType, hook: knftables.PreroutingHook, priority: knftables.DNATPriority}
	t.chain("prerouting").add("jump dispatch")
	t.chain("output").base = &baseChain{typ: knftables.NATType, hook: knftables.OutputHook, priority: knftables.DNATPriority}
	t.chain("output").add("jump dispatch")
	t.chain("postrouting").base = &baseChain{typ: knftables.NATType, hook: knftables.PostroutingHook, priority: knftables.SNATPriority}
	t.chain("dispatch")
}

func renderNAT(rs *ruleset, s *lb.Service) error {
	if s.Method == lb.FNAT && len(s.LocalAddrs) == 0 {
		return errors.New("FNAT without local addresses (laddr_group_name)")
	}
	if !s.VIP.IsValid() && s.FwMark == 0 {
		return errors.New("neither a virtual address nor a fwmark")
	}
	t := rs.table(knftables.InetFamily)
	natChains(t)
	if s.Method == lb.FNAT {
		guardLocal(t, s)
	} else {
		guardReal(t, s)
	}
	c := t.chain(s.ID)
	port := withPort(s)
	target := func(b lb.Backend) string {
		switch {
		case !port:
			return b.Addr.String()
		case s.Family == inet.IPv6:
			return fmt.Sprintf("[%s]:%d", b.Addr, s.BackendPort(b))
		}
		return fmt.Sprintf("%s:%d", b.Addr, s.BackendPort(b))
	}
	value := func(b lb.Backend) string {
		if !port {
			return b.Addr.String()
		}
		return fmt.Sprintf("%s . %d", b.Addr, s.BackendPort(b))
	}
	f := fam(s)
	// nft needs the protocol in the rule that rewrites a port.
	l4 := "meta l4proto " + s.Proto.String()
	switch {
	case len(s.Backends) == 0:
		// No real server may take a new flow: refuse it here rather
		// than let it reach a socket of the director's own.
		if s.Proto == lb.TCP {
			c.add("meta l4proto tcp reject with tcp reset")
		} else {
			c.add("reject")
		}
	case s.Persistence > 0:
		// Known clients first: one set and one rule per real server, so
		// a real server that leaves takes its clients' affinity along.
		sel, _ := selector(s)
		vm := t.addSet(&set{name: s.ID + "_rs", isMap: true, typeOf: "numgen inc mod 1 : verdict", flags: slotFlags(s)})
		owned := slots(s)
		for i, b := range s.Backends {
			k := keyName(b.AddrPort())
			aff, rc := s.ID+"_aff_"+k, s.ID+"_rs_"+k
			t.addSet(&set{name: aff, typeOf: f + " saddr", flags: dynamicTimeout, timeout: s.Persistence, size: dynSetSize})
			c.add(f+" saddr"+mask(s), "@"+aff, "goto", rc)
			t.chain(rc).add("update @"+aff+" { "+f+" saddr"+mask(s)+" }", l4, "dnat", f, "to", target(b))
			for _, key := range owned[i] {
				vm.elems[key] = "goto " + rc
			}
		}
		c.add(sel, "vmap @"+vm.name)
	default:
		sel, _ := selector(s)
		typeOf := "numgen inc mod 1 : " + f + " daddr"
		if port {
			// The protocol's own dport, not th: nft checks a map's
			// typeof against the rule's protocol when the rule is
			// added to an existing map, and "th" conflicts with "tcp".
			typeOf += " . " + s.Proto.String() + " dport"
		}
		m := t.addSet(&set{name: s.ID + "_rs", isMap: true, typeOf: typeOf, flags: slotFlags(s)})
		owned := slots(s)
		for i, b := range s.Backends {
			for _, key := range owned[i] {
				m.elems[key] = value(b)
			}
		}
		c.add(l4, "dnat", f, "to", sel, "map @"+m.name)
	}
	if !s.Active {
		return nil
	}
	t.chain("dispatch").add(match(s), "goto", s.ID)
	if s.Method == lb.FNAT {
		var orig string
		if s.FwMark != 0 {
			orig = fmt.Sprintf("meta mark 0x%08x meta nfproto %s meta l4proto %s ct status dnat", s.FwMark, nfproto(s), s.Proto)
		} else {
			orig = fmt.Sprintf("meta nfproto %s meta l4proto %s ct original %s daddr %s", nfproto(s), s.Proto, f, s.VIP)
			if s.Port != 0 {
				orig += fmt.Sprintf(" ct original proto-dst %d", s.Port)
			}
		}
		t.chain("postrouting").add(orig, "snat", f, "to", pool(t, s))
	}
	return nil
}

// localSet names the set of FNAT local addresses of a family (4 or 6).
func localSet(s *lb.Service) string {
	if s.Family == inet.IPv6 {
		return "laddr6"
	}
	return "laddr4"
}

// guardLocal adds s's local addresses to its family's set of FNAT local
// addresses, which localGuardChain keeps stray replies away from the
// director's own stack for. Every FNAT service, active or not: the rule
// matters most on a director that is no longer master but still holds the
// addresses (kill -9 leaves them, its rules and its conntrack table).
func guardLocal(t *table, s *lb.Service) {
	typ := "ipv4_addr"
	if s.Family == inet.IPv6 {
		typ = "ipv6_addr"
	}
	ls := t.sets[localSet(s)]
	if ls == nil {
		ls = t.addSet(&set{name: localSet(s), typ: typ})
	}
	for _, a := range s.LocalAddrs {
		ls.elems[a.String()] = ""
	}
}

// localGuardChain drops, at the input hook, the TCP packets addressed to an
// FNAT local address that can only be a real server's reply the director's
// conntrack does not translate: "ct state invalid" (its entry saw only the
// other half of the flow: the new master carries the client's side since
// the takeover, and a reply that still reaches this director acknowledges
// data its entry never saw) and new flows that do not start with a SYN
// (no entry at all). Without the drop such a packet is not de-NATed, is
// delivered to the director's own stack, which has no socket for it and
// answers with a reset to the real server; the real server closes the
// connection and the client's next request gets a reset from it through
// the new master (e2e TestConnSyncUnicast; docs/architecture.md,
// "Connection sync"). Dropped, the real server retransmits, and reaches
// the new master once its neighbour entry moves. A SYN to a local address
// and every packet of a flow conntrack knows pass as before.
func localGuardChain(t *table) {
	guardChain(t, "local_in", knftables.InputHook, "laddr", "daddr %s meta l4proto tcp", "daddr %s")
}

// guardChain adds chain, at hook, with two drops per family whose set
// (setPrefix with 4 or 6) the services made: the TCP packets tcp selects
// that conntrack finds invalid, and the packets packets selects that are
// new without a SYN (%s is the set in both). Without either set there is
// no chain.
func guardChain(t *table, chain string, hook knftables.BaseChainHook, setPrefix, tcp, packets string) {
	var rules []string
	for _, f := range []struct{ set, ip string }{{setPrefix + "4", "ip"}, {setPrefix + "6", "ip6"}} {
		if t.sets[f.set] == nil {
			continue
		}
		rules = append(rules,
			f.ip+" "+fmt.Sprintf(tcp, "@"+f.set)+" ct state invalid drop",
			f.ip+" "+fmt.Sprintf(packets, "@"+f.set)+" tcp flags & (fin | syn | rst | ack) != syn ct state new drop")
	}
	if len(rules) == 0 {
		return
	}
	c := t.chain(chain)
	c.base = &baseChain{typ: knftables.FilterType, hook: hook, priority: knftables.FilterPriority}
	for _, r := range rules {
		c.add(r)
	}
}

// guardReal adds a NAT service's real servers (address and port, draining
// ones too: their flows go on) to its family's set, which realGuardChain
// keeps stray replies from being forwarded untranslated for. TCP services
// that forward to real server ports only: without the port a real server's
// reply cannot be told from its own traffic.
func guardReal(t *table, s *lb.Service) {
	if s.Proto != lb.TCP || !withPort(s) {
		return
	}
	name, typ := "natrs4", "ipv4_addr . inet_service"
	if s.Family == inet.IPv6 {
		name, typ = "natrs6", "ipv6_addr . inet_service"
	}
	rs := t.sets[name]
	if rs == nil {
		rs = t.addSet(&set{name: name, typ: typ})
	}
	for _, b := range append(slices.Clone(s.Backends), s.Draining...) {
		rs.elems[fmt.Sprintf("%s . %d", b.Addr, s.BackendPort(b))] = ""
	}
}

// realGuardChain is localGuardChain's NAT side, at the forward hook: a
// NAT real server's reply that the director's conntrack finds invalid, or
// new without a SYN, is dropped rather than forwarded to the client
// untranslated (from the real server's own address). A killed master gets
// such replies while the real servers still send to it (the reply
// acknowledges requests its entry never saw), and a client that can route
// to the real server's address answers the untranslated packet with a
// reset, which reaches the real server through the new master and ends
// the connection there.
func realGuardChain(t *table) {
	guardChain(t, "real_fwd", knftables.ForwardHook, "natrs", "saddr . tcp sport %s", "saddr . tcp sport %s")
}

// pool is the "snat to" argument of an FNAT service: an address range
// with an explicit port range when the pool is contiguous, which lets the
// kernel search every address for a free port; otherwise a numgen map
// over the addresses (the kernel then keeps its default 1024-65535).
func pool(t *table, s *lb.Service) string {
	la := s.LocalAddrs
	contiguous := true
	for i := 1; i < len(la); i++ {
		if la[i-1].Next() != la[i] {
			contiguous = false
		}
	}
	ports := ":1024-65535"
	br := func(a netip.Addr) string {
		if a.Is6() {
			return "[" + a.String() + "]"
		}
		return a.String()
	}
	switch {
	case len(la) == 1:
		return br(la[0]) + ports
	case contiguous:
		if s.Family == inet.IPv6 {
			return "[" + la[0].String() + "]-[" + la[len(la)-1].String() + "]" + ports
		}
		return la[0].String() + "-" + la[len(la)-1].String() + ports
	}
	m := t.addSet(&set{name: s.ID + "_laddr", isMap: true, typeOf: "numgen inc mod 1 : " + fam(s) + " saddr"})
	for i, a := range la {
		m.elems[strconv.Itoa(i)] = a.String()
	}
	return fmt.Sprintf("numgen inc mod %d map @%s", len(la), m.name)
}

// devChain names the netdev ingress chain of device dev.
func devChain(dev string) string {
	var b strings.Builder
	b.WriteString("in_")
	for _, r := range dev {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "_%02x", r)
		}
	}
	return b.String()
}

// drFlows adds to c the rules that forward the packets of a flow this
// director remembers (Service.FlowTimeout) to the real server it
// remembers (in is drCounters' statistics lookup, fwd the forwarding),
// and returns the rules that remember the flow of a packet the table's
// rules after them forward; none when the service remembers nothing.
//
// What it saves: the table decides a flow's real server, and a change of
// the table (a real server added, back up, reweighted) moves about 1/N of
// its slots; without a memory, the flows in flight on those slots went to
// a real server that never saw them and were reset, as IPVS never does.
// The memory is this director's own (learnt from the packets it forwards,
// never made for flows it has not seen), so a flow that another director
// or a VRRP takeover brings here is decided by the table, as before.
//
// The rules: a SYN always goes by the table (a new connection on a
// recycled port must not follow the old one's memory); a FIN or RST
// shortens the flow's memory to FlowFinTimeout; any other packet of a
// remembered flow whose real server is still in the service (a backend or
// draining) goes there and refreshes the memory. A packet that falls
// through (a SYN, an unknown flow, a real server gone) first forgets its
// flow, so that the table's choice replaces it: nft's add keeps an
// existing element. A SYN's flow is remembered for synTimeout only, until
// its next packet (IPVS's SYN_RECV): a flood of SYNs from spoofed sources
// holds the map for a minute, not for FlowTimeout.
func drFlows(t *table, c *chain, s *lb.Service, in, fwd string) (remember []string) {
	if s.FlowTimeout <= 0 {
		return nil
	}
	key := drFlowKey(s)
	flows := t.addSet(&set{name: s.ID + "_flows", isMap: true, typeOf: key + " : ether daddr",
		flags: dynamicTimeout, timeout: s.FlowTimeout, size: drFlowsSize})
	// op is the statement that does verb (update, add, delete) to the
	// packet's flow in the map, with the packet's real server, for timeout
	// (0: the map's). nft needs the value in a map's delete too, and
	// ignores it.
	op := func(verb string, timeout time.Duration) string {
		expiry := ""
		if timeout > 0 {
			expiry = fmt.Sprintf(" timeout %ds", max(int64(timeout/time.Second), 1))
		}
		return verb + " @" + flows.name + " { " + key + expiry + " : ether daddr }"
	}
	// in, the statistics lookup, is also what keeps a remembered flow
	// from a real server no longer in the service (neither a backend nor
	// draining): its set holds exactly those (drCounters), and a lookup
	// that misses ends the rule.
	known := "ether daddr set " + key + " map @" + flows.name + " " + in
	if s.Proto == lb.TCP {
		const notSYN = "tcp flags & (syn | ack) != syn"
		if s.FlowFinTimeout > 0 {
			c.add(notSYN, "tcp flags & (fin | rst) != 0", known, op("update", s.FlowFinTimeout), fwd)
		}
		c.add(notSYN, known, op("update", 0), fwd)
	} else {
		c.add(known, op("update", 0), fwd)
	}
	c.add(op("delete", 0))
	if s.Proto != lb.TCP {
		return []string{op("add", 0)}
	}
	return []string{
		"tcp flags & (syn | ack) == syn " + op("add", min(synTimeout, s.FlowTimeout)),
		"tcp flags & (syn | ack) != syn " + op("add", 0),
	}
}

// synTimeout is how long a DR director remembers a flow it has seen only
// the SYN of: IPVS's SYN_RECV timeout.
const synTimeout = 60 * time.Second

// dynamicTimeout are the flags of the sets the packet path fills, whose
// elements expire: persistence, DR's pins and its memory of flows.
var dynamicTimeout = []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag}

// drFlowsSize is the capacity of a DR service's map of remembered flows;
// a variable so that a test can fill it.
var drFlowsSize uint64 = dynSetSize

// drFlowKey is what tells a DR service's flows apart: the client's
// address and port, and the service port too when the service has none
// (all ports). For IPv6, nft 1.0.6 (Debian 12) cannot build a rule that
// adds to a map whose key is longer than 16 bytes (an assertion in its
// netlink_linearize.c, which kills nft), and the address alone is 16: the
// key keeps the address's low 96 bits, or its low 64 bits with both
// ports. Two clients whose addresses differ only above those bits, with
// the same source port at the same time, then share one memory: a SYN of
// one replaces the other's, whose next packets follow the table.
func drFlowKey(s *lb.Service) string {
	switch {
	case s.Family != inet.IPv6 && s.Port != 0:
		return "ip saddr . th sport"
	case s.Family != inet.IPv6:
		return "ip saddr . th sport . th dport"
	case s.Port != 0:
		return "@nh,96,96 . th sport" // ip6 saddr is @nh,64,128
	default:
		return "@nh,128,64 . th sport . th dport"
	}
}

func renderDR(out rendered, s *lb.Service, e env) error {
	if s.FwMark != 0 || !s.VIP.IsValid() {
		return errors.New("DR needs a virtual address (fwmark is set after ingress, where DR runs)")
	}
	if s.Interface == "" {
		return errors.New("DR needs the interface the virtual address arrives on")
	}
	dmac, ok := e.devMAC[s.Interface]
	if !ok {
		return fmt.Errorf("DR interface %q does not exist", s.Interface)
	}
	if dmac.IsZero() {
		return fmt.Errorf("DR interface %q has no MAC address", s.Interface)
	}
	if s.Selection != lb.SelectMaglev {
		return fmt.Errorf("DR needs a Maglev table, got selection %v", s.Selection)
	}
	t := out.rs.table(knftables.NetDevFamily)
	dc := t.chain(devChain(s.Interface))
	dc.base = &baseChain{typ: knftables.FilterType, hook: knftables.IngressHook, priority: knftables.FilterPriority, device: s.Interface}
	c := t.chain(s.ID)
	f := fam(s)
	fwd := fmt.Sprintf("ether saddr set %s fwd to %q", dmac, s.Interface)
	in, syn := drCounters(t, s, out.counters)
	// tail ends each rule that has chosen the real server (ether daddr).
	tail := in + " " + fwd
	if remember := drFlows(t, c, s, in, fwd); len(remember) > 0 {
		// Through a chain that remembers the flow in rules of their own
		// first: an add to a full map ends its rule, and must not end the
		// forwarding too (the flow then goes by the table alone).
		fc := t.chain(s.ID + "_fwd")
		for _, r := range remember {
			fc.add(r)
		}
		fc.add(in, fwd)
		fc.add("drop")
		tail = "goto " + fc.name
	}
	if len(s.Backends) == 0 || len(s.Maglev) == 0 {
		c.add("drop")
	} else {
		sel, n := selector(s)
		mh := t.addSet(&set{name: s.ID + "_mh", isMap: true, typeOf: "numgen inc mod 1 : ether daddr"})
		owners := make([]netip.AddrPort, n)
		for i, b := range s.Maglev {
			owners[i] = s.Backends[b].AddrPort()
			if m := s.Backends[b].MAC; !m.IsZero() {
				mh.elems[strconv.Itoa(i)] = m.String()
			}
		}
		// Slots a draining real server owned in the kernel until now
		// keep sending it the packets of flows it already serves.
		draining := map[netip.AddrPort]lb.MAC{}
		for _, b := range s.Draining {
			if !b.MAC.IsZero() {
				draining[b.AddrPort()] = b.MAC
			}
		}
		drain := map[string]string{}
		if prev := e.drOwners[s.ID]; len(prev) == n && s.Proto == lb.TCP {
			for i, p := range prev {
				if m, ok := draining[p]; ok && p != owners[i] {
					drain[strconv.Itoa(i)] = m.String()
					owners[i] = p
				}
			}
		}
		out.drOwners[s.ID] = owners
		if len(drain) > 0 {
			ds := t.addSet(&set{name: s.ID + "_dslot", typeOf: "numgen inc mod 1"})
			dm := t.addSet(&set{name: s.ID + "_drain", isMap: true, typeOf: "numgen inc mod 1 : ether daddr"})
			for k, m := range drain {
				ds.elems[k] = ""
				dm.elems[k] = m
			}
			pin := s.ID + "_pin"
			flow := f + " saddr . th sport"
			t.addSet(&set{name: pin, typeOf: flow, flags: dynamicTimeout, timeout: pinTimeout, size: dynSetSize})
			// A new flow on a draining slot belongs to the new table:
			// pin it, and keep the pin fresh while the flow lasts.
			c.add("tcp flags & (syn | ack) == syn", sel, "@"+ds.name, "update @"+pin, "{ "+flow+" }")
			c.add(flow, "@"+pin, "update @"+pin, "{ "+flow+" }", "ether daddr set", sel, "map @"+mh.name, tail)
			// Any other packet on a draining slot belongs to a flow the
			// draining real server already serves.
			c.add("tcp flags & (syn | ack) != syn ether daddr set", sel, "map @"+dm.name, tail)
		}
		if syn != "" {
			// A new connection: counted as one, then forwarded as below.
			c.add("tcp flags & (syn | ack) == syn ether daddr set", sel, "map @"+mh.name, syn, tail)
		}
		c.add("ether daddr set", sel, "map @"+mh.name, tail)
		// Slots of a real server whose MAC is not known yet: drop, the
		// client retransmits once the daemon has it.
		c.add("drop")
	}
	if s.Active {
		// Only frames addressed to this host: a switch floods unknown
		// unicast (a dead director's MAC, a real server's MAC it has not
		// learnt) to every port, and with several active directors each
		// would forward its copy, duplicating the packet, or bounce
		// another director's forwarded frame to the real server again.
		rule := "meta pkttype host " + f + " daddr " + s.VIP.String() + " meta l4proto " + s.Proto.String()
		if s.Port != 0 {
			rule += " th dport " + strconv.Itoa(int(s.Port))
		}
		dc.add(rule, "goto", s.ID)
	}
	return nil
}
