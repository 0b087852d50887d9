package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"
	"vigil/internal/inet"

	"github.com/google/go-cmp/cmp"
)

// fuzzEndpoints are the source and destination a fuzzed message is taken to
// travel between.
func fuzzEndpoints(v6 bool) (inet.Family, netip.Addr, netip.Addr) {
	if v6 {
		return inet.IPv6, mustAddr("fe80::1"), GroupV6
	}
	return inet.IPv4, mustAddr("192.0.2.1"), GroupV4
}

func fuzzSeeds(f *testing.F, add func(b []byte, v6 bool)) {
	for _, g := range append(handGolden, keepalivedGolden(f)...) {
		add(unhex(f, g.hex), g.dst.Is6())
	}
	add(nil, false)
	add([]byte{0x31, 0x01, 0x64, 0x01, 0xf0, 0x64, 0, 0, 192, 0, 2, 1}, false)
	add([]byte{0x21, 0x01, 0x64, 0xff, 1, 1, 0, 0}, false)
}

// FuzzParse checks that Parse never panics, fails only with its sentinel
// errors, and that whatever it accepts survives Marshal and Parse again
// unchanged (but for the checksum, recomputed, and the v3 reserved bits,
// cleared), with a checksum that verifies.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f, func(b []byte, v6 bool) { f.Add(b, v6, false) })
	f.Fuzz(func(t *testing.T, b []byte, v6, noPseudo bool) {
		fam, src, dst := fuzzEndpoints(v6)
		mode := ChecksumPseudoHeader
		if noPseudo {
			mode = ChecksumNoPseudoHeader
		}
		inputOK := VerifyChecksum(b, src, dst, mode)

		a, err := Parse(b, fam)
		h, herr := ParseHeader(b, fam)
		if fmt.Sprint(herr) != fmt.Sprint(err) {
			t.Fatalf("ParseHeader: error %v, Parse: %v", herr, err)
		}
		if h.Addrs != nil {
			t.Fatalf("ParseHeader returned addresses %v", h.Addrs)
		}
		if h.Addrs = a.Addrs; !cmp.Equal(a, h, cmpAddr) {
			t.Fatalf("ParseHeader = %v, Parse = %v", h, a)
		}
		for _, addr := range a.Addrs {
			if !HasAddr(b, fam, addr) {
				t.Fatalf("HasAddr(%v) = false, Parse found it in %v", addr, a.Addrs)
			}
			// The same address with its last bit flipped, unless
			// the advert has that one too.
			s := addr.AsSlice()
			s[len(s)-1] ^= 1
			other, _ := netip.AddrFromSlice(s)
			if HasAddr(b, fam, other) != slices.Contains(a.Addrs, other) {
				t.Fatalf("HasAddr(%v) = %t, Parse found %v", other, !slices.Contains(a.Addrs, other), a.Addrs)
			}
		}
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrAddrCount) {
				t.Fatalf("Parse: error %v wraps no sentinel", err)
			}
			if errors.Is(err, ErrTruncated) != errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("Parse: error %v: ErrTruncated and io.ErrUnexpectedEOF disagree", err)
			}
			if diff := cmp.Diff(Advert{}, a, cmpAddr); diff != "" {
				t.Fatalf("Parse returned a non-zero Advert with %v (-want +got):\n%s", err, diff)
			}
			return
		}
		_ = a.String()
		if a.Len(fam) != len(b) {
			t.Fatalf("Parse accepted %d bytes, Len says %d", len(b), a.Len(fam))
		}

		re := a
		out, err := re.Marshal(src, dst, mode)
		if err != nil {
			t.Fatalf("Marshal of parsed %v: %v", a, err)
		}
		if !VerifyChecksum(out, src, dst, mode) {
			t.Fatalf("Marshal wrote a checksum that does not verify: %x", out)
		}
		want := bytes.Clone(b)
		want[6], want[7] = out[6], out[7]
		if a.Version == 3 {
			want[4] &= 0x0f
		}
		if diff := cmp.Diff(want, out); diff != "" {
			t.Fatalf("Marshal(Parse(b)) differs from b beyond checksum and reserved bits (-want +got):\n%s", diff)
		}
		if inputOK && b[0]>>4 == 3 && b[4]&0xf0 == 0 && !bytes.Equal(b, out) {
			t.Fatalf("b verified, yet Marshal(Parse(b)) = %x, want %x", out, b)
		}
		if inputOK && a.Version == 2 && !bytes.Equal(b, out) {
			t.Fatalf("b verified, yet Marshal(Parse(b)) = %x, want %x", out, b)
		}

		again, err := Parse(out, fam)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(b))): %v", err)
		}
		a.Checksum = re.Checksum
		if diff := cmp.Diff(a, again, cmpAddr); diff != "" {
			t.Fatalf("Parse(Marshal(Parse(b))) (-want +got):\n%s", diff)
		}
	})
}

