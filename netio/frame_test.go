package netio

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// unhex decodes hex written with spaces, newlines and | separators.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "\n", "", "\t", "", "|", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	vmac4 = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x33} // IPv4 VMAC of VRID 51 (RFC 5798 section 7.3)
	vmac6 = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, 0x33} // IPv6 VMAC of VRID 51
	vip4  = netip.MustParseAddr("192.0.2.100")
	vip6  = netip.MustParseAddr("2001:db8::100")
	ll6   = netip.MustParseAddr("fe80::200:5eff:fe00:233")
)

// The golden frames, field by field from the RFCs.
const (
	// RFC 826 packet, RFC 5227 section 3 announcement: request, SPA = TPA =
	// the address, THA zero, broadcast; padded to 60 bytes.
	goldenGARPRequest = `ffffffffffff | 00005e000133 | 0806
		0001 | 0800 | 06 | 04 | 0001
		00005e000133 | c0000264
		000000000000 | c0000264
		000000000000000000000000000000000000`
	// Reply form: opcode 2, THA = SHA (RFC 2002 section 4.6).
	goldenGARPReply = `ffffffffffff | 00005e000133 | 0806
		0001 | 0800 | 06 | 04 | 0002
		00005e000133 | c0000264
		00005e000133 | c0000264
		000000000000000000000000000000000000`
	// RFC 4861 section 4.4 with a Target Link-Layer Address option
	// (section 4.6.1), from fe80::200:5eff:fe00:233 to ff02::1, hop limit
	// 255, payload length 32, next header 58.
	//
	// Checksum (RFC 4443 section 2.3), 16-bit words:
	//   pseudo-header fe80+0200+5eff+fe00+0233 + ff02+0001 + 0020 + 003a
	//   message       8800+0000 + 2000+0000 + 2001+0db8+0100 + 0201+0000+5e00+0233
	//   sum 0x497fc, folded 0x97fc+0x4 = 0x9800, complement 0x67ff.
	goldenNA = `333300000001 | 00005e000233 | 86dd
		60000000 | 0020 | 3a | ff
		fe800000000000000200 5efffe000233
		ff020000000000000000000000000001
		88 | 00 | 67ff | 20000000
		20010db8000000000000000000000100
		02 | 01 | 00005e000233`
)

func TestGratuitousARPGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reply  bool
		golden string
	}{
		{"request", false, goldenGARPRequest},
		{"reply", true, goldenGARPReply},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := GratuitousARP(vmac4, vip4, tc.reply)
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, tc.golden)
			if !bytes.Equal(got, want) {
				t.Fatalf("GratuitousARP:\n got % x\nwant % x", got, want)
			}

			// An independent decoder agrees.
			p := gopacket.NewPacket(got, layers.LayerTypeEthernet, gopacket.Default)
			if el := p.ErrorLayer(); el != nil {
				t.Fatalf("gopacket: %v", el.Error())
			}
			eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			arp, _ := p.Layer(layers.LayerTypeARP).(*layers.ARP)
			if arp == nil {
				t.Fatal("gopacket finds no ARP layer")
			}
			op := uint16(layers.ARPRequest)
			tha := []byte{0, 0, 0, 0, 0, 0}
			if tc.reply {
				op, tha = layers.ARPReply, vmac4
			}
			wantARP := layers.ARP{
				AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
				HwAddressSize: 6, ProtAddressSize: 4, Operation: op,
				SourceHwAddress: vmac4, SourceProtAddress: vip4.AsSlice(),
				DstHwAddress: tha, DstProtAddress: vip4.AsSlice(),
			}
			gotARP := *arp
			gotARP.BaseLayer = layers.BaseLayer{}
			if diff := cmp.Diff(wantARP, gotARP); diff != "" {
				t.Errorf("gopacket ARP (-want +got):\n%s", diff)
			}
			if eth.EthernetType != layers.EthernetTypeARP || !bytes.Equal(eth.DstMAC, broadcast[:]) || !bytes.Equal(eth.SrcMAC, vmac4) {
				t.Errorf("gopacket Ethernet: %v -> %v type %v", eth.SrcMAC, eth.DstMAC, eth.EthernetType)
			}

			// And so does ours.
			a, err := ParseARP(got)
			if err != nil {
				t.Fatal(err)
			}
			if !a.Gratuitous() || a.Op != op || a.SenderIP != vip4 || a.SenderMAC.String() != vmac4.String() {
				t.Errorf("ParseARP = %+v", a)
			}
		})
	}
}

