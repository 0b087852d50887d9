package inet

import "net/netip"

// The Internet checksum (RFC 1071): the one's complement of the one's
// complement sum of 16-bit words. VRRP version 2 and 3 adverts (RFC 5798
// section 5.2.8) and ICMPv6 neighbour advertisements (RFC 4443 section 2.3)
// both use it, the latter two over a pseudo-header.

// Sum adds b, as big-endian 16-bit words (an odd last byte padded with a
// zero byte), to the unfolded sum s.
func Sum(s uint64, b []byte) uint64 {
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// PseudoHeaderSum adds to s the pseudo-header of an upper-layer message of
// length bytes and protocol proto from src to dst: RFC 768's for IPv4 (both
// addresses 4 bytes), RFC 8200 section 8.1's for IPv6. The length is added
// as two 16-bit words, which is the IPv6 32-bit field and, for any length
// that fits, the IPv4 16-bit one.
func PseudoHeaderSum(s uint64, src, dst netip.Addr, proto uint8, length int) uint64 {
	if src.Is4() && dst.Is4() {
		s4, d4 := src.As4(), dst.As4()
		s = Sum(Sum(s, s4[:]), d4[:])
	} else {
		s16, d16 := src.As16(), dst.As16()
		s = Sum(Sum(s, s16[:]), d16[:])
	}
	return s + uint64(length)>>16 + uint64(length)&0xffff + uint64(proto)
}

// Fold folds the carries of the sum s back into 16 bits (end-around carry).
// A message whose checksum field is right folds to 0xffff; the field to
// send is ^Fold of the sum taken with the field zero.
func Fold(s uint64) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}
