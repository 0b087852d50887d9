package drpath

import (
	"net"
	"net/netip"
	"slices"
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
func TestSYN(t *testing.T) {
	src, dst := netip.MustParseAddr("198.51.100.250"), netip.MustParseAddr("198.51.100.100")
	b, err := SYN(macRS, macDir, src, dst, 40000, 80, 0x01020304)
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
	if _, err := SYN(macRS, macDir, netip.MustParseAddr("2001:db8::1"), dst, 1, 2, 3); err == nil {
		t.Error("an IPv6 source was accepted")
	}
}

// ParseTCP reads a SYN-ACK a real server would send, built by gopacket.
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
	r, ok := ParseTCP(buf.Bytes())
	if !ok || r.Src != netip.MustParseAddrPort("198.51.100.100:80") || r.Dst != netip.MustParseAddrPort("198.51.100.1:40000") || !r.SYN || !r.ACK || r.RST || !slices.Equal(r.EthSrc, macRS) {
		t.Fatalf("ParseTCP = %+v, %v", r, ok)
	}
	if r.String() != "SYN-ACK 198.51.100.100:80 -> 198.51.100.1:40000 from 02:00:00:00:00:11" {
		t.Errorf("String() = %q", r.String())
	}
	for _, bad := range [][]byte{nil, buf.Bytes()[:40], make([]byte, 60)} {
		if _, ok := ParseTCP(bad); ok {
			t.Errorf("ParseTCP accepted %x", bad)
		}
	}
}

func TestFreeCandidates(t *testing.T) {
	taken := func(a netip.Addr) bool { return a == netip.MustParseAddr("198.51.100.253") }
	got := FreeCandidates(netip.MustParsePrefix("198.51.100.1/24"), taken, 3)
	want := []netip.Addr{netip.MustParseAddr("198.51.100.254"), netip.MustParseAddr("198.51.100.252"), netip.MustParseAddr("198.51.100.251")}
	if !slices.Equal(got, want) {
		t.Errorf("FreeCandidates = %v, want %v", got, want)
	}
	if got := FreeCandidates(netip.MustParsePrefix("192.0.2.0/30"), func(netip.Addr) bool { return false }, 5); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1")}) {
		t.Errorf("/30: %v", got)
	}
	if got := FreeCandidates(netip.MustParsePrefix("192.0.2.0/31"), func(netip.Addr) bool { return false }, 5); got != nil {
		t.Errorf("/31: %v, want none", got)
	}
}