func TestUnsolicitedNAGolden(t *testing.T) {
	got, err := UnsolicitedNA(vmac6, vip6, ll6, false)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, goldenNA)
	if !bytes.Equal(got, want) {
		t.Fatalf("UnsolicitedNA:\n got % x\nwant % x", got, want)
	}

	for _, router := range []bool{false, true} {
		b, err := UnsolicitedNA(vmac6, vip6, ll6, router)
		if err != nil {
			t.Fatal(err)
		}
		p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("gopacket: %v", el.Error())
		}
		ip6 := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		icmp := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
		na, _ := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
		if na == nil {
			t.Fatal("gopacket finds no Neighbor Advertisement")
		}
		if ip6.HopLimit != 255 || ip6.NextHeader != layers.IPProtocolICMPv6 || ip6.SrcIP.String() != ll6.String() || ip6.DstIP.String() != "ff02::1" {
			t.Errorf("gopacket IPv6: %v -> %v hop limit %d next %v", ip6.SrcIP, ip6.DstIP, ip6.HopLimit, ip6.NextHeader)
		}
		if icmp.TypeCode != layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborAdvertisement, 0) {
			t.Errorf("gopacket ICMPv6 type %v", icmp.TypeCode)
		}
		if err := icmp.SetNetworkLayerForChecksum(ip6); err != nil {
			t.Fatal(err)
		}
		if err, res := icmp.VerifyChecksum(); err != nil || !res.Valid {
			t.Errorf("gopacket checksum: %v %+v", err, res)
		}
		if na.Router() != router || na.Solicited() || !na.Override() || na.TargetAddress.String() != vip6.String() {
			t.Errorf("gopacket NA: R=%v S=%v O=%v target %v", na.Router(), na.Solicited(), na.Override(), na.TargetAddress)
		}
		if len(na.Options) != 1 || na.Options[0].Type != layers.ICMPv6OptTargetAddress || !bytes.Equal(na.Options[0].Data, vmac6) {
			t.Errorf("gopacket NA options: %v", na.Options)
		}

		n, err := ParseNA(b)
		if err != nil {
			t.Fatal(err)
		}
		wantNA := NA{
			EthDst: allNodesEth[:], EthSrc: vmac6, Src: ll6, Dst: allNodes(), HopLimit: 255,
			Router: router, Override: true, Target: vip6, TargetLL: vmac6, Checksum: n.Checksum,
		}
		if diff := cmp.Diff(wantNA, n, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("ParseNA (-want +got):\n%s", diff)
		}
	}
}

func TestBuilderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"arp short mac", func() error { _, err := GratuitousARP(vmac4[:5], vip4, false); return err }()},
		{"arp ipv6", func() error { _, err := GratuitousARP(vmac4, vip6, false); return err }()},
		{"arp zero", func() error { _, err := GratuitousARP(vmac4, netip.Addr{}, false); return err }()},
		{"na ipv4 target", func() error { _, err := UnsolicitedNA(vmac6, vip4, ll6, false); return err }()},
		{"na zero source", func() error { _, err := UnsolicitedNA(vmac6, vip6, netip.Addr{}, false); return err }()},
		{"na multicast target", func() error { _, err := UnsolicitedNA(vmac6, allNodes(), ll6, false); return err }()},
		{"na long mac", func() error { _, err := UnsolicitedNA(append(vmac6, 0, 0), vip6, ll6, false); return err }()},
	} {
		if !errors.Is(tc.err, ErrMalformed) {
			t.Errorf("%s: error %v, want ErrMalformed", tc.name, tc.err)
		}
	}
}

