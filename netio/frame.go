package netio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"vigil/internal/inet"
)

// EtherTypes of the frames this package builds and reads (IEEE 802.3 / IANA).
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeIPv6 = 0x86dd
)

// ARP operations (RFC 826).
const (
	ARPRequest = 1
	ARPReply   = 2
)

// Sizes on the wire.
const (
	ethHeaderLen = 14
	arpLen       = 28 // Ethernet/IPv4 ARP body: 8 + 2*(6+4)
	// minFrameLen is the smallest Ethernet frame without its FCS (IEEE
	// 802.3): shorter frames are padded with zeros, as a NIC would, so
	// that the frame is valid on any medium the socket ends up on.
	minFrameLen  = 60
	ipv6HdrLen   = 40
	naLen        = 24 // ICMPv6 type, code, checksum, flags, reserved, target
	tllaOptLen   = 8  // option type 2, length 1 (units of 8 bytes), 6-byte MAC
	icmpv6Proto  = 58
	icmpv6TypeNA = 136
	optTargetLL  = 2 // RFC 4861 section 4.6.1
)

// Errors, for errors.Is. Returned errors wrap one of these and say what was
// found.
var (
	// ErrTruncated: the frame ends before the headers it announces. It
	// wraps io.ErrUnexpectedEOF.
	ErrTruncated = fmt.Errorf("truncated frame: %w", io.ErrUnexpectedEOF)
	// ErrNotARP: not an Ethernet/IPv4 ARP packet.
	ErrNotARP = errors.New("not an Ethernet/IPv4 ARP packet")
	// ErrNotNA: not an ICMPv6 Neighbor Advertisement directly in an IPv6
	// header (extension headers are not followed).
	ErrNotNA = errors.New("not an ICMPv6 Neighbor Advertisement")
	// ErrMalformed: a field holds a value the format forbids.
	ErrMalformed = errors.New("malformed frame")
	// ErrChecksum: the ICMPv6 checksum is wrong.
	ErrChecksum = errors.New("bad ICMPv6 checksum")
)

// broadcast is the Ethernet broadcast address, where ARP announcements go
// (RFC 5227 section 3: "broadcast on the local link"), and allNodesEth the
// Ethernet address of ff02::1 (RFC 2464 section 7: 33:33 followed by the
// last 32 bits of the group). Arrays, so that the frames Announcer builds
// in place allocate nothing for them: read only.
var (
	broadcast   = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	allNodesEth = [6]byte{0x33, 0x33, 0, 0, 0, 1}
)

// allNodes is ff02::1, the destination of an unsolicited Neighbor
// Advertisement (RFC 4861 section 7.2.6).
func allNodes() netip.Addr { return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 1}) }

// ARP is an Ethernet frame carrying an Ethernet/IPv4 ARP packet (RFC 826):
// hardware type 1 (Ethernet), protocol type 0x0800, sizes 6 and 4.
type ARP struct {
	EthDst, EthSrc net.HardwareAddr // Ethernet header
	Op             uint16           // ARPRequest or ARPReply
	SenderMAC      net.HardwareAddr
	SenderIP       netip.Addr
	TargetMAC      net.HardwareAddr // nil marshals as zeros
	TargetIP       netip.Addr
}

// Gratuitous reports whether the packet announces its sender's own address
// (sender and target protocol addresses equal, RFC 5227 section 3).
func (a *ARP) Gratuitous() bool { return a.SenderIP.IsValid() && a.SenderIP == a.TargetIP }

// MarshalBinary encodes a as an Ethernet frame, padded with zeros to the
// 60-byte Ethernet minimum.
func (a *ARP) MarshalBinary() ([]byte, error) { return a.MarshalAppend(nil) }

