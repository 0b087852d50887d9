package lb

import (
	"encoding/hex"
	"net/netip"
	"time"
	"vigil/internal/enum"
	"vigil/internal/inet"
)

// Desired is the whole data plane vigil wants at one moment: what
// dataplane/nft.Apply renders as one atomic nft transaction. It is a pure
// value: the same model state always yields a deep-equal Desired (services,
// backends and Maglev tables in the same order), so applying it twice
// changes nothing.
//
// Slices inside a Desired (Backends, Draining, Maglev, LocalAddrs) may be
// shared with the Model and with earlier Desired values: treat them as
// read-only.
type Desired struct {
	// Services are sorted: address services by (VIP, Port, Proto), then
	// fwmark services by (Family, FwMark, Proto). Names are unique.
	Services []Service
}

// Method is how packets reach a real server (keepalived lb_kind / lvs_method).
type Method int

const (
	// NAT rewrites the destination (DNAT in prerouting); real servers
	// must route their replies back through the director.
	NAT Method = iota
	// FNAT (DPVS "full NAT") rewrites the destination and the source, the
	// source taken from Service.LocalAddrs, so real servers can sit anywhere.
	FNAT
	// DR (direct routing) rewrites only the Ethernet addresses and forwards
	// the frame to the real server on the same link; replies go straight to
	// the client. A flow's first packet picks the backend from
	// Service.Maglev; the director then remembers it (FlowTimeout).
	DR
)

var methodNames = []string{NAT: "NAT", FNAT: "FNAT", DR: "DR"}

func (m Method) String() string { return enum.Name(methodNames, m, "Method") }

// Proto is the L4 protocol of a service.
type Proto int

const (
	TCP Proto = iota
	UDP
	SCTP
)

var protoNames = []string{TCP: "tcp", UDP: "udp", SCTP: "sctp"}

func (p Proto) String() string { return enum.Name(protoNames, p, "Proto") }

// Selection is how the data plane picks the backend of a NEW flow: the
// scheduler turned into something nftables can do without counting
// connections.
type Selection int

const (
	// SelectNumgen: "numgen inc mod TotalWeight()" mapped through weighted
	// ranges: Backends[i] owns [sum of weights before i, that + weight).
	// Used by rr (every weight 1), wrr and fo.
	SelectNumgen Selection = iota
	// SelectHash: "jhash <Hash> mod TotalWeight()" through the same
	// weighted ranges (sh, dh).
	SelectHash
	// SelectMaglev: "jhash <Hash> mod len(Maglev)" gives i, and the backend
	// is Backends[Maglev[i]] (mh, and every DR service: a flow's first
	// packet must pick the same backend on every director, which share no
	// flow state).
	SelectMaglev
	// SelectRandom: "numgen random mod TotalWeight()" through the weighted
	// ranges, for the connection-count approximations (lc, wlc, sed, nq,
	// twos, ovf), whose weights the model re-derives from counts (up to
	// 256 per backend): with "inc" the ranges would hand hundreds of
	// consecutive new flows to one backend, the opposite of least
	// connection; "random" spreads them in proportion at every scale.
	SelectRandom
)

var selectionNames = []string{SelectNumgen: "numgen", SelectHash: "hash", SelectMaglev: "maglev", SelectRandom: "random"}

func (s Selection) String() string { return enum.Name(selectionNames, s, "Selection") }

// Hash is what SelectHash and SelectMaglev hash.
type Hash int

const (
	// HashNone: no hash (SelectNumgen).
	HashNone Hash = iota
	// HashSourceAddr: the client address (sh, mh; DR with persistence),
	// masked to Service.PersistenceMask bits when that is below full length.
	HashSourceAddr
	// HashSourceAddrPort: client address and port (sh-port, mh-port).
	HashSourceAddrPort
	// HashDestAddr: the destination address (dh; lblc/lblcr mapped to dh).
	HashDestAddr
	// HashFlow: source and destination address and port and protocol; DR
	// services with a scheduler that has no hash of its own (rr, wrr, lc...).
	HashFlow
)

var hashNames = []string{HashNone: "none", HashSourceAddr: "saddr", HashSourceAddrPort: "saddr.sport", HashDestAddr: "daddr", HashFlow: "flow"}

func (h Hash) String() string { return enum.Name(hashNames, h, "Hash") }