// TestParseErrors holds hand-made bad frames, and every crasher the fuzzers
// ever found, by name.
func TestParseErrors(t *testing.T) {
	garp := unhex(t, goldenGARPRequest)
	na := unhex(t, goldenNA)
	mod := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	for _, tc := range []struct {
		name  string
		frame []byte
		na    bool
		want  error
	}{
		{"arp empty", nil, false, io.ErrUnexpectedEOF},
		{"arp ethernet only", garp[:14], false, io.ErrUnexpectedEOF},
		{"arp body cut", garp[:41], false, io.ErrUnexpectedEOF},
		{"arp ipv6 ethertype", na, false, ErrNotARP},
		{"arp token ring", mod(garp, func(b []byte) []byte { b[15] = 6; return b }), false, ErrNotARP},
		{"arp ipv6 protocol", mod(garp, func(b []byte) []byte { b[16], b[17] = 0x86, 0xdd; return b }), false, ErrNotARP},
		{"arp plen 16", mod(garp, func(b []byte) []byte { b[19] = 16; return b }), false, ErrNotARP},
		{"na empty", nil, true, io.ErrUnexpectedEOF},
		{"na arp", garp, true, ErrNotNA},
		{"na ipv6 header cut", na[:50], true, io.ErrUnexpectedEOF},
		{"na payload cut", na[:len(na)-1], true, io.ErrUnexpectedEOF},
		{"na ipv4 version", mod(na, func(b []byte) []byte { b[14] = 0x45; return b }), true, ErrMalformed},
		{"na udp", mod(na, func(b []byte) []byte { b[20] = 17; return b }), true, ErrNotNA},
		{"na solicitation", mod(na, func(b []byte) []byte { b[54] = 135; return b }), true, ErrNotNA},
		{"na code 1", mod(na, func(b []byte) []byte { b[55] = 1; return b }), true, ErrMalformed},
		{"na checksum", mod(na, func(b []byte) []byte { b[57]++; return b }), true, ErrChecksum},
		{"na message 23 bytes", mod(na, func(b []byte) []byte { b[19] = 23; return b }), true, io.ErrUnexpectedEOF},
		{"na zero payload", mod(na, func(b []byte) []byte { b[19] = 0; return b }), true, io.ErrUnexpectedEOF},
		{"na option length zero", mod(na, func(b []byte) []byte { b[79] = 0; return b }), true, ErrMalformed},
		{"na option longer than message", mod(na, func(b []byte) []byte { b[79] = 2; return b }), true, io.ErrUnexpectedEOF},
		{"na odd option tail", mod(na, func(b []byte) []byte { b[19] = 25; return append(b[:79], 0) }), true, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.na {
				_, err = ParseNA(tc.frame)
			} else {
				_, err = ParseARP(tc.frame)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseIgnoresPadding(t *testing.T) {
	na := append(unhex(t, goldenNA), 0, 0, 0, 0)
	if _, err := ParseNA(na); err != nil {
		t.Errorf("NA with trailing padding: %v", err)
	}
	garp := unhex(t, goldenGARPRequest)
	if _, err := ParseARP(garp[:42]); err != nil {
		t.Errorf("unpadded ARP: %v", err)
	}
}

func addrCmp() cmp.Option { return cmp.Comparer(func(a, b netip.Addr) bool { return a == b }) }

func FuzzParseARP(f *testing.F) {
	for _, s := range []string{goldenGARPRequest, goldenGARPReply, goldenNA} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out := reparse(t, b, ParseARP, func(*ARP) {})
		if out != nil && !bytes.Equal(out[:42], b[:42]) {
			t.Fatalf("round trip changed the bytes:\n in % x\nout % x", b[:42], out[:42])
		}
	})
}

func FuzzParseNA(f *testing.F) {
	for _, s := range []string{goldenNA, goldenGARPRequest} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Marshal keeps only the target link-layer option and recomputes
		// the checksum, so compare all but the checksum.
		reparse(t, b, ParseNA, func(n *NA) { n.Checksum = 0 })
	})
}

// reparse checks that a frame parse accepts marshals and parses back to
// the same value, once norm has cleared what marshalling may change in
// both; it returns the marshalled frame, or nil if parse refused b.
func reparse[T any, P interface {
	*T
	MarshalBinary() ([]byte, error)
}](t *testing.T, b []byte, parse func([]byte) (T, error), norm func(P)) []byte {
	t.Helper()
	v, err := parse(b)
	if err != nil {
		return nil
	}
	out, err := P(&v).MarshalBinary()
	if err != nil {
		t.Fatalf("re-marshal %+v: %v", v, err)
	}
	v2, err := parse(out)
	if err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	norm(&v)
	norm(&v2)
	if diff := cmp.Diff(v, v2, addrCmp()); diff != "" {
		t.Fatalf("round trip (-first +second):\n%s", diff)
	}
	return out
}
