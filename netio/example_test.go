package netio_test

import (
	"fmt"
	"net"
	"net/netip"

	"vigil/netio"
)

func ExampleGratuitousARP() {
	mac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x33}
	f, err := netio.GratuitousARP(mac, netip.MustParseAddr("192.0.2.100"), false)
	if err != nil {
		fmt.Println(err)
		return
	}
	a, err := netio.ParseARP(f)
	fmt.Println(len(f), a.Op, a.SenderIP, a.TargetIP, a.SenderMAC, a.Gratuitous(), err)
	// Output:
	// 60 1 192.0.2.100 192.0.2.100 00:00:5e:00:01:33 true <nil>
}

func ExampleUnsolicitedNA() {
	mac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, 0x33}
	f, err := netio.UnsolicitedNA(mac, netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("fe80::1"), false)
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := netio.ParseNA(f)
	fmt.Println(len(f), n.Dst, n.HopLimit, n.Target, n.TargetLL, "override:", n.Override, "solicited:", n.Solicited, err)
	// Output:
	// 86 ff02::1 255 2001:db8::100 00:00:5e:00:02:33 override: true solicited: false <nil>
}
