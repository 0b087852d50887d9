package vrrp_test

import (
	"fmt"
	"net/netip"
	"time"

	"vigil/vrrp"
)

// The daemon's loop, reduced to its shape: create, then repeatedly carry
// out Ready and feed events and time back in.
func Example() {
	now := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	in, err := vrrp.New(vrrp.Config{
		Name:     "VI_1",
		VRID:     51,
		Priority: 150,
		SrcAddr:  netip.MustParseAddr("192.0.2.1"),
		VIPs:     []netip.Prefix{netip.MustParsePrefix("192.0.2.100/24")},
	}, now)
	if err != nil {
		fmt.Println(err)
		return
	}
	show := func(rd vrrp.Ready) {
		for _, t := range rd.Transitions {
			fmt.Printf("%v: %v\n", t.At.Sub(now), t)
		}
		for _, p := range rd.AddAddrs {
			fmt.Println("add", p)
		}
		for _, a := range rd.Announce {
			fmt.Println("announce", a.Addrs, "x", a.Repeat)
		}
		for _, o := range rd.Adverts {
			fmt.Printf("send %d bytes to %v, priority %d\n", len(o.Data), o.Dst, o.Priority)
		}
		for _, p := range rd.DelAddrs {
			fmt.Println("delete", p)
		}
		if rd.Next.IsZero() {
			fmt.Println("no deadline")
		} else {
			fmt.Println("next deadline", rd.Next.Sub(now))
		}
	}
	show(in.Ready())

	// Nothing heard: at the deadline the backup takes over.
	in.Advance(now.Add(3414062500 * time.Nanosecond))
	show(in.Ready())

	// SIGTERM.
	in.Step(now.Add(4*time.Second), vrrp.Shutdown{})
	show(in.Ready())
	// Output:
	// 0s: INIT -> BACKUP (startup)
	// next deadline 3.4140625s
	// 3.4140625s: BACKUP -> MASTER (master down timer expired)
	// add 192.0.2.100/24
	// announce [192.0.2.100] x 5
	// send 20 bytes to 224.0.0.18, priority 150
	// next deadline 4.4140625s
	// 4s: MASTER -> INIT (shutdown)
	// send 20 bytes to 224.0.0.18, priority 0
	// delete 192.0.2.100/24
	// no deadline
}
