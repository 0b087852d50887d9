package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Port is the destination port of single-hop BFD Control packets (RFC
// 5881 section 4).
const Port = 3784

// tosNetworkControl marks BFD packets DSCP CS6, as routers do for their
// own control traffic, so that queues favour them.
const tosNetworkControl = 0xc0

// received is one datagram from a listener.
type received struct {
	data     []byte
	src, dst netip.Addr
	ttl      int
}

// sender is a session's transmit socket: bound to its source address and
// a port from 49152-65535 (RFC 5881 section 4), sending with the TTL /
// hop limit configured (255 for single hop). A raw socket the Runner's
// thread writes with sendto: no runtime poller in the way of a packet.
type sender struct {
	fd   int
	peer unix.Sockaddr
	port uint16
	// to is peer as the kernel takes it, for sendto as a raw system call
	// (no allocation, no runtime bookkeeping per packet: see listener).
	to    unix.RawSockaddrInet6 // large enough for either family
	tolen uintptr
}

func openSender(local, peer netip.Addr, ttl int, rnd *rand.Rand) (*sender, error) {
	fam := unix.AF_INET
	if peer.Is6() {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("bfd: socket: %w", err)
	}
	if peer.Is6() {
		err = errors.Join(unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl),
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tosNetworkControl))
	} else {
		err = errors.Join(unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, ttl),
			unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS, tosNetworkControl))
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bfd: set TTL %d: %w", ttl, err)
	}
	var port uint16
	for try := 0; try < 64; try++ {
		port = uint16(49152 + rnd.IntN(65536-49152))
		err = unix.Bind(fd, sockaddr(local, peer.Is6(), port))
		if err == nil || !errors.Is(err, unix.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bfd: bind %v to a source port in 49152-65535: %w", local, err)
	}
	snd := &sender{fd: fd, port: port, peer: sockaddr(peer, peer.Is6(), Port)}
	if peer.Is6() {
		snd.to = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: peer.As16()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&snd.to.Port))[:], Port)
		snd.tolen = unix.SizeofSockaddrInet6
	} else {
		to := (*unix.RawSockaddrInet4)(unsafe.Pointer(&snd.to))
		to.Family, to.Addr = unix.AF_INET, peer.Unmap().As4()
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&to.Port))[:], Port)
		snd.tolen = unix.SizeofSockaddrInet4
	}
	return snd, nil
}

// sockaddr is a for family v6 (the unspecified address when a is invalid).
func sockaddr(a netip.Addr, v6 bool, port uint16) unix.Sockaddr {
	if v6 {
		sa := &unix.SockaddrInet6{Port: int(port)}
		if a.IsValid() {
			sa.Addr = a.As16()
		}
		return sa
	}
	sa := &unix.SockaddrInet4{Port: int(port)}
	if a.IsValid() {
		sa.Addr = a.Unmap().As4()
	}
	return sa
}

// send sends one packet. The socket is non-blocking: a full send buffer
// is an error (EAGAIN), and the next transmit is the retry, as for a lost
// packet.
func (s *sender) send(b []byte) error {
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0,
		uintptr(unsafe.Pointer(&s.to)), s.tolen)
	if e != 0 {
		return fmt.Errorf("sendto %v: %w", s.peer, e)
	}
	return nil
}

func (s *sender) Close() error { return unix.Close(s.fd) }
