package wire

import (
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
	"vigil/internal/inet"

	"github.com/google/go-cmp/cmp"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		fam     inet.Family
		want    error  // a sentinel for errors.Is
		wantMsg string // the whole message
	}{{
		name: "empty", hex: "", fam: inet.IPv4, want: ErrTruncated,
		wantMsg: "parse VRRP: truncated VRRP message: unexpected EOF: 0 bytes, the header needs 8",
	}, {
		name: "header short by one", hex: "31016401 000000", fam: inet.IPv4, want: ErrTruncated,
		wantMsg: "parse VRRP: truncated VRRP message: unexpected EOF: 7 bytes, the header needs 8",
	}, {
		name: "v3 IPv4 count 2 with one address", hex: "31016402 00640000 c0000201", fam: inet.IPv4, want: ErrTruncated,
		wantMsg: "parse VRRP: truncated VRRP message: unexpected EOF: 12 bytes, version 3 with address count 2 (IPv4) needs 16",
	}, {
		name: "v3 IPv4 count 1 with two addresses", hex: "31016401 00640000 c0000201 c0000202", fam: inet.IPv4, want: ErrAddrCount,
		wantMsg: "parse VRRP: VRRP address count does not match length: 16 bytes, but version 3 with address count 1 (IPv4) is 12 bytes",
	}, {
		name: "v3 IPv4 count 0 with one address", hex: "31016400 00640000 c0000201", fam: inet.IPv4, want: ErrAddrCount,
	}, {
		name: "v3 IPv4 one stray byte", hex: "31016401 00640000 c0000201 00", fam: inet.IPv4, want: ErrAddrCount,
	}, {
		name: "v2 without auth data", hex: "21016401 01010000 c0000201", fam: inet.IPv4, want: ErrTruncated,
		wantMsg: "parse VRRP: truncated VRRP message: unexpected EOF: 12 bytes, version 2 with address count 1 (IPv4) needs 20",
	}, {
		name: "v2 auth data short by one", hex: "21016401 01010000 c0000201 00000000 000000", fam: inet.IPv4, want: ErrTruncated,
	}, {
		name: "v2 one byte after auth data", hex: "21016401 01010000 c0000201 00000000 00000000 00", fam: inet.IPv4, want: ErrAddrCount,
	}, {
		name: "v2 count 255 header only", hex: "210164ff 01010000", fam: inet.IPv4, want: ErrTruncated,
		wantMsg: "parse VRRP: truncated VRRP message: unexpected EOF: 8 bytes, version 2 with address count 255 (IPv4) needs 1036",
	}, {
		name: "v3 IPv6 count 1 with an IPv4-sized address", hex: "31016401 00640000 c0000201", fam: inet.IPv6, want: ErrTruncated,
		wantMsg: "parse VRRP: truncated VRRP message: unexpected EOF: 12 bytes, version 3 with address count 1 (IPv6) needs 24",
	}, {
		name: "v3 IPv6 message parsed as IPv4", hex: "31016401 0fff0000 20010db8 00000000 00000000 00000001", fam: inet.IPv4, want: ErrAddrCount,
	}, {
		name: "version 0", hex: "01016401 00640000 c0000201", fam: inet.IPv4, want: ErrVersion,
		wantMsg: "parse VRRP: unsupported VRRP version: version 0, want 2 or 3",
	}, {
		name: "version 1", hex: "11016401 00640000 c0000201", fam: inet.IPv4, want: ErrVersion,
	}, {
		name: "version 4", hex: "41016401 00640000 c0000201", fam: inet.IPv4, want: ErrVersion,
	}, {
		name: "version 15 over IPv6", hex: "f1016401 00640000", fam: inet.IPv6, want: ErrVersion,
	}, {
		name: "version 2 over IPv6", hex: "21016401 01010000 20010db8 00000000 00000000 00000001 00000000 00000000", fam: inet.IPv6, want: ErrVersion,
		wantMsg: "parse VRRP: unsupported VRRP version: version 2 over IPv6, want version 3 (version 2 is IPv4 only)",
	}, {
		name: "version checked before length", hex: "51016405 00640000", fam: inet.IPv4, want: ErrVersion,
	}, {
		name: "family 0", hex: "31016401 00640000 c0000201", fam: 0, want: ErrFamily,
		wantMsg: "parse VRRP: wrong address family: Family(0), want IPv4 or IPv6",
	}, {
		name: "family 5", hex: "31016401 00640000 c0000201", fam: 5, want: ErrFamily,
	}, {
		name: "family checked before length", hex: "", fam: 255, want: ErrFamily,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse(unhex(t, tt.hex), tt.fam)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, %v; want error %v", a, err, tt.want)
			}
			if errors.Is(tt.want, ErrTruncated) != errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("errors.Is(%v, io.ErrUnexpectedEOF) = %t", err, !errors.Is(tt.want, ErrTruncated))
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("message:\n got %s\nwant %s", err, tt.wantMsg)
			}
			if diff := cmp.Diff(Advert{}, a, cmpAddr); diff != "" {
				t.Errorf("Parse returned a non-zero Advert with its error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseTruncatedEverywhere cuts every golden message at every length:
// each prefix must fail with ErrTruncated, which is io.ErrUnexpectedEOF,
// and every extension by a byte with ErrAddrCount.
func TestParseTruncatedEverywhere(t *testing.T) {
	for _, g := range append(handGolden, keepalivedGolden(t)...) {
		b := unhex(t, g.hex)
		fam := inet.Of(g.dst)
		for n := range len(b) {
			_, err := Parse(b[:n], fam)
			if !errors.Is(err, ErrTruncated) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%s: Parse(first %d of %d bytes) = %v, want ErrTruncated wrapping io.ErrUnexpectedEOF", g.name, n, len(b), err)
			}
		}
		for _, extra := range []int{1, 4, 16} {
			_, err := Parse(append(b[:len(b):len(b)], make([]byte, extra)...), fam)
			if !errors.Is(err, ErrAddrCount) {
				t.Errorf("%s: Parse(%d bytes + %d) = %v, want ErrAddrCount", g.name, len(b), extra, err)
			}
		}
	}
}

func TestParseIgnores(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		fam  inet.Family
		want Advert
	}{{
		name: "v3 reserved bits",
		hex:  "31016401 f0640000 c0000201", fam: inet.IPv4,
		want: Advert{Version: 3, Type: 1, VRID: 1, Priority: 100, Interval: 100, Addrs: addrs("192.0.2.1")},
	}, {
		name: "unknown type, bad checksum, unknown auth type",
		hex:  "2f016401 07ff1234 c0000201 ffffffff ffffffff", fam: inet.IPv4,
		want: Advert{Version: 2, Type: 15, VRID: 1, Priority: 100, AuthType: 7, Interval: 255,
			Addrs: addrs("192.0.2.1"), AuthData: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Checksum: 0x1234},
	}, {
		name: "v3 IPv6 no addresses type 0 priority 0",
		hex:  "30010000 00000000", fam: inet.IPv6,
		want: Advert{Version: 3, Type: 0, VRID: 1},
	}, {
		name: "v3 IPv6 IPv4-mapped address kept as is",
		hex:  "31016401 00640000 00000000 00000000 0000ffff c0000201", fam: inet.IPv6,
		want: Advert{Version: 3, Type: 1, VRID: 1, Priority: 100, Interval: 100, Addrs: addrs("::ffff:192.0.2.1")},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(unhex(t, tt.hex), tt.fam)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDoesNotAlias(t *testing.T) {
	b := unhex(t, handGolden[0].hex)
	a, err := Parse(b, inet.IPv4)
	if err != nil {
		t.Fatal(err)
	}
	before := a.String()
	for i := range b {
		b[i] = 0xee
	}
	if after := a.String(); after != before {
		t.Errorf("Advert changed with its input:\nbefore %s\n after %s", before, after)
	}
}

func TestMarshalErrors(t *testing.T) {
	v4src, v6src := mustAddr("192.0.2.1"), mustAddr("fe80::1")
	ok2 := Advert{Version: 2, Type: 1, VRID: 1, Priority: 100, AuthType: AuthPass, Interval: 1,
		Addrs: addrs("192.0.2.10"), AuthData: Password("x")}
	ok3 := Advert{Version: 3, Type: 1, VRID: 1, Priority: 100, Interval: 100, Addrs: addrs("192.0.2.10")}
	ok6 := Advert{Version: 3, Type: 1, VRID: 1, Priority: 100, Interval: 100, Addrs: addrs("2001:db8::10")}
	with := func(a Advert, f func(*Advert)) Advert {
		a.Addrs = append([]netip.Addr(nil), a.Addrs...)
		f(&a)
		return a
	}
	many := make([]netip.Addr, 256)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
	}
	tests := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		want     error
		wantMsg  string
	}{{
		name: "zero Advert", a: Advert{}, src: v4src, dst: GroupV4, want: ErrVersion,
		wantMsg: "marshal VRRP: unsupported VRRP version: version 0, want 2 or 3",
	}, {
		name: "version 4", a: with(ok3, func(a *Advert) { a.Version = 4 }), src: v4src, dst: GroupV4, want: ErrVersion,
	}, {
		name: "version 2 over IPv6", a: with(ok2, func(a *Advert) { a.Addrs = addrs("2001:db8::10") }), src: v6src, dst: GroupV6, want: ErrVersion,
		wantMsg: "marshal VRRP: unsupported VRRP version: version 2 to ff02::12, want version 3 (version 2 is IPv4 only)",
	}, {
		name: "v2 interval 256", a: with(ok2, func(a *Advert) { a.Interval = 256 }), src: v4src, dst: GroupV4, want: ErrRange,
		wantMsg: "marshal VRRP: VRRP field out of range: version 2 interval 256 s, want at most 255",
	}, {
		name: "v3 interval 4096", a: with(ok3, func(a *Advert) { a.Interval = 4096 }), src: v4src, dst: GroupV4, want: ErrRange,
		wantMsg: "marshal VRRP: VRRP field out of range: version 3 interval 4096 cs, want at most 4095",
	}, {
		name: "v3 IPv6 interval 65535", a: with(ok6, func(a *Advert) { a.Interval = 65535 }), src: v6src, dst: GroupV6, want: ErrRange,
	}, {
		name: "v3 auth type", a: with(ok3, func(a *Advert) { a.AuthType = AuthPass }), src: v4src, dst: GroupV4, want: ErrRange,
		wantMsg: `marshal VRRP: VRRP field out of range: version 3 with auth type 1 and auth data "\x00\x00\x00\x00\x00\x00\x00\x00", want none`,
	}, {
		name: "v3 auth data", a: with(ok6, func(a *Advert) { a.AuthData = Password("secret") }), src: v6src, dst: GroupV6, want: ErrRange,
	}, {
		name: "type 16", a: with(ok3, func(a *Advert) { a.Type = 16 }), src: v4src, dst: GroupV4, want: ErrRange,
		wantMsg: "marshal VRRP: VRRP field out of range: type 16, want at most 15",
	}, {
		name: "256 addresses", a: with(ok2, func(a *Advert) { a.Addrs = many }), src: v4src, dst: GroupV4, want: ErrRange,
		wantMsg: "marshal VRRP: VRRP field out of range: 256 addresses, want at most 255",
	}, {
		name: "IPv6 address in IPv4 advert", a: with(ok3, func(a *Advert) { a.Addrs = append(a.Addrs, mustAddr("2001:db8::1")) }), src: v4src, dst: GroupV4, want: ErrFamily,
		wantMsg: `marshal VRRP: wrong address family: address 1 is "2001:db8::1", want an IPv4 address like the destination 224.0.0.18`,
	}, {
		name: "IPv4-mapped address in IPv4 advert", a: with(ok2, func(a *Advert) { a.Addrs = addrs("::ffff:192.0.2.10") }), src: v4src, dst: GroupV4, want: ErrFamily,
	}, {
		name: "IPv4 address in IPv6 advert", a: with(ok6, func(a *Advert) { a.Addrs = addrs("192.0.2.10") }), src: v6src, dst: GroupV6, want: ErrFamily,
	}, {
		name: "zero address", a: with(ok3, func(a *Advert) { a.Addrs = []netip.Addr{{}} }), src: v4src, dst: GroupV4, want: ErrFamily,
		wantMsg: `marshal VRRP: wrong address family: address 0 is "invalid IP", want an IPv4 address like the destination 224.0.0.18`,
	}, {
		name: "zero source", a: ok3, dst: GroupV4, want: ErrFamily,
		wantMsg: "marshal VRRP: wrong address family: source invalid IP and destination 224.0.0.18, want two IPv4 or two IPv6 addresses",
	}, {
		name: "zero destination", a: ok2, src: v4src, want: ErrFamily,
	}, {
		name: "mixed source and destination", a: ok3, src: v6src, dst: GroupV4, want: ErrFamily,
	}, {
		name: "family checked before version", a: Advert{Version: 9}, src: v4src, dst: GroupV6, want: ErrFamily,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.a
			a.Checksum = 0x5555
			b, err := a.Marshal(tt.src, tt.dst, ChecksumPseudoHeader)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Marshal = %x, %v; want error %v", b, err, tt.want)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("message:\n got %s\nwant %s", err, tt.wantMsg)
			}
			if b != nil {
				t.Errorf("Marshal returned %x with its error", b)
			}
			if a.Checksum != 0x5555 {
				t.Errorf("Marshal changed Checksum to %#04x on error", a.Checksum)
			}
		})
	}
}

