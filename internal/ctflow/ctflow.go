// Package ctflow is a conntrack flow as vigil reads it from the kernel,
// writes it back and syncs it between directors: its tuples, the TCP
// state and flags, status, timeout and mark (linux/netfilter/
// nf_conntrack_common.h), and the NAT bindings that follow from its
// tuples. internal/ctnl reads and writes Entries through ctnetlink,
// ctsync/wire carries them in sync datagrams; it is pure.
package ctflow

import "net/netip"

// Tuple is one direction of a flow: addresses and ports (0 for protocols
// without ports).
type Tuple struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
}

// Key identifies a flow: its original tuple, protocol and conntrack zone.
type Key struct {
	Proto uint8
	Zone  uint16
	Orig  Tuple
}

// Entry is one conntrack flow as the master's kernel holds it. The NAT
// bindings are not carried: they follow from Orig against Reply (a reply
// source other than the original destination is a DNAT, a reply
// destination other than the original source a SNAT).
type Entry struct {
	Key
	Reply    Tuple
	TCPState uint8 // enum tcp_conntrack (TCP only)
	// TCP window scales and flags (IP_CT_TCP_FLAG_*) of each direction.
	WScaleOrig, WScaleReply uint8
	FlagsOrig, FlagsReply   uint8
	Status                  uint32 // IPS_* bits
	Timeout                 uint32 // seconds left when sent
	Mark                    uint32
}

// Valid reports whether e's four addresses are of one family.
func (e *Entry) Valid() bool {
	is4 := e.Orig.Src.Is4()
	for _, a := range []netip.Addr{e.Orig.Src, e.Orig.Dst, e.Reply.Src, e.Reply.Dst} {
		if !a.IsValid() || a.Is4() != is4 || a.Is4In6() {
			return false
		}
	}
	return true
}

// Valid reports whether k's addresses are of one family.
func (k *Key) Valid() bool {
	a, b := k.Orig.Src, k.Orig.Dst
	return a.IsValid() && b.IsValid() && a.Is4() == b.Is4() && !a.Is4In6() && !b.Is4In6()
}

// Is6 reports whether k is an IPv6 flow.
func (k *Key) Is6() bool { return k.Orig.Src.Is6() }

// NAT is the translation a flow's tuples imply: DNAT to (DNATAddr,
// DNATPort) when the reply comes from elsewhere than the original
// destination, SNAT to (SNATAddr, SNATPort) when the reply goes elsewhere
// than the original source. Unset sides are invalid Addrs.
type NAT struct {
	DNATAddr netip.Addr
	DNATPort uint16
	SNATAddr netip.Addr
	SNATPort uint16
}

// NATOf derives e's NAT bindings from its tuples.
func NATOf(e *Entry) NAT {
	var n NAT
	if e.Reply.Src != e.Orig.Dst || e.Reply.SrcPort != e.Orig.DstPort {
		n.DNATAddr, n.DNATPort = e.Reply.Src, e.Reply.SrcPort
	}
	if e.Reply.Dst != e.Orig.Src || e.Reply.DstPort != e.Orig.SrcPort {
		n.SNATAddr, n.SNATPort = e.Reply.Dst, e.Reply.DstPort
	}
	return n
}
