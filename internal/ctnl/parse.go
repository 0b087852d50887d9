package ctnl

import (
	"encoding/binary"
	"net/netip"

	"vigil/internal/ctflow"
)

// ParseFlow decodes the attributes of one ctnetlink flow message (an event
// or a dump answer, after its nfgenmsg header) into e, without allocating:
// a full dump of 100,000 flows through github.com/ti-mo/conntrack cost
// 0.7 s of CPU, most of it building attribute decoders. It reports false
// for a malformed message and for flows vigil does not sync (ICMP, no
// ports, mixed families). Attribute layout: linux/netfilter/
// nfnetlink_conntrack.h; lengths and types in host order, values
// big-endian.
func ParseFlow(b []byte, e *ctflow.Entry) bool {
	*e = ctflow.Entry{}
	var replyProto uint8
	ok := true
	eachAttr(b, func(typ uint16, p []byte) {
		switch typ {
		case ctaTupleOrig:
			ok = ok && parseTuple(p, &e.Orig, &e.Proto)
		case ctaTupleReply:
			ok = ok && parseTuple(p, &e.Reply, &replyProto)
		case ctaStatus:
			e.Status = be32(p, e.Status)
		case ctaTimeout:
			e.Timeout = be32(p, e.Timeout)
		case ctaMark:
			e.Mark = be32(p, e.Mark)
		case ctaZone:
			if len(p) >= 2 {
				e.Zone = binary.BigEndian.Uint16(p)
			}
		case ctaProtoinfo:
			eachAttr(p, func(typ uint16, p []byte) {
				if typ != ctaProtoinfoTCP {
					return
				}
				eachAttr(p, func(typ uint16, p []byte) {
					if len(p) == 0 {
						return
					}
					switch typ {
					case ctaProtoinfoTCPState:
						e.TCPState = p[0]
					case ctaProtoinfoTCPWScaleO:
						e.WScaleOrig = p[0]
					case ctaProtoinfoTCPWScaleR:
						e.WScaleReply = p[0]
					case ctaProtoinfoTCPFlagsO: // struct nf_ct_tcp_flags { flags; mask }
						e.FlagsOrig = p[0]
					case ctaProtoinfoTCPFlagsR:
						e.FlagsReply = p[0]
					}
				})
			})
		}
	})
	return ok && replyProto == e.Proto && e.Proto != 1 && e.Proto != 58 && e.Valid()
}

// eachAttr calls fn for each netlink attribute of b, its type without the
// nested and byte-order flags; it stops at the first malformed one.
func eachAttr(b []byte, fn func(typ uint16, p []byte)) {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		if l < 4 || l > len(b) {
			return
		}
		fn(binary.NativeEndian.Uint16(b[2:])&0x3fff, b[4:l])
		l = (l + 3) &^ 3
		if l >= len(b) {
			return
		}
		b = b[l:]
	}
}

// be32 is the 32-bit big-endian value of attribute p, or old when p is too
// short (a malformed attribute changes nothing).
func be32(p []byte, old uint32) uint32 {
	if len(p) < 4 {
		return old
	}
	return binary.BigEndian.Uint32(p)
}

// parseTuple decodes CTA_TUPLE_ORIG or _REPLY: addresses, protocol, ports.
func parseTuple(b []byte, t *ctflow.Tuple, proto *uint8) bool {
	var havePorts bool
	eachAttr(b, func(typ uint16, p []byte) {
		switch typ {
		case ctaTupleIP:
			eachAttr(p, func(typ uint16, p []byte) {
				// 4 bytes for the IPv4 attributes, 16 for the IPv6 ones.
				a, ok := netip.AddrFromSlice(p)
				v4 := ok && a.Is4()
				v6 := ok && a.Is6()
				switch {
				case typ == ctaIPv4Src && v4, typ == ctaIPv6Src && v6:
					t.Src = a
				case typ == ctaIPv4Dst && v4, typ == ctaIPv6Dst && v6:
					t.Dst = a
				}
			})
		case ctaTupleProto:
			eachAttr(p, func(typ uint16, p []byte) {
				switch {
				case typ == ctaProtoNum && len(p) >= 1:
					*proto = p[0]
				case typ == ctaProtoSrc && len(p) >= 2:
					t.SrcPort, havePorts = binary.BigEndian.Uint16(p), true
				case typ == ctaProtoDst && len(p) >= 2:
					t.DstPort = binary.BigEndian.Uint16(p)
				}
			})
		}
	})
	return t.Src.IsValid() && t.Dst.IsValid() && havePorts
}