// MarshalAppend appends a's frame (MarshalBinary) to b; with room in b it
// allocates nothing (Announcer's send path).
func (a *ARP) MarshalAppend(b []byte) ([]byte, error) {
	for _, m := range []struct {
		name string
		mac  net.HardwareAddr
	}{{"Ethernet destination", a.EthDst}, {"Ethernet source", a.EthSrc}, {"sender hardware address", a.SenderMAC}} {
		if len(m.mac) != 6 {
			return nil, fmt.Errorf("marshal ARP: %w: %s %q, want 6 bytes", ErrMalformed, m.name, m.mac)
		}
	}
	if a.TargetMAC != nil && len(a.TargetMAC) != 6 {
		return nil, fmt.Errorf("marshal ARP: %w: target hardware address %q, want 6 bytes or none", ErrMalformed, a.TargetMAC)
	}
	sip, tip := a.SenderIP.Unmap(), a.TargetIP.Unmap()
	if !sip.Is4() || !tip.Is4() {
		return nil, fmt.Errorf("marshal ARP: %w: sender %v and target %v, want IPv4 addresses", ErrMalformed, a.SenderIP, a.TargetIP)
	}
	out, b := grow(b, minFrameLen)
	copy(b[0:6], a.EthDst)
	copy(b[6:12], a.EthSrc)
	binary.BigEndian.PutUint16(b[12:14], EtherTypeARP)
	p := b[ethHeaderLen:]
	binary.BigEndian.PutUint16(p[0:2], 1) // ar$hrd: Ethernet
	binary.BigEndian.PutUint16(p[2:4], EtherTypeIPv4)
	p[4], p[5] = 6, 4 // ar$hln, ar$pln
	binary.BigEndian.PutUint16(p[6:8], a.Op)
	copy(p[8:14], a.SenderMAC)
	s4, t4 := sip.As4(), tip.As4()
	copy(p[14:18], s4[:])
	copy(p[18:24], a.TargetMAC)
	copy(p[24:28], t4[:])
	return out, nil
}

// grow extends b by n zero bytes: the whole slice, and the n new bytes.
func grow(b []byte, n int) (out, tail []byte) {
	out = slices.Grow(b, n)[:len(b)+n]
	tail = out[len(b):]
	clear(tail)
	return out, tail
}

// checkEthernet checks that b holds an Ethernet header of EtherType et; the
// errors begin with what and wrap ErrTruncated, or notIt for another
// EtherType.
func checkEthernet(b []byte, what string, et uint16, notIt error) error {
	if len(b) < ethHeaderLen {
		return fmt.Errorf("%s: %w: %d bytes, the Ethernet header needs %d", what, ErrTruncated, len(b), ethHeaderLen)
	}
	if got := binary.BigEndian.Uint16(b[12:14]); got != et {
		return fmt.Errorf("%s: %w: EtherType %#04x, want %#04x", what, notIt, got, et)
	}
	return nil
}

// ParseARP decodes an Ethernet frame holding an Ethernet/IPv4 ARP packet.
// Bytes after the ARP packet (Ethernet padding) are ignored. The errors
// wrap ErrTruncated (and io.ErrUnexpectedEOF) or ErrNotARP. The ARP
// returned shares no memory with b.
func ParseARP(b []byte) (ARP, error) {
	if err := checkEthernet(b, "parse ARP", EtherTypeARP, ErrNotARP); err != nil {
		return ARP{}, err
	}
	if len(b) < ethHeaderLen+arpLen {
		return ARP{}, fmt.Errorf("parse ARP: %w: %d bytes, Ethernet and ARP need %d", ErrTruncated, len(b), ethHeaderLen+arpLen)
	}
	p := b[ethHeaderLen:]
	hrd, pro := binary.BigEndian.Uint16(p[0:2]), binary.BigEndian.Uint16(p[2:4])
	if hrd != 1 || pro != EtherTypeIPv4 || p[4] != 6 || p[5] != 4 {
		return ARP{}, fmt.Errorf("parse ARP: %w: hardware type %d, protocol %#04x, sizes %d and %d, want 1, 0x0800, 6 and 4",
			ErrNotARP, hrd, pro, p[4], p[5])
	}
	return ARP{
		EthDst:    cloneMAC(b[0:6]),
		EthSrc:    cloneMAC(b[6:12]),
		Op:        binary.BigEndian.Uint16(p[6:8]),
		SenderMAC: cloneMAC(p[8:14]),
		SenderIP:  netip.AddrFrom4([4]byte(p[14:18])),
		TargetMAC: cloneMAC(p[18:24]),
		TargetIP:  netip.AddrFrom4([4]byte(p[24:28])),
	}, nil
}

