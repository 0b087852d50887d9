// Package wire encodes and decodes VRRP advertisements.
//
// It implements the packet formats of VRRP version 2 for IPv4 (RFC 3768,
// section 5) and VRRP version 3 for IPv4 and IPv6 (RFC 5798, section 5, as
// updated by RFC 9568, section 5), including the checksum rules of RFC 3768
// section 5.3.8 and RFC 5798 section 5.2.8, and the simple text password of
// RFC 2338 section 5.3.7 that keepalived still speaks as "auth_type PASS".
//
// The codec is pure: it does no I/O, reads no clock, and never panics on any
// input. Parse only checks structure (length, version, address count); the
// receive checks of RFC 5798 section 7.1 (TTL, type, authentication,
// checksum, interval) are left to the caller, which applies them in its own
// order, with VerifyChecksum for the checksum.
//
// Wire format, version 2 (RFC 3768 section 5.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Auth Type   |   Adver Int   |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         IP Address (1..n)                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Authentication Data (1)                   |
//	|                     Authentication Data (2)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Wire format, version 3 (RFC 5798 section 5.1):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|(rsvd) |     Max Adver Int     |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   IPvX Address(es) (1..n)                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Checksums (the 16-bit one's complement of the one's complement sum,
// RFC 1071) cover:
//   - version 2: the VRRP message only;
//   - version 3 over IPv6: the IPv6 pseudo-header (RFC 8200 section 8.1)
//     and the VRRP message;
//   - version 3 over IPv4: the IPv4 pseudo-header and the VRRP message
//     (ChecksumPseudoHeader: RFC 5798 and RFC 9568, and what keepalived
//     2.2.7 sends by default), or the VRRP message only
//     (ChecksumNoPseudoHeader: the v3_checksum_as_v2 of later keepalived
//     releases, and some other vendors).
//
// Adverts captured from keepalived 2.2.7 (testdata/keepalived-2.2.7.txt)
// confirm these rules, and show two more details: version 2 always carries
// the 8 bytes of authentication data, zeros when there is no
// authentication; and a version 3 IPv4 unicast advert uses the unicast
// destination in its pseudo-header, except with keepalived's
// old_unicast_checksum, which uses 224.0.0.18 there (see VerifyChecksum).
// keepalived 2.2.7 itself has no v3_checksum_as_v2 keyword.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"vigil/internal/enum"
	"vigil/internal/inet"
)

// Protocol is the IP protocol number of VRRP (RFC 5798 section 5.1.1.4).
const Protocol = 112

// The multicast groups adverts are sent to (RFC 5798 sections 5.1.1.2 and
// 5.1.2.2).
var (
	GroupV4 = netip.MustParseAddr("224.0.0.18")
	GroupV6 = netip.MustParseAddr("ff02::12")
)

// TypeAdvertisement is the only VRRP packet type defined (RFC 5798 section
// 5.2.2).
const TypeAdvertisement = 1

// Version 2 authentication types (RFC 2338 section 5.3.6; RFC 3768 keeps the
// field but deprecates the types other than 0).
const (
	AuthNone = 0 // no authentication
	AuthPass = 1 // simple text password, keepalived's auth_type PASS
	AuthAH   = 2 // IP Authentication Header, keepalived's auth_type AH
)

// Sizes of the fixed parts of a message.
const (
	HeaderLen   = 8 // the fixed header, both versions
	AuthDataLen = 8 // the version 2 trailer
)

// ChecksumMode selects how the checksum of a version 3 advert over IPv4 is
// computed. It has no effect on version 2 (always over the VRRP message
// only) or on version 3 over IPv6 (always with the IPv6 pseudo-header).
// Any value other than ChecksumNoPseudoHeader means ChecksumPseudoHeader.
type ChecksumMode int

const (
	// ChecksumPseudoHeader includes the IPv4 pseudo-header (source,
	// destination, zero, protocol 112, VRRP length), as RFC 5798 section
	// 5.2.8 and RFC 9568 require; keepalived 2.2.7's default.
	ChecksumPseudoHeader ChecksumMode = iota
	// ChecksumNoPseudoHeader covers the VRRP message only, as in version 2:
	// keepalived's v3_checksum_as_v2, and some other vendors.
	ChecksumNoPseudoHeader
)