func TestMarshalUnmapsEndpoints(t *testing.T) {
	g := handGolden[2] // v3 IPv4 with the pseudo-header
	a := g.advert
	got, err := a.Marshal(netip.AddrFrom16(g.src.As16()), netip.AddrFrom16(g.dst.As16()), g.mode)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(unhex(t, g.hex), got); diff != "" {
		t.Errorf("Marshal from IPv4-mapped endpoints (-want +got):\n%s", diff)
	}
}

func TestVerifyChecksumRejects(t *testing.T) {
	for _, g := range append(handGolden, keepalivedGolden(t)...) {
		b := unhex(t, g.hex)
		v := b[0] >> 4
		// Every single-bit error is detected by the Internet checksum.
		for i := range len(b) * 8 {
			c := append([]byte(nil), b...)
			c[i/8] ^= 0x80 >> (i % 8)
			if VerifyChecksum(c, g.src, g.sumDst(), g.mode) {
				t.Errorf("%s: bit %d flipped: VerifyChecksum = true", g.name, i)
			}
		}
		if v == 3 {
			other := mustAddr("192.0.2.99")
			if g.dst.Is6() {
				other = mustAddr("fe80::99")
			}
			if g.mode == ChecksumPseudoHeader && VerifyChecksum(b, other, g.sumDst(), g.mode) {
				t.Errorf("%s: VerifyChecksum from the wrong source %v = true", g.name, other)
			}
			for _, bad := range [][2]netip.Addr{{}, {g.src, netip.Addr{}}, {netip.Addr{}, g.dst}, {mustAddr("192.0.2.1"), GroupV6}, {mustAddr("fe80::1"), GroupV4}} {
				if VerifyChecksum(b, bad[0], bad[1], g.mode) {
					t.Errorf("%s: VerifyChecksum(%v -> %v) = true, want false", g.name, bad[0], bad[1])
				}
			}
		}
	}
	for n := range HeaderLen {
		if VerifyChecksum(make([]byte, n), mustAddr("192.0.2.1"), GroupV4, ChecksumPseudoHeader) {
			t.Errorf("VerifyChecksum(%d zero bytes) = true", n)
		}
	}
	// Other versions have no checksum rule: a message whose sum over itself
	// is correct is still refused when its version nibble says 4.
	v4 := []byte{0x41, 0x01, 0x64, 0x00, 0x00, 0x64, 0, 0}
	s := ^inet.Fold(inet.Sum(0, v4))
	v4[6], v4[7] = byte(s>>8), byte(s)
	if inet.Fold(inet.Sum(0, v4)) != 0xffff {
		t.Fatalf("test bug: %x does not sum to 0xffff", v4)
	}
	if VerifyChecksum(v4, mustAddr("192.0.2.1"), GroupV4, ChecksumNoPseudoHeader) {
		t.Errorf("VerifyChecksum(version 4) = true, want false")
	}
	// Version 2 ignores the endpoints.
	b := unhex(t, handGolden[0].hex)
	if !VerifyChecksum(b, netip.Addr{}, netip.Addr{}, ChecksumMode(42)) {
		t.Errorf("VerifyChecksum(v2 with no endpoints) = false, want true")
	}
}

