package wire_test

import (
	"encoding/hex"
	"fmt"
	"net/netip"

	"vigil/internal/inet"
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
	got, err := wire.Parse(b, inet.IPv4)
	fmt.Println(got, err)
	fmt.Println(wire.VerifyChecksum(b, netip.MustParseAddr("192.0.2.1"), wire.GroupV4, wire.ChecksumPseudoHeader))
	// Output:
	// 31 33 96 01 00 64 d3 71 c0 00 02 64
	// VRRPv3, Advertisement, vrid 51, prio 150, intvl 100cs, addrs(1): 192.0.2.100, cksum 0xd371 <nil>
	// true
}

// ExampleParse receives a version 2 advert that keepalived 2.2.7 sent
// (auth_type PASS, auth_pass secret) and applies the receive checks after
// Parse in keepalived's order: auth, interval, type, checksum.
func ExampleParse() {
	b, _ := hex.DecodeString("21339602010186b2c0000264c00002657365637265740000")
	src := netip.MustParseAddr("192.0.2.1")

	a, err := wire.Parse(b, inet.IPv4)
	if err != nil {
		fmt.Println("drop:", err)
		return
	}
	switch {
	case a.AuthType != wire.AuthPass || a.AuthData != wire.Password("secret"):
		fmt.Println("drop: authentication")
	case a.Interval != 1:
		fmt.Println("drop: advert interval")
	case a.Type != wire.TypeAdvertisement:
		fmt.Println("drop: type")
	case !wire.VerifyChecksum(b, src, wire.GroupV4, wire.ChecksumPseudoHeader):
		fmt.Println("drop: checksum")
	default:
		fmt.Println(a)
	}
	// Output:
	// VRRPv2, Advertisement, vrid 51, prio 150, authtype simple, intvl 1s, addrs(2): 192.0.2.100,192.0.2.101 auth "secret", cksum 0x86b2
}