// GratuitousARP returns the Ethernet frame that announces that ip is at
// mac, broadcast from mac.
//
// The request form (reply false) is the ARP Announcement of RFC 5227
// section 3: "who-has ip tell ip", sender and target protocol addresses both
// ip, sender hardware address mac, target hardware address zero. It is the
// form every host accepts, because a request is processed by all of them.
//
// The reply form (reply true) is an ARP reply with the same protocol
// addresses, for peers that only update their caches from replies. Its
// target hardware address is mac too, so that the packet says the same
// thing from whichever field a receiver reads (RFC 2002 section 4.6); Linux
// treats a reply as gratuitous, and so overrides a recently updated entry,
// only in that form.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr, reply bool) ([]byte, error) {
	return appendGratuitousARP(nil, mac, ip, reply)
}

// appendGratuitousARP appends GratuitousARP's frame to b.
func appendGratuitousARP(b []byte, mac net.HardwareAddr, ip netip.Addr, reply bool) ([]byte, error) {
	a := ARP{
		EthDst:    broadcast[:],
		EthSrc:    mac,
		Op:        ARPRequest,
		SenderMAC: mac,
		SenderIP:  ip,
		TargetMAC: nil, // zeros
		TargetIP:  ip,
	}
	if reply {
		a.Op = ARPReply
		a.TargetMAC = mac
	}
	b, err := a.MarshalAppend(b)
	if err != nil {
		return nil, fmt.Errorf("gratuitous ARP for %v at %v: %w", ip, mac, err)
	}
	return b, nil
}

// NA is an Ethernet frame carrying an IPv6 packet whose payload is an
// ICMPv6 Neighbor Advertisement (RFC 4861 section 4.4):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|S|O|                     Reserved                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Target Address (16 bytes)               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Options ...
//
// Of the options only the Target Link-Layer Address (RFC 4861 section
// 4.6.1) is kept; others are skipped when parsing.
type NA struct {
	EthDst, EthSrc net.HardwareAddr // Ethernet header
	Src, Dst       netip.Addr       // IPv6 header
	HopLimit       uint8            // 255 when sent on-link (RFC 4861 section 7.1.2 drops others)
	Router         bool             // R: the sender is a router
	Solicited      bool             // S: an answer to a Neighbor Solicitation
	Override       bool             // O: replace cached link-layer addresses
	Target         netip.Addr
	TargetLL       net.HardwareAddr // Target Link-Layer Address option; nil when absent
	Checksum       uint16           // as found (ParseNA) or computed (MarshalBinary)
}

// MarshalBinary encodes n as an Ethernet frame, computing the ICMPv6
// checksum over the IPv6 pseudo-header (RFC 8200 section 8.1, RFC 4443
// section 2.3) and storing it in n.Checksum.
func (n *NA) MarshalBinary() ([]byte, error) { return n.MarshalAppend(nil) }