func TestVerifyChecksumOddLength(t *testing.T) {
	// Not a valid advert, but the checksum is defined for any length: the
	// last byte is padded with a zero (RFC 1071 section 4.1).
	b := []byte{0x21, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xab}
	// sum 0x2101 + 0xab00 = 0xcc01, inverted 0x33fe
	b[6], b[7] = 0x33, 0xfe
	if !VerifyChecksum(b, netip.Addr{}, netip.Addr{}, ChecksumPseudoHeader) {
		t.Errorf("VerifyChecksum(odd length) = false, want true")
	}
}

func TestPassword(t *testing.T) {
	tests := []struct {
		in   string
		want [8]byte
	}{
		{"", [8]byte{}},
		{"secret", [8]byte{'s', 'e', 'c', 'r', 'e', 't'}},
		{"12345678", [8]byte{'1', '2', '3', '4', '5', '6', '7', '8'}},
		{"123456789abc", [8]byte{'1', '2', '3', '4', '5', '6', '7', '8'}},
		{"héé", [8]byte{'h', 0xc3, 0xa9, 0xc3, 0xa9}},
	}
	for _, tt := range tests {
		if got := Password(tt.in); got != tt.want {
			t.Errorf("Password(%q) = %q, want %q", tt.in, got[:], tt.want[:])
		}
	}
}

