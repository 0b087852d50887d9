package doctor

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

var (
	macDir = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	macRS  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}
)

// The probe's SYN, checked by an independent decoder: addresses, ports,
// flags and both checksums.
func TestSynFrame(t *testing.T) {
	src, dst := netip.MustParseAddr("198.51.100.250"), netip.MustParseAddr("198.51.100.100")
	b, err := synFrame(macRS, macDir, src, dst, 40000, 80, 0x01020304)
	if err != nil {
		t.Fatal(err)
	}
	pkt := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if eth == nil || ip == nil || tcp == nil {
		t.Fatalf("not Ethernet/IPv4/TCP: %v", pkt)
	}
	if !slices.Equal(eth.DstMAC, macRS) || !slices.Equal(eth.SrcMAC, macDir) {
		t.Errorf("MACs %s -> %s", eth.SrcMAC, eth.DstMAC)
	}
	if !ip.SrcIP.Equal(src.AsSlice()) || !ip.DstIP.Equal(dst.AsSlice()) || ip.TTL != 64 || ip.Protocol != layers.IPProtocolTCP {
		t.Errorf("IP %s -> %s ttl %d proto %d", ip.SrcIP, ip.DstIP, ip.TTL, ip.Protocol)
	}
	if !tcp.SYN || tcp.ACK || tcp.RST || tcp.SrcPort != 40000 || tcp.DstPort != 80 || tcp.Seq != 0x01020304 {
		t.Errorf("TCP %+v", tcp)
	}
	// Recompute both checksums with gopacket and compare.
	ipSum, tcpSum := ip.Checksum, tcp.Checksum
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ip, tcp); err != nil {
		t.Fatal(err)
	}
	again := gopacket.NewPacket(buf.Bytes(), layers.LayerTypeIPv4, gopacket.Default)
	if got := again.Layer(layers.LayerTypeIPv4).(*layers.IPv4).Checksum; got != ipSum {
		t.Errorf("IP checksum %#04x, gopacket computes %#04x", ipSum, got)
	}
	if got := again.Layer(layers.LayerTypeTCP).(*layers.TCP).Checksum; got != tcpSum {
		t.Errorf("TCP checksum %#04x, gopacket computes %#04x", tcpSum, got)
	}
	if _, err := synFrame(macRS, macDir, netip.MustParseAddr("2001:db8::1"), dst, 1, 2, 3); err == nil {
		t.Error("an IPv6 source was accepted")
	}
}

// parseTCP reads a SYN-ACK a real server would send, built by gopacket.
func TestParseTCP(t *testing.T) {
	eth := &layers.Ethernet{SrcMAC: macRS, DstMAC: macDir, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP,
		SrcIP: net.IP{198, 51, 100, 100}, DstIP: net.IP{198, 51, 100, 1}}
	tcp := &layers.TCP{SrcPort: 80, DstPort: 40000, SYN: true, ACK: true, Window: 100}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, eth, ip, tcp); err != nil {
		t.Fatal(err)
	}
	r, ok := parseTCP(buf.Bytes())
	if !ok || r.src != netip.MustParseAddrPort("198.51.100.100:80") || r.dst != netip.MustParseAddrPort("198.51.100.1:40000") || !r.syn || !r.ack || r.rst || !slices.Equal(r.ethSrc, macRS) {
		t.Fatalf("parseTCP = %+v, %v", r, ok)
	}
	if r.String() != "SYN-ACK 198.51.100.100:80 -> 198.51.100.1:40000 from 02:00:00:00:00:11" {
		t.Errorf("String() = %q", r.String())
	}
	for _, bad := range [][]byte{nil, buf.Bytes()[:40], append([]byte{}, make([]byte, 60)...)} {
		if _, ok := parseTCP(bad); ok {
			t.Errorf("parseTCP accepted %x", bad)
		}
	}
}

func TestFreeCandidates(t *testing.T) {
	taken := func(a netip.Addr) bool { return a == netip.MustParseAddr("198.51.100.253") }
	got := freeCandidates(netip.MustParsePrefix("198.51.100.1/24"), taken, 3)
	want := []netip.Addr{netip.MustParseAddr("198.51.100.254"), netip.MustParseAddr("198.51.100.252"), netip.MustParseAddr("198.51.100.251")}
	if !slices.Equal(got, want) {
		t.Errorf("freeCandidates = %v, want %v", got, want)
	}
	if got := freeCandidates(netip.MustParsePrefix("192.0.2.0/30"), func(netip.Addr) bool { return false }, 5); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1")}) {
		t.Errorf("/30: %v", got)
	}
	if got := freeCandidates(netip.MustParsePrefix("192.0.2.0/31"), func(netip.Addr) bool { return false }, 5); got != nil {
		t.Errorf("/31: %v, want none", got)
	}
}

func TestCheckDRPath(t *testing.T) {
	base := DRProbe{Service: "198.51.100.100:80", Real: netip.MustParseAddr("198.51.100.11"), RealMAC: macRS.String(), Interface: "eth0",
		Own: netip.MustParseAddr("198.51.100.1"), Spoofed: netip.MustParseAddr("198.51.100.254"), Sent: 3, Wait: "1s"}
	tests := []struct {
		name    string
		mod     func(p *DRProbe)
		want    string
		summary string
	}{
		{"both answered", func(p *DRProbe) { p.ControlAnswered, p.SpoofAnswered, p.SpoofSeen = true, true, "ARP" }, "VD705/ok", "reach real server 198.51.100.11"},
		{"spoofed dropped", func(p *DRProbe) { p.ControlAnswered, p.ControlSeen = true, "SYN-ACK" }, "VD705/crit", "anti-spoofing filter"},
		{"nothing answers", func(p *DRProbe) {}, "VD706/warn", "even from this host's own address"},
		{"probe failed", func(p *DRProbe) { p.Err = "no free address" }, "VD705/info", "could not be probed: no free address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.mod(&p)
			fs := checkDRPath(&Input{DRProbes: []DRProbe{p}})
			if got := codes(fs); len(got) != 1 || got[0] != tt.want || !strings.Contains(fs[0].Summary, tt.summary) {
				t.Errorf("got %v %+v, want %s saying %q", got, fs, tt.want, tt.summary)
			}
		})
	}
}