// MarshalAppend appends n's frame (MarshalBinary) to b; with room in b it
// allocates nothing (Announcer's send path).
func (n *NA) MarshalAppend(b []byte) ([]byte, error) {
	if len(n.EthDst) != 6 || len(n.EthSrc) != 6 {
		return nil, fmt.Errorf("marshal NA: %w: Ethernet addresses %q and %q, want 6 bytes each", ErrMalformed, n.EthDst, n.EthSrc)
	}
	if n.TargetLL != nil && len(n.TargetLL) != 6 {
		return nil, fmt.Errorf("marshal NA: %w: target link-layer address %q, want 6 bytes or none", ErrMalformed, n.TargetLL)
	}
	for _, a := range []netip.Addr{n.Src, n.Dst, n.Target} {
		if !a.Is6() {
			return nil, fmt.Errorf("marshal NA: %w: source %v, destination %v, target %v, want IPv6 addresses", ErrMalformed, n.Src, n.Dst, n.Target)
		}
	}
	plen := naLen
	if n.TargetLL != nil {
		plen += tllaOptLen
	}
	out, b := grow(b, ethHeaderLen+ipv6HdrLen+plen)
	copy(b[0:6], n.EthDst)
	copy(b[6:12], n.EthSrc)
	binary.BigEndian.PutUint16(b[12:14], EtherTypeIPv6)
	ip := b[ethHeaderLen:]
	ip[0] = 6 << 4 // version 6, traffic class 0, flow label 0
	binary.BigEndian.PutUint16(ip[4:6], uint16(plen))
	ip[6] = icmpv6Proto
	ip[7] = n.HopLimit
	s16, d16, t16 := n.Src.As16(), n.Dst.As16(), n.Target.As16()
	copy(ip[8:24], s16[:])
	copy(ip[24:40], d16[:])
	m := ip[ipv6HdrLen:]
	m[0] = icmpv6TypeNA
	if n.Router {
		m[4] |= 0x80
	}
	if n.Solicited {
		m[4] |= 0x40
	}
	if n.Override {
		m[4] |= 0x20
	}
	copy(m[8:24], t16[:])
	if n.TargetLL != nil {
		m[24], m[25] = optTargetLL, 1
		copy(m[26:32], n.TargetLL)
	}
	n.Checksum = ^inet.Fold(inet.Sum(inet.PseudoHeaderSum(0, n.Src, n.Dst, icmpv6Proto, len(m)), m))
	binary.BigEndian.PutUint16(m[2:4], n.Checksum)
	return out, nil
}

