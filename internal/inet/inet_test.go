package inet

import (
	"net/netip"
	"testing"
)

func TestFamily(t *testing.T) {
	for _, tt := range []struct {
		f    Family
		s    string
		alen int
		ok   bool
	}{{IPv4, "IPv4", 4, true}, {IPv6, "IPv6", 16, true}, {0, "Family(0)", 0, false}, {5, "Family(5)", 0, false}} {
		if tt.f.String() != tt.s || tt.f.AddrLen() != tt.alen || tt.f.Valid() != tt.ok {
			t.Errorf("Family %d: %q %d %v, want %q %d %v", uint8(tt.f), tt.f, tt.f.AddrLen(), tt.f.Valid(), tt.s, tt.alen, tt.ok)
		}
	}
	for a, want := range map[netip.Addr]Family{
		{}: 0, netip.MustParseAddr("192.0.2.1"): IPv4, netip.MustParseAddr("::ffff:192.0.2.1"): IPv4,
		netip.MustParseAddr("2001:db8::1"): IPv6, netip.MustParseAddr("fe80::1%eth0"): IPv6,
	} {
		if got := Of(a); got != want {
			t.Errorf("Of(%v) = %v, want %v", a, got, want)
		}
	}
}

// TestChecksum: RFC 1071 section 3's worked example, and a message carrying
// its own checksum folds to 0xffff over a pseudo-header of either family.
func TestChecksum(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if s := Sum(0, b); s != 0x2ddf0 || Fold(s) != 0xddf2 {
		t.Errorf("RFC 1071 example: sum %#x fold %#x, want 0x2ddf0 0xddf2", s, Fold(s))
	}
	if Sum(0, []byte{0xab}) != 0xab00 {
		t.Error("an odd last byte is not padded on the right")
	}
	for _, p := range [][2]string{{"192.0.2.1", "224.0.0.18"}, {"fe80::1", "ff02::12"}} {
		src, dst := netip.MustParseAddr(p[0]), netip.MustParseAddr(p[1])
		m := []byte{0x31, 0x01, 0x64, 0x01, 0x00, 0x64, 0x00, 0x00, 0xc0, 0x00, 0x02, 0x01, 0x07}
		c := ^Fold(Sum(PseudoHeaderSum(0, src, dst, 112, len(m)), m))
		m[6], m[7] = byte(c>>8), byte(c)
		if got := Fold(Sum(PseudoHeaderSum(0, src, dst, 112, len(m)), m)); got != 0xffff {
			t.Errorf("%v -> %v: checksummed message folds to %#x, want 0xffff", src, dst, got)
		}
	}
}