// String returns the mode's name.
func (m ChecksumMode) String() string { return enum.Name(checksumModeNames, m, "ChecksumMode") }

var checksumModeNames = []string{ChecksumPseudoHeader: "pseudo-header", ChecksumNoPseudoHeader: "no-pseudo-header"}

// Errors, for errors.Is. The errors returned wrap one of these and say what
// was expected and what was found.
var (
	// ErrTruncated: the message is shorter than its header or its address
	// count require. It wraps io.ErrUnexpectedEOF.
	ErrTruncated = fmt.Errorf("truncated VRRP message: %w", io.ErrUnexpectedEOF)
	// ErrVersion: the version is neither 2 nor 3, or 2 over IPv6.
	ErrVersion = errors.New("unsupported VRRP version")
	// ErrAddrCount: the message is longer than its address count says.
	ErrAddrCount = errors.New("VRRP address count does not match length")
	// ErrFamily: a family other than IPv4 or IPv6, or addresses of mixed
	// families.
	ErrFamily = errors.New("wrong address family")
	// ErrRange: Marshal was given a field value that does not fit the
	// wire format of the version.
	ErrRange = errors.New("VRRP field out of range")
)

// Advert is one VRRP advertisement, either version.
//
// The zero Advert is not valid for Marshal: Version must be 2 or 3.
type Advert struct {
	Version  uint8  // 2 or 3
	Type     uint8  // 1 = ADVERTISEMENT (TypeAdvertisement)
	VRID     uint8  // virtual router identifier
	Priority uint8  // 0 = master is leaving, 255 = address owner
	AuthType uint8  // version 2 only: AuthNone, AuthPass or AuthAH
	Interval uint16 // v2: Adver Int in seconds (8 bits); v3: Max Adver Int in centiseconds (12 bits)
	Addrs    []netip.Addr
	AuthData [8]byte // version 2 only
	Checksum uint16  // as found on the wire (Parse) or as computed (Marshal)
}

// Parse decodes the VRRP message b (the IP payload, exactly) received over
// family fam.
//
// It checks structure only: that b holds at least the fixed header, that
// the version is 2 (IPv4 only) or 3, and that the length is exactly what the
// address count requires (plus the authentication data for version 2). It
// does not check the type, the authentication, the interval or the
// checksum. The errors wrap ErrTruncated (and so io.ErrUnexpectedEOF),
// ErrVersion, ErrAddrCount or ErrFamily.
//
// The Advert returned shares no memory with b.
func Parse(b []byte, fam inet.Family) (Advert, error) {
	return parse(b, fam, true)
}

// ParseHeader is Parse without the addresses: the same checks and errors,
// but Addrs is left nil, so it allocates nothing; HasAddr reads the
// addresses where they are. A receive path that needs only to look an
// address up keeps no scratch Advert for them (the daemon's steady state
// allocates nothing per advert, and a VRRP instance keeps no 48-byte
// scratch: issue #7).
func ParseHeader(b []byte, fam inet.Family) (Advert, error) {
	return parse(b, fam, false)
}

// HasAddr reports whether the address list of b, a message of family fam
// that Parse or ParseHeader accepted, holds addr.
func HasAddr(b []byte, fam inet.Family, addr netip.Addr) bool {
	alen := fam.AddrLen()
	if alen == 0 || len(b) < HeaderLen || len(b) < HeaderLen+int(b[3])*alen || addr.BitLen() != alen*8 {
		return false
	}
	// An IPv4 address is the last 4 bytes of its IPv4-mapped form.
	a16 := addr.As16()
	want := a16[16-alen:]
	for p := b[HeaderLen : HeaderLen+int(b[3])*alen]; len(p) > 0; p = p[alen:] {
		if string(p[:alen]) == string(want) { // compared in place (the codec imports no bytes)
			return true
		}
	}
	return false
}