// ParseNA decodes an Ethernet frame holding an IPv6 packet whose next
// header is ICMPv6 and whose message is a Neighbor Advertisement, and
// verifies the ICMPv6 checksum. It applies the structural checks of RFC
// 4861 section 7.1.2 that concern the format (code 0, length at least 24,
// no option of length zero) but leaves the hop limit and the flags to the
// caller. Bytes after the IPv6 payload (Ethernet padding) are ignored. The
// errors wrap ErrTruncated (and io.ErrUnexpectedEOF), ErrNotNA,
// ErrMalformed or ErrChecksum. The NA returned shares no memory with b.
func ParseNA(b []byte) (NA, error) {
	if err := checkEthernet(b, "parse NA", EtherTypeIPv6, ErrNotNA); err != nil {
		return NA{}, err
	}
	ip := b[ethHeaderLen:]
	if len(ip) < ipv6HdrLen {
		return NA{}, fmt.Errorf("parse NA: %w: %d bytes of IPv6, the header needs %d", ErrTruncated, len(ip), ipv6HdrLen)
	}
	if v := ip[0] >> 4; v != 6 {
		return NA{}, fmt.Errorf("parse NA: %w: IP version %d in an IPv6 frame", ErrMalformed, v)
	}
	if ip[6] != icmpv6Proto {
		return NA{}, fmt.Errorf("parse NA: %w: next header %d, want %d (ICMPv6)", ErrNotNA, ip[6], icmpv6Proto)
	}
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if len(ip)-ipv6HdrLen < plen {
		return NA{}, fmt.Errorf("parse NA: %w: IPv6 payload length %d, %d bytes present", ErrTruncated, plen, len(ip)-ipv6HdrLen)
	}
	m := ip[ipv6HdrLen : ipv6HdrLen+plen]
	if len(m) < 1 {
		return NA{}, fmt.Errorf("parse NA: %w: empty ICMPv6 message", ErrTruncated)
	}
	if m[0] != icmpv6TypeNA {
		return NA{}, fmt.Errorf("parse NA: %w: ICMPv6 type %d, want %d", ErrNotNA, m[0], icmpv6TypeNA)
	}
	if len(m) < naLen {
		return NA{}, fmt.Errorf("parse NA: %w: ICMPv6 length %d, a Neighbor Advertisement needs %d", ErrTruncated, len(m), naLen)
	}
	if m[1] != 0 {
		return NA{}, fmt.Errorf("parse NA: %w: ICMPv6 code %d, want 0", ErrMalformed, m[1])
	}
	s16, d16 := [16]byte(ip[8:24]), [16]byte(ip[24:40])
	n := NA{
		EthDst:    cloneMAC(b[0:6]),
		EthSrc:    cloneMAC(b[6:12]),
		Src:       netip.AddrFrom16(s16),
		Dst:       netip.AddrFrom16(d16),
		HopLimit:  ip[7],
		Router:    m[4]&0x80 != 0,
		Solicited: m[4]&0x40 != 0,
		Override:  m[4]&0x20 != 0,
		Target:    netip.AddrFrom16([16]byte(m[8:24])),
		Checksum:  binary.BigEndian.Uint16(m[2:4]),
	}
	for opts := m[naLen:]; len(opts) > 0; {
		if len(opts) < 2 {
			return NA{}, fmt.Errorf("parse NA: %w: %d byte(s) left for an option header", ErrTruncated, len(opts))
		}
		olen := int(opts[1]) * 8
		if olen == 0 {
			// RFC 4861 section 4.6: such a packet MUST be discarded.
			return NA{}, fmt.Errorf("parse NA: %w: option type %d with length zero", ErrMalformed, opts[0])
		}
		if olen > len(opts) {
			return NA{}, fmt.Errorf("parse NA: %w: option type %d of %d bytes, %d present", ErrTruncated, opts[0], olen, len(opts))
		}
		if opts[0] == optTargetLL && olen == tllaOptLen && n.TargetLL == nil {
			n.TargetLL = cloneMAC(opts[2:8])
		}
		opts = opts[olen:]
	}
	if inet.Fold(inet.Sum(inet.PseudoHeaderSum(0, n.Src, n.Dst, icmpv6Proto, len(m)), m)) != 0xffff {
		return NA{}, fmt.Errorf("parse NA: %w: %#04x from %v to %v", ErrChecksum, n.Checksum, n.Src, n.Dst)
	}
	return n, nil
}

// UnsolicitedNA returns the Ethernet frame that tells all nodes on the link
// that target is at mac: an unsolicited Neighbor Advertisement (RFC 4861
// section 7.2.6) from src, which must be an address of the sending
// interface (its link-local one, as keepalived sends), to ff02::1, with the
// Override flag set so that existing cache entries are replaced, the
// Solicited flag clear, the Router flag as given, a Target Link-Layer
// Address option holding mac, and hop limit 255.
func UnsolicitedNA(mac net.HardwareAddr, target, src netip.Addr, router bool) ([]byte, error) {
	return appendUnsolicitedNA(nil, mac, target, src, router)
}

// appendUnsolicitedNA appends UnsolicitedNA's frame to b.
func appendUnsolicitedNA(b []byte, mac net.HardwareAddr, target, src netip.Addr, router bool) ([]byte, error) {
	n := NA{
		EthDst:   allNodesEth[:],
		EthSrc:   mac,
		Src:      src,
		Dst:      allNodes(),
		HopLimit: 255,
		Router:   router,
		Override: true,
		Target:   target,
		TargetLL: mac,
	}
	if target.Is6() && target.IsMulticast() {
		// RFC 4861 section 7.1.2: a multicast target is invalid.
		return nil, fmt.Errorf("unsolicited NA for %v: %w: multicast target", target, ErrMalformed)
	}
	b, err := n.MarshalAppend(b)
	if err != nil {
		return nil, fmt.Errorf("unsolicited NA for %v at %v: %w", target, mac, err)
	}
	return b, nil
}

func cloneMAC(b []byte) net.HardwareAddr { return append(net.HardwareAddr(nil), b...) }
