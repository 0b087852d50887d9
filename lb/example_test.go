package lb_test

import (
	"fmt"
	"net/netip"

	"vigil/lb"
)

// The daemon's side: build the model from the configuration, feed it
// verdicts, run the scripts its events ask for, apply what Desired says.
func Example() {
	m, err := lb.New([]lb.ServiceConfig{{
		Proto: lb.TCP, VIP: netip.MustParseAddr("192.0.2.100"), Port: 80,
		Scheduler: "wrr", Quorum: 2,
		Sorry: netip.MustParseAddrPort("10.0.9.9:80"),
		RealServers: []lb.RealServerConfig{
			{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Weight: 1},
			{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Weight: 1, InhibitOnFailure: true},
		},
	}})
	if err != nil {
		panic(err)
	}
	evs, _ := m.SetHealth("192.0.2.100:80/tcp", netip.MustParseAddrPort("10.0.0.2:80"), false, -1)
	fmt.Println(evs)
	s := m.Desired().Services[0]
	fmt.Println(s.Name, s.ID, s.Selection, s.Sorry, s.Backends[0].AddrPort(), s.Draining[0].AddrPort())
	// Output:
	// [192.0.2.100:80/tcp: quorum down (weight 1, quorum 2±0)]
	// 192.0.2.100:80/tcp vs_192_0_2_100_80_tcp numgen true 10.0.9.9:80 10.0.0.2:80
}