func TestIntervals(t *testing.T) {
	tests := []struct {
		version uint8
		d       time.Duration
		want    uint16
		err     error
	}{
		{2, time.Second, 1, nil},
		{2, 1500 * time.Millisecond, 1, nil},
		{2, 255 * time.Second, 255, nil},
		{2, 256 * time.Second, 0, ErrRange},
		{2, -time.Second, 0, ErrRange},
		{3, time.Second, 100, nil},
		{3, 15 * time.Millisecond, 1, nil},
		{3, 40950 * time.Millisecond, 4095, nil},
		{3, 40960 * time.Millisecond, 0, ErrRange},
		{3, 0, 0, nil},
		{1, time.Second, 0, ErrVersion},
	}
	for _, tt := range tests {
		got, err := EncodeInterval(tt.version, tt.d)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("EncodeInterval(%d, %v) = %d, %v; want %d, %v", tt.version, tt.d, got, err, tt.want, tt.err)
		}
		if err == nil {
			a := Advert{Version: tt.version, Interval: got}
			if back := a.AdverInterval(); back > tt.d || tt.d-back >= map[uint8]time.Duration{2: time.Second, 3: 10 * time.Millisecond}[tt.version] {
				t.Errorf("AdverInterval(EncodeInterval(%d, %v)) = %v", tt.version, tt.d, back)
			}
		}
	}
	if d := (&Advert{Version: 5, Interval: 1}).AdverInterval(); d != 0 {
		t.Errorf("AdverInterval(version 5) = %v, want 0", d)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		a    Advert
		want string
	}{{
		a:    handGolden[0].advert,
		want: `VRRPv2, Advertisement, vrid 1, prio 100, authtype simple, intvl 1s, addrs(2): 192.0.2.10,192.0.2.11 auth "vigil", cksum 0xac11`,
	}, {
		a:    handGolden[1].advert,
		want: `VRRPv2, Advertisement, vrid 255, prio 255, authtype none, intvl 255s, addrs(1): 203.0.113.255, cksum 0xa0ff`,
	}, {
		a:    handGolden[4].advert,
		want: `VRRPv3, Advertisement, vrid 1, prio 100, intvl 4095cs, addrs(1): 2001:db8::1, cksum 0x2f25`,
	}, {
		a:    Advert{Version: 2, Type: 3, AuthType: AuthAH},
		want: `VRRPv2, unknown type 3, vrid 0, prio 0, authtype ah, intvl 0s, addrs(0):, cksum 0x0000`,
	}, {
		a:    Advert{Version: 2, Type: 1, AuthType: AuthPass, AuthData: [8]byte{'a', '"', 0xff, '\n'}},
		want: `VRRPv2, Advertisement, vrid 0, prio 0, authtype simple, intvl 0s, addrs(0): auth "a\"\xff\n", cksum 0x0000`,
	}, {
		a:    Advert{Version: 2, Type: 1, AuthType: 9},
		want: `VRRPv2, Advertisement, vrid 0, prio 0, authtype 9, intvl 0s, addrs(0):, cksum 0x0000`,
	}}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("String:\n got %s\nwant %s", got, tt.want)
		}
		if strings.Contains(tt.want, "\n") {
			t.Errorf("String contains a newline: %q", tt.want)
		}
	}
}