func parse(b []byte, fam inet.Family, addrs bool) (Advert, error) {
	alen := fam.AddrLen()
	if alen == 0 {
		return Advert{}, fmt.Errorf("parse VRRP: %w: %v, want IPv4 or IPv6", ErrFamily, fam)
	}
	if len(b) < HeaderLen {
		return Advert{}, fmt.Errorf("parse VRRP: %w: %d bytes, the header needs %d", ErrTruncated, len(b), HeaderLen)
	}
	a := Advert{
		Version:  b[0] >> 4,
		Type:     b[0] & 0x0f,
		VRID:     b[1],
		Priority: b[2],
		Checksum: binary.BigEndian.Uint16(b[6:8]),
	}
	n := int(b[3])
	trailer := 0
	switch a.Version {
	case 2:
		if fam != inet.IPv4 {
			return Advert{}, fmt.Errorf("parse VRRP: %w: version 2 over %v, want version 3 (version 2 is IPv4 only)", ErrVersion, fam)
		}
		a.AuthType = b[4]
		a.Interval = uint16(b[5])
		trailer = AuthDataLen
	case 3:
		a.Interval = binary.BigEndian.Uint16(b[4:6]) & 0x0fff // the 4 reserved bits are ignored on receipt
	default:
		return Advert{}, fmt.Errorf("parse VRRP: %w: version %d, want 2 or 3", ErrVersion, a.Version)
	}
	want := HeaderLen + n*alen + trailer
	if len(b) < want {
		return Advert{}, fmt.Errorf("parse VRRP: %w: %d bytes, version %d with address count %d (%v) needs %d",
			ErrTruncated, len(b), a.Version, n, fam, want)
	}
	if len(b) > want {
		return Advert{}, fmt.Errorf("parse VRRP: %w: %d bytes, but version %d with address count %d (%v) is %d bytes",
			ErrAddrCount, len(b), a.Version, n, fam, want)
	}
	if n > 0 && addrs {
		a.Addrs = make([]netip.Addr, n)
		p := b[HeaderLen:]
		for i := range a.Addrs {
			if fam == inet.IPv4 {
				a.Addrs[i] = netip.AddrFrom4([4]byte(p[:4]))
			} else {
				a.Addrs[i] = netip.AddrFrom16([16]byte(p[:16]))
			}
			p = p[alen:]
		}
	}
	if trailer > 0 {
		copy(a.AuthData[:], b[want-trailer:])
	}
	return a, nil
}

// Len returns the size of a's message on the wire over family fam, or 0 if
// a's version is not 2 or 3 or fam is not IPv4 or IPv6. It does no other
// validation.
func (a Advert) Len(fam inet.Family) int {
	alen := fam.AddrLen()
	switch {
	case alen == 0:
		return 0
	case a.Version == 2:
		return HeaderLen + len(a.Addrs)*alen + AuthDataLen
	case a.Version == 3:
		return HeaderLen + len(a.Addrs)*alen
	}
	return 0
}

