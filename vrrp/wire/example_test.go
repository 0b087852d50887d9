package wire_test

import (
	"fmt"
	"net/netip"

	"vigil/vrrp/wire"
)

func ExampleAdvert_Marshal() {
	a := wire.Advert{
		Version:  3,
		Type:     wire.TypeAdvertisement,
		VRID:     51,
		Priority: 150,
		Interval: 100,
		Addrs:    []netip.Addr{netip.MustParseAddr("192.0.2.100")},
	}
	b, err := a.Marshal(netip.MustParseAddr("192.0.2.1"), wire.GroupV4, wire.ChecksumPseudoHeader)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", b)
	got, err := wire.Parse(b, wire.IPv4)
	fmt.Println(got, err)
	fmt.Println(wire.VerifyChecksum(b, netip.MustParseAddr("192.0.2.1"), wire.GroupV4, wire.ChecksumPseudoHeader))
	// Output:
	// 31 33 96 01 00 64 d3 71 c0 00 02 64
	// VRRPv3, Advertisement, vrid 51, prio 150, intvl 100cs, addrs(1): 192.0.2.100, cksum 0xd371 <nil>
	// true
}