func TestFamilyAndMode(t *testing.T) {
	for m, want := range map[ChecksumMode]string{ChecksumPseudoHeader: "pseudo-header", ChecksumNoPseudoHeader: "no-pseudo-header", 7: "ChecksumMode(7)"} {
		if m.String() != want {
			t.Errorf("ChecksumMode(%d).String() = %q, want %q", int(m), m, want)
		}
	}
	if (&Advert{Version: 3}).Len(0) != 0 || (&Advert{Version: 1}).Len(inet.IPv4) != 0 {
		t.Errorf("Len of an invalid family or version is not 0")
	}
}

func TestMarshalIgnoresZones(t *testing.T) {
	g := handGolden[4] // v3 IPv6
	a := g.advert
	a.Addrs = []netip.Addr{a.Addrs[0].WithZone("eth0")}
	got, err := a.Marshal(g.src.WithZone("eth0"), g.dst.WithZone("eth0"), g.mode)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(unhex(t, g.hex), got); diff != "" {
		t.Errorf("Marshal with zones (-want +got):\n%s", diff)
	}
	if !VerifyChecksum(got, g.src.WithZone("eth1"), g.dst, g.mode) {
		t.Errorf("VerifyChecksum with a zoned source = false, want true")
	}
}

// TestHasAddr: HasAddr finds each address of a golden advert where it is,
// and nothing in a message of another family or shorter than its count
// says (FuzzParse checks it against Parse on every input).
func TestHasAddr(t *testing.T) {
	v4 := unhex(t, "31016402 00640000 c0000201 c0000264")
	v6 := unhex(t, "31016401 0fff0000 20010db8 00000000 00000000 00000001")
	for _, tt := range []struct {
		b    []byte
		fam  inet.Family
		addr string
		want bool
	}{
		{v4, inet.IPv4, "192.0.2.1", true},
		{v4, inet.IPv4, "192.0.2.100", true},
		{v4, inet.IPv4, "192.0.2.2", false},
		{v4, inet.IPv4, "::ffff:192.0.2.1", false},
		{v4, inet.IPv6, "192.0.2.1", false},
		{v4[:15], inet.IPv4, "192.0.2.1", false},
		{v6, inet.IPv6, "2001:db8::1", true},
		{v6, inet.IPv6, "2001:db8::2", false},
		{v6, inet.IPv4, "2001:db8::1", false},
		{v6, 0, "2001:db8::1", false},
	} {
		if got := HasAddr(tt.b, tt.fam, netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("HasAddr(%x, %v, %s) = %t, want %t", tt.b, tt.fam, tt.addr, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParseHeader(v4, inet.IPv4); err != nil || !HasAddr(v4, inet.IPv4, netip.MustParseAddr("192.0.2.100")) {
			t.Fatal("ParseHeader or HasAddr failed")
		}
	}); n != 0 {
		t.Errorf("ParseHeader and HasAddr: %v allocations, want 0", n)
	}
}
