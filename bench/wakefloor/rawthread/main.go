// Command rawthread is the floor of vigil's advert thread (internal/beat,
// docs/benchmarks.md, issue #7): a VRRPv3 advert (VRID 51, priority 150,
// 192.0.2.100) every 10 ms out of IFNAME from a beat.Sender, and nothing
// else but the lease renewed every 250 ms, as the daemon does.
//
//	rawthread IFNAME [hdr]
//
// With hdr it writes the IPv4 header itself (IPPROTO_RAW, IP_HDRINCL, a
// constant identification: keepalived's way) instead of the kernel-built
// header with IP_PKTINFO that vigil's beat sends.
//
// bench/footprint_conc.sh runs it as raw-thread beside keepalived, vigil
// and the wake-up floors.
package main

import (
	"encoding/binary"
	"log"
	"net"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"vigil/internal/beat"
)

func main() {
	ifname := os.Args[1]
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		log.Fatal(err)
	}
	hdr := len(os.Args) > 2 && os.Args[2] == "hdr"
	proto := 112
	if hdr {
		proto = unix.IPPROTO_RAW
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		log.Fatal(err)
	}
	unix.SetsockoptString(s, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
	unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 255)
	unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_TTL, 255)
	unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)
	unix.SetsockoptIPMreqn(s, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)})
	pay := make([]byte, 12)
	pay[0], pay[1], pay[2], pay[3] = 0x31, 51, 150, 1
	binary.BigEndian.PutUint16(pay[4:], 1)
	copy(pay[8:], net.IPv4(192, 0, 2, 100).To4())
	// The checksum is left 0: nobody listens in the peer namespace, and
	// the kernel's receive path costs the same whatever the advert holds.
	if hdr {
		h := []byte{0x45, 0xc0, 0, 32, 0x12, 0x34, 0x40, 0, 255, 112, 0, 0, 192, 0, 2, 1, 224, 0, 0, 18}
		pay = append(h, pay...)
	}
	sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte{224, 0, 0, 18}}
	name := unsafe.Slice((*byte)(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet4)
	const ival = 10 * time.Millisecond
	now := time.Now()
	b, err := beat.Start(s, []beat.Msg{{Name: name, Data: pay}}, ival, now.Add(ival), now.Add(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	for range time.Tick(250 * time.Millisecond) {
		b.Renew(time.Now().Add(time.Second))
		if st := b.State(); st.Failed > 0 {
			log.Fatal("send failures: ", st.Failed, st.Err)
		}
	}
}
