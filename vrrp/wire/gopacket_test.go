package wire

import (
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestGopacketDecodesMarshal checks Marshal's version 2 output with an
// independent decoder: gopacket's VRRPv2 layer, reached through an IPv4
// header that gopacket itself serializes (protocol 112, TTL 255). gopacket
// has no VRRPv3 layer; the captured keepalived adverts cover version 3.
func TestGopacketDecodesMarshal(t *testing.T) {
	tests := []Advert{
		handGolden[0].advert,
		handGolden[1].advert,
		{Version: 2, Type: 1, VRID: 42, Priority: 254, AuthType: AuthPass, Interval: 3,
			Addrs: addrs("198.51.100.1", "198.51.100.2", "203.0.113.7"), AuthData: Password("longpassword")},
	}
	for i, a := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Log(a)
			src := mustAddr("192.0.2.1")
			payload, err := a.Marshal(src, GroupV4, ChecksumPseudoHeader)
			if err != nil {
				t.Fatal(err)
			}
			ip := &layers.IPv4{
				Version: 4, TTL: 255, Protocol: layers.IPProtocolVRRP,
				SrcIP: net.IP(src.AsSlice()), DstIP: net.IP(GroupV4.AsSlice()),
			}
			buf := gopacket.NewSerializeBuffer()
			opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
			if err := gopacket.SerializeLayers(buf, opts, ip, gopacket.Payload(payload)); err != nil {
				t.Fatal(err)
			}
			pkt := gopacket.NewPacket(buf.Bytes(), layers.LayerTypeIPv4, gopacket.Default)
			if el := pkt.ErrorLayer(); el != nil {
				t.Fatalf("gopacket: %v", el.Error())
			}
			l, ok := pkt.Layer(layers.LayerTypeVRRP).(*layers.VRRPv2)
			if !ok {
				t.Fatalf("gopacket found no VRRPv2 layer in %v", pkt)
			}
			type fields struct {
				Version, Type, VRID, Priority, Count, AuthType, AdverInt uint8
				Checksum                                                 uint16
				Addrs                                                    []netip.Addr
			}
			var got fields = fields{
				Version: l.Version, Type: uint8(l.Type), VRID: l.VirtualRtrID, Priority: l.Priority,
				Count: l.CountIPAddr, AuthType: uint8(l.AuthType), AdverInt: l.AdverInt, Checksum: l.Checksum,
			}
			for _, ip := range l.IPAddress {
				addr, ok := netip.AddrFromSlice(ip)
				if !ok {
					t.Fatalf("gopacket address %v", ip)
				}
				got.Addrs = append(got.Addrs, addr)
			}
			want := fields{
				Version: a.Version, Type: a.Type, VRID: a.VRID, Priority: a.Priority, Count: uint8(len(a.Addrs)),
				AuthType: a.AuthType, AdverInt: uint8(a.Interval), Checksum: a.Checksum, Addrs: a.Addrs,
			}
			if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
				t.Errorf("gopacket decode (-want +got):\n%s", diff)
			}
			// gopacket leaves the authentication data undecoded; it is the
			// last 8 bytes of the layer.
			c := l.LayerContents()
			if diff := cmp.Diff(a.AuthData[:], c[len(c)-AuthDataLen:]); diff != "" {
				t.Errorf("auth data (-want +got):\n%s", diff)
			}
		})
	}
}