// Marshal encodes a as sent from src to dst, computes its checksum for that
// pseudo-header and mode, and stores the checksum in a.Checksum.
//
// src and dst must be valid addresses of one family (IPv4-mapped IPv6
// addresses count as IPv4), which is the family of the advert: every address
// in a.Addrs must be of it. It validates the fields against the version's
// format: version 2 (IPv4 only) or 3, type within 4 bits, at most 255
// addresses, a version 2 interval within 8 bits and a version 3 interval
// within 12 bits, and no authentication in version 3. The errors wrap
// ErrVersion, ErrFamily or ErrRange.
func (a *Advert) Marshal(src, dst netip.Addr, mode ChecksumMode) ([]byte, error) {
	src, dst = src.Unmap(), dst.Unmap()
	fam := inet.Of(dst)
	if fam == 0 || inet.Of(src) != fam {
		return nil, fmt.Errorf("marshal VRRP: %w: source %v and destination %v, want two IPv4 or two IPv6 addresses", ErrFamily, src, dst)
	}
	switch a.Version {
	case 2:
		if fam != inet.IPv4 {
			return nil, fmt.Errorf("marshal VRRP: %w: version 2 to %v, want version 3 (version 2 is IPv4 only)", ErrVersion, dst)
		}
		if a.Interval > 0xff {
			return nil, fmt.Errorf("marshal VRRP: %w: version 2 interval %d s, want at most 255", ErrRange, a.Interval)
		}
	case 3:
		if a.Interval > 0x0fff {
			return nil, fmt.Errorf("marshal VRRP: %w: version 3 interval %d cs, want at most 4095", ErrRange, a.Interval)
		}
		if a.AuthType != 0 || a.AuthData != [8]byte{} {
			ad := a.AuthData // a copy: slicing a's own would move every Advert to the heap
			return nil, fmt.Errorf("marshal VRRP: %w: version 3 with auth type %d and auth data %q, want none", ErrRange, a.AuthType, ad[:])
		}
	default:
		return nil, fmt.Errorf("marshal VRRP: %w: version %d, want 2 or 3", ErrVersion, a.Version)
	}
	if a.Type > 0x0f {
		return nil, fmt.Errorf("marshal VRRP: %w: type %d, want at most 15", ErrRange, a.Type)
	}
	if len(a.Addrs) > 0xff {
		return nil, fmt.Errorf("marshal VRRP: %w: %d addresses, want at most 255", ErrRange, len(a.Addrs))
	}
	for i, addr := range a.Addrs {
		if !addr.IsValid() || (fam == inet.IPv4) != addr.Is4() {
			return nil, fmt.Errorf("marshal VRRP: %w: address %d is %q, want an %v address like the destination %v", ErrFamily, i, addr, fam, dst)
		}
	}

	b := make([]byte, a.Len(fam))
	b[0] = a.Version<<4 | a.Type
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = uint8(len(a.Addrs))
	if a.Version == 2 {
		b[4] = a.AuthType
		b[5] = uint8(a.Interval)
	} else {
		binary.BigEndian.PutUint16(b[4:6], a.Interval)
	}
	p := b[HeaderLen:]
	for _, addr := range a.Addrs {
		if fam == inet.IPv4 {
			a4 := addr.As4()
			p = p[copy(p, a4[:]):]
		} else {
			a16 := addr.As16()
			p = p[copy(p, a16[:]):]
		}
	}
	if a.Version == 2 {
		copy(p, a.AuthData[:])
	}
	a.Checksum = ^inet.Fold(checksumSum(b, src, dst, mode))
	binary.BigEndian.PutUint16(b[6:8], a.Checksum)
	return b, nil
}

// VerifyChecksum reports whether b, a whole VRRP message as received from
// src to dst, carries a correct checksum. The version is taken from b: for
// version 2 src, dst and mode are not used; for version 3 the family of src
// and dst selects the IPv4 (with mode) or IPv6 pseudo-header. It reports
// false for a message shorter than the header, of a version other than 2 or
// 3, or of version 3 with src and dst invalid or of different families.
//
// To accept a version 3 unicast advert from a keepalived peer configured with
// old_unicast_checksum, which puts 224.0.0.18 instead of the unicast
// destination in the pseudo-header, verify it again with dst = GroupV4.
func VerifyChecksum(b []byte, src, dst netip.Addr, mode ChecksumMode) bool {
	if len(b) < HeaderLen {
		return false
	}
	src, dst = src.Unmap(), dst.Unmap()
	switch b[0] >> 4 {
	case 2:
	case 3:
		if fam := inet.Of(dst); fam == 0 || inet.Of(src) != fam {
			return false
		}
		if (dst.Is4() && len(b) > 0xffff) || uint64(len(b)) > 0xffffffff {
			return false // no pseudo-header can carry that length
		}
	default:
		return false
	}
	return inet.Fold(checksumSum(b, src, dst, mode)) == 0xffff
}