// Service is one virtual service as the data plane must serve it.
type Service struct {
	// Name is stable and unique, keepalived-like: "192.0.2.100:80/tcp",
	// "[2001:db8::1]:443/tcp", "fwmark 1/tcp", "fwmark 1/tcp ip6". It is
	// what the daemon uses to address the service in the Model.
	Name string
	// ID is Name made safe as an nft set/chain/map name (letters, digits,
	// '_' only, starts with a letter, unique per Name): "vs_192_0_2_100_80_tcp",
	// "vs_20010db8000000000000000000000001_443_tcp", "fwm_1_tcp", "fwm6_1_tcp".
	ID string
	// Proto is the L4 protocol matched.
	Proto Proto
	// Family is the address family (of VIP, or of the real servers for a
	// fwmark service).
	Family inet.Family
	// VIP is the virtual address; invalid (zero) for fwmark services.
	VIP netip.Addr
	// Port is the virtual port; 0 means every port of VIP (keepalived allows
	// omitting the port only for persistent services): match the address
	// and protocol only, and keep the client's destination port when
	// forwarding (backend Port is then 0 as well).
	Port uint16
	// FwMark is non-zero for "virtual_server fwmark N": match packets whose
	// meta mark is N (set by the operator's own rules), with VIP invalid.
	FwMark uint32
	// Method is the forwarding method.
	Method Method
	// Scheduler is the configured lvs_sched, for display and metrics only:
	// the data plane follows Selection and Hash, never this string.
	Scheduler string
	// Selection and Hash say how a NEW flow picks a backend (see Selection).
	Selection Selection
	Hash      Hash
	// Backends are eligible for NEW flows, all with Weight > 0, sorted by
	// (Addr, Port). Empty means no new flow can be served: the data plane
	// must reject (NAT/FNAT) or drop (DR) them, not pass them through.
	Backends []Backend
	// Draining are real servers kept at weight 0 (inhibit_on_failure,
	// sorry_server_inhibit, a configured or dynamic weight of 0, over
	// uthreshold, not chosen by fo/ovf): flows already established to them
	// keep going (do not flush their conntrack entries; keep their
	// DNAT/SNAT mappings), no new flow goes to them. Sorted by (Addr,
	// Port). Backends removed outright appear in neither list: the data
	// plane may flush their connections. For DR, the flows each director
	// remembers (FlowTimeout) keep going to a draining real server; the
	// flows it does not remember keep the slots the real server owned
	// until then.
	Draining []Backend
	// Maglev is the lookup table when Selection is SelectMaglev: len is a
	// prime (ServiceConfig.MaglevSize, by default MaglevSizeFor the number
	// of configured servers: 16381 up to 163 servers, at most 65521), each
	// entry an index into Backends; nil otherwise, and nil when Backends is
	// empty. The size depends on the configuration only, so health changes
	// rewrite entries but never resize the table.
	Maglev []int
	// Persistence is persistence_timeout: a client (address masked to
	// PersistenceMask bits) sticks to its backend for this long after its
	// last packet (nft dynamic set with timeout, updated per packet). 0 = none.
	Persistence time.Duration
	// PersistenceMask is persistence_granularity as prefix bits: 32 (IPv4)
	// or 128 (IPv6) for per-address; always set to the family's full length
	// when not configured.
	PersistenceMask int
	// LocalAddrs is the FNAT source address pool (laddr_group_name ->
	// local_address_group), sorted; nil for NAT and DR. Capacity is
	// len(LocalAddrs) × source ports per backend; see FNATCapacity.
	LocalAddrs []netip.Addr
	// Interface is, for DR, the device the VIP arrives on (netdev ingress
	// hook) and from which frames are forwarded; "" for NAT and FNAT.
	Interface string
	// FlowTimeout and FlowFinTimeout are, for DR, how long a director
	// remembers the real server of a flow it forwarded after the flow's
	// last packet, and after a FIN or RST (TCP only): keepalived's
	// lvs_timeouts, IPVS's connection timeouts. A flow remembered keeps
	// its real server when the table moves its slot to another; the table
	// decides only a flow's first packet (a SYN, or one this director has
	// not seen). Zero for NAT and FNAT (conntrack keeps their flows).
	FlowTimeout, FlowFinTimeout time.Duration
	// Active is false when the VRRP instance owning VIP is not MASTER: no
	// rule may answer for this service (keep the tables, skip the
	// dispatch), so that a backup director never steals flows.
	Active bool
	// Sorry is true when the quorum is lost and Backends is the sorry
	// server only (for status; Backend.Sorry marks the entry too).
	Sorry bool
}

// TotalWeight is the sum of Backends' weights: the modulus of SelectNumgen
// and SelectHash.
func (s *Service) TotalWeight() int {
	t := 0
	for _, b := range s.Backends {
		t += b.Weight
	}
	return t
}

// BackendPort is the port flows to b go to on a service with a port: b's
// own, or the service's when the real server names none.
func (s *Service) BackendPort(b Backend) uint16 {
	if b.Port != 0 {
		return b.Port
	}
	return s.Port
}

// Backend is one real server (or the sorry server) of a Service.
type Backend struct {
	// Addr and Port are where flows go. Port 0 (fwmark or all-ports
	// services) keeps the client's destination port.
	Addr netip.Addr
	Port uint16
	// Weight is the effective weight for new flows: the configured
	// weight, a MISC_CHECK dynamic weight, 1 for rr, or the value
	// re-derived from connection counts for lc/wlc/sed/nq. > 0 in
	// Backends, 0 in Draining.
	Weight int
	// MAC is, for DR, the real server's link-layer address, filled by the
	// daemon from the neighbour table (Model.SetMAC); zero when unknown (the
	// data plane cannot forward to it yet) or not DR.
	MAC MAC
	// Sorry marks the sorry server.
	Sorry bool
}

// AddrPort is the backend's address and port.
func (b Backend) AddrPort() netip.AddrPort { return netip.AddrPortFrom(b.Addr, b.Port) }

// MAC is an Ethernet address. lb may not import package net (it must stay
// pure), so this is a comparable value; net.HardwareAddr(m[:]) converts.
type MAC [6]byte

// IsZero reports whether m is unset.
func (m MAC) IsZero() bool { return m == MAC{} }

// String formats m as 00:11:22:33:44:55, or "" when zero.
func (m MAC) String() string {
	if m.IsZero() {
		return ""
	}
	b := make([]byte, 0, 17)
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = hex.AppendEncode(b, []byte{x})
	}
	return string(b)
}

// FNATCapacity is how many concurrent flows an FNAT service can hold to
// one backend: each local address offers ports source ports (typically the
// size of net.ipv4.ip_local_port_range, passed in by the caller).
func (s *Service) FNATCapacity(ports int) int {
	return len(s.LocalAddrs) * ports
}