// FuzzMarshal builds adverts from arbitrary fields: Marshal either refuses
// with a sentinel error or writes what Parse reads back as the same advert.
func FuzzMarshal(f *testing.F) {
	f.Add(uint8(2), uint8(1), uint8(1), uint8(100), uint8(1), uint16(1), []byte{192, 0, 2, 10}, []byte("secret"), false)
	f.Add(uint8(3), uint8(1), uint8(1), uint8(100), uint8(0), uint16(100), []byte{192, 0, 2, 10, 192, 0, 2, 11}, []byte(nil), false)
	f.Add(uint8(3), uint8(1), uint8(1), uint8(100), uint8(0), uint16(4095), bytes.Repeat([]byte{0x20}, 32), []byte(nil), true)
	f.Add(uint8(3), uint8(17), uint8(1), uint8(100), uint8(1), uint16(4096), []byte{1}, []byte("x"), true)
	f.Fuzz(func(t *testing.T, version, typ, vrid, prio, authType uint8, interval uint16, raw, auth []byte, v6 bool) {
		fam, src, dst := fuzzEndpoints(v6)
		a := Advert{Version: version, Type: typ, VRID: vrid, Priority: prio, AuthType: authType, Interval: interval}
		copy(a.AuthData[:], auth)
		// Addresses are cut from raw, 4 or 16 bytes each; a leftover that is
		// not a whole address of the family becomes an address of the other.
		alen := fam.AddrLen()
		for len(raw) >= alen {
			addr, _ := netip.AddrFromSlice(raw[:alen])
			a.Addrs = append(a.Addrs, addr)
			raw = raw[alen:]
		}
		if len(raw) >= 4 {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(raw[:4])))
		}
		_ = a.String()
		orig := a
		b, err := a.Marshal(src, dst, ChecksumPseudoHeader)
		if err != nil {
			if !errors.Is(err, ErrVersion) && !errors.Is(err, ErrRange) && !errors.Is(err, ErrFamily) {
				t.Fatalf("Marshal: error %v wraps no sentinel", err)
			}
			if a.Checksum != orig.Checksum {
				t.Fatalf("Marshal changed Checksum on error")
			}
			return
		}
		if !VerifyChecksum(b, src, dst, ChecksumPseudoHeader) {
			t.Fatalf("checksum does not verify: %x", b)
		}
		got, err := Parse(b, fam)
		if err != nil {
			t.Fatalf("Parse(Marshal(%v)): %v", orig, err)
		}
		if diff := cmp.Diff(a, got, cmpAddr); diff != "" {
			t.Fatalf("Parse(Marshal(a)) (-want +got):\n%s", diff)
		}
	})
}

// FuzzVerifyChecksum checks that VerifyChecksum never panics, whatever the
// message, endpoints and mode.
func FuzzVerifyChecksum(f *testing.F) {
	for _, g := range append(handGolden, keepalivedGolden(f)...) {
		f.Add(unhex(f, g.hex), g.src.AsSlice(), g.sumDst().AsSlice(), int(g.mode))
	}
	f.Fuzz(func(t *testing.T, b, src, dst []byte, mode int) {
		s, _ := netip.AddrFromSlice(src)
		d, _ := netip.AddrFromSlice(dst)
		ok := VerifyChecksum(b, s, d, ChecksumMode(mode))
		if ok && (len(b) < HeaderLen || (b[0]>>4 != 2 && b[0]>>4 != 3)) {
			t.Fatalf("VerifyChecksum accepted %x", b)
		}
	})
}