// checksumSum returns the unfolded one's complement sum of b (with
// whatever b holds in its checksum field) and of the pseudo-header that b's
// version, the family of src and dst, and mode call for.
func checksumSum(b []byte, src, dst netip.Addr, mode ChecksumMode) uint64 {
	s := inet.Sum(0, b)
	if b[0]>>4 == 2 || (src.Is4() && dst.Is4() && mode == ChecksumNoPseudoHeader) {
		return s
	}
	return inet.PseudoHeaderSum(s, src, dst, Protocol, len(b))
}

// Password returns the version 2 authentication data for the password s, as
// keepalived's auth_pass sends it: the first 8 bytes of s, zero-padded.
func Password(s string) [8]byte {
	var p [8]byte
	copy(p[:], s)
	return p
}

// AdverInterval returns a's interval as a duration: Interval seconds for
// version 2, Interval centiseconds for version 3, and 0 for other versions.
func (a Advert) AdverInterval() time.Duration {
	switch a.Version {
	case 2:
		return time.Duration(a.Interval) * time.Second
	case 3:
		return time.Duration(a.Interval) * 10 * time.Millisecond
	}
	return 0
}

// EncodeInterval returns the Interval field that carries d in the given
// version: whole seconds for version 2 (at most 255), whole centiseconds for
// version 3 (at most 4095), truncating any remainder. A negative d, a d that
// does not fit, or another version is an error wrapping ErrRange or
// ErrVersion.
func EncodeInterval(version uint8, d time.Duration) (uint16, error) {
	var unit time.Duration
	var max int64
	switch version {
	case 2:
		unit, max = time.Second, 0xff
	case 3:
		unit, max = 10*time.Millisecond, 0x0fff
	default:
		return 0, fmt.Errorf("encode VRRP interval: %w: version %d, want 2 or 3", ErrVersion, version)
	}
	if d < 0 || int64(d/unit) > max {
		return 0, fmt.Errorf("encode VRRP interval: %w: %v in version %d, want 0 to %v", ErrRange, d, version, time.Duration(max)*unit)
	}
	return uint16(d / unit), nil
}

// String describes a in one line, the way tcpdump prints a VRRP packet, for
// logs and test traces:
//
//	VRRPv2, Advertisement, vrid 51, prio 150, authtype simple, intvl 1s, addrs(2): 192.0.2.100,192.0.2.101 auth "secret", cksum 0x1234
//	VRRPv3, Advertisement, vrid 51, prio 150, intvl 100cs, addrs(1): 2001:db8::100, cksum 0x1234
func (a Advert) String() string {
	var sb strings.Builder
	sb.WriteString("VRRPv")
	sb.WriteString(strconv.Itoa(int(a.Version)))
	sb.WriteString(", ")
	if a.Type == TypeAdvertisement {
		sb.WriteString("Advertisement")
	} else {
		sb.WriteString("unknown type ")
		sb.WriteString(strconv.Itoa(int(a.Type)))
	}
	fmt.Fprintf(&sb, ", vrid %d, prio %d", a.VRID, a.Priority)
	if a.Version == 2 {
		sb.WriteString(", authtype ")
		switch a.AuthType {
		case AuthNone:
			sb.WriteString("none")
		case AuthPass:
			sb.WriteString("simple")
		case AuthAH:
			sb.WriteString("ah")
		default:
			sb.WriteString(strconv.Itoa(int(a.AuthType)))
		}
		fmt.Fprintf(&sb, ", intvl %ds", a.Interval)
	} else {
		fmt.Fprintf(&sb, ", intvl %dcs", a.Interval)
	}
	fmt.Fprintf(&sb, ", addrs(%d):", len(a.Addrs))
	for i, addr := range a.Addrs {
		if i == 0 {
			sb.WriteByte(' ')
		} else {
			sb.WriteByte(',')
		}
		sb.WriteString(addr.String())
	}
	if a.Version == 2 && a.AuthType == AuthPass {
		pass, _, _ := strings.Cut(string(a.AuthData[:]), "\x00")
		sb.WriteString(" auth ")
		sb.WriteString(strconv.Quote(pass))
	}
	fmt.Fprintf(&sb, ", cksum 0x%04x", a.Checksum)
	return sb.String()
}
