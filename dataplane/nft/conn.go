package nft

import (
	"net/netip"
	"time"
)

// Conn is one connection through a NAT or FNAT service, as `ipvsadm -lnc`
// shows it, read from conntrack. DR has no conntrack entries (its
// remembered flows are elements of an nft map, drFlows, not listed here).
type Conn struct {
	// Service is lb.Service.Name.
	Service string
	// Proto is "tcp", "udp" or "sctp".
	Proto string
	// State is the conntrack TCP state in IPVS's words (ESTABLISHED,
	// SYN_RECV, TIME_WAIT...), or "" for protocols without one.
	State string
	// Expires is how long the entry lives without traffic.
	Expires time.Duration
	// Client and VIP are the flow as the client sent it.
	Client netip.AddrPort
	VIP    netip.AddrPort
	// Local is the FNAT local address the real server sees; invalid for NAT.
	Local netip.AddrPort
	// Real is the real server.
	Real netip.AddrPort
}

// countConn adds c to out, per service name and real server, if it is
// active in IPVS's sense (TCP ESTABLISHED; any UDP or SCTP entry): the
// counts lb.Model.SetConnCounts takes to re-derive lc, wlc, sed and nq
// weights, and the number to hold against FNATCapacity.
func countConn(out map[string]map[netip.AddrPort]int, c *Conn) {
	if c.Proto == "tcp" && c.State != "ESTABLISHED" {
		return
	}
	m := out[c.Service]
	if m == nil {
		m = map[netip.AddrPort]int{}
		out[c.Service] = m
	}
	m[c.Real]++
}
