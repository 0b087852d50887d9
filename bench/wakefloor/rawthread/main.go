// Command rawthread is the floor of vigil's advert thread (internal/beat,
// docs/benchmarks.md, "The advert thread"): a VRRPv3 advert (VRID 51,
// priority 150, 192.0.2.100) every 10 ms out of IFNAME from
// netio.Socket.Beat, as the daemon starts it, and nothing else but the
// lease renewed and the source checked once a second, as the daemon does.
//
//	rawthread IFNAME [hdr]
//
// Without hdr the beat takes the kernel-built path (no source: the kernel
// picks it and builds the header); with hdr it sends from the interface's
// first IPv4 address and the thread writes the header, as the daemon's
// beats do. bench/footprint_conc.sh runs it as raw-thread and
// raw-thread-hdr beside keepalived, vigil and the wake-up floors.
package main

import (
	"log"
	"net"
	"net/netip"
	"os"
	"time"

	"vigil/internal/inet"
	"vigil/netio"
	"vigil/vrrp/wire"
)

func main() {
	ifname := os.Args[1]
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		log.Fatal(err)
	}
	var src netip.Addr
	if len(os.Args) > 2 && os.Args[2] == "hdr" {
		addrs, err := ifi.Addrs()
		if err != nil {
			log.Fatal(err)
		}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
				src = p.Addr()
				break
			}
		}
		if !src.IsValid() {
			log.Fatal(ifname, " has no IPv4 address")
		}
	}
	s, err := netio.OpenSocket(ifname, inet.IPv4, netio.Options{})
	if err != nil {
		log.Fatal(err)
	}
	// The checksum is over the source the beat names, or 0.0.0.0 on the
	// kernel-built path, where the kernel picks it: nobody listens in the
	// peer namespace, and its receive path costs the same either way.
	sum := src
	if !sum.IsValid() {
		sum = netip.IPv4Unspecified()
	}
	a := wire.Advert{Version: 3, Type: wire.TypeAdvertisement, VRID: 51, Priority: 150, Interval: 1,
		Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	pay, err := a.Marshal(sum, wire.GroupV4, wire.ChecksumPseudoHeader)
	if err != nil {
		log.Fatal(err)
	}
	const ival = 10 * time.Millisecond
	now := time.Now()
	b, err := s.Beat([][]byte{pay}, src, []netip.Addr{wire.GroupV4}, ival, now.Add(ival), now.Add(1500*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	for range time.Tick(time.Second) {
		if err := b.Verify(); err != nil {
			log.Fatal(err)
		}
		b.Renew(time.Now().Add(1500 * time.Millisecond))
		if st := b.State(); st.Failed > 0 {
			log.Fatal("send failures: ", st.Failed, st.Err)
		}
	}
}
