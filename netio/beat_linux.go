package netio

import (
	"fmt"
	"net"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"vigil/internal/beat"
	"vigil/internal/inet"
	"vigil/vrrp/wire"
)

// Beat is a master's beat on a Socket: a thread outside the Go runtime
// (package beat) sending its adverts, and for an IPv4 one whose header the
// thread writes, the check that its source is still the host's.
type Beat struct {
	*beat.Sender
	// own is the IPPROTO_RAW socket the thread sends on and verify a UDP
	// socket, both bound to the source; -1 on the kernel-built path.
	// Verify connects verify anew to dst.
	own, verify int
	dst         unix.RawSockaddrInet4
	stuck       bool // a Stop found the thread still there: its socket stays open
}

// Beat starts a beat that sends payloads[k] to dsts[k] from src at first
// and every interval after it, until lease (Renew moves it) or Stop, which
// the caller runs before it closes the socket. Send's counters leave the
// beat's sends out.
//
// An IPv4 beat from a given source writes its IPv4 header, as sendOwn
// does, on an IPPROTO_RAW socket of its own bound to the source: the
// kernel neither builds the header nor parses an IP_PKTINFO message nor
// looks the source up (nor, bound, picks one for the route) at each send,
// about 5 µs of CPU per advert (docs/benchmarks.md, "The advert thread").
// It also does not check the source, which Verify does: Beat first, then
// the caller as often as it renews. The other beats send what
// Send's kernel-built path would, on a socket of their own that the first
// of them opens (openBeatSocket), in the network namespace of the calling
// thread, as OpenSocket does; the kernel checks their source at each send.
func (s *Socket) Beat(payloads [][]byte, src netip.Addr, dsts []netip.Addr, interval time.Duration, first, lease time.Time) (*Beat, error) {
	if len(payloads) != len(dsts) || len(payloads) == 0 {
		return nil, fmt.Errorf("netio: beat of %d payloads to %d destinations", len(payloads), len(dsts))
	}
	src = src.Unmap()
	// The thread writes the IPv4 header where sendOwn can (openOwn wrote
	// ohdr's fixed fields) and the source is known.
	ownHeader := s.fam == inet.IPv4 && s.own >= 0 && src.IsValid()
	msgs := make([]beat.Msg, len(payloads))
	for k, p := range payloads {
		var err error
		if ownHeader {
			msgs[k], err = s.ownMsg(p, src, dsts[k])
		} else {
			msgs[k], err = s.beatMsg(p, src, dsts[k])
		}
		if err != nil {
			return nil, err
		}
	}
	b := &Beat{own: -1, verify: -1}
	fd := s.beatFd
	if ownHeader {
		if err := b.open(s.ifi, src, dsts[0]); err != nil {
			return nil, err
		}
		if err := b.Verify(); err != nil {
			b.close()
			return nil, err
		}
		fd = b.own
	} else if fd < 0 {
		var err error
		if fd, err = s.openBeatSocket(); err != nil {
			return nil, fmt.Errorf("netio: beat socket on %s: %w", s.ifi.Name, err)
		}
		s.beatFd = fd
	}
	sender, err := beat.Start(fd, msgs, interval, first, lease)
	if err != nil {
		b.close()
		return nil, err
	}
	b.Sender = sender
	return b, nil
}

// Verify reports whether the beat's source is still an address of the
// host's, as the kernel's check of a kernel-built send would (the route
// lookup of a UDP connect does the same check, and sends nothing). A beat
// whose header the kernel builds needs none: nil.
func (b *Beat) Verify() error {
	if b.verify < 0 {
		return nil
	}
	// RawSyscall: a UDP connect does not block, and the runtime's
	// bookkeeping of a Syscall woke its sysmon thread at each check
	// (measured: 9 wake-ups a second at four checks a second).
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(b.verify), uintptr(unsafe.Pointer(&b.dst)), unix.SizeofSockaddrInet4)
	if e != 0 {
		return fmt.Errorf("netio: the beat's source: %w", e)
	}
	return nil
}

// Stop stops the thread (beat.Sender's Stop) and closes the beat's
// sockets, unless the thread did not go (beat.ErrStuck): a descriptor
// closed under a thread that may still send could be reused for another
// file, so they stay open, as the thread's memory does.
func (b *Beat) Stop() error {
	err := b.Sender.Stop()
	if err != nil {
		b.stuck = true
	}
	if !b.stuck {
		b.close()
	}
	return err
}

func (b *Beat) close() {
	for _, fd := range []*int{&b.own, &b.verify} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// open opens the beat's own sockets on ifi, both bound to src (which fails
// at once for an address the host does not have, unless ip_nonlocal_bind
// allows it; Verify's connect does not): the IPPROTO_RAW socket the thread
// sends on, and Verify's, UDP.
func (b *Beat) open(ifi net.Interface, src, dst netip.Addr) error {
	sa := &unix.SockaddrInet4{Addr: src.As4()}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("netio: the beat's socket: %w", err)
	}
	b.own = fd
	if err := sendVia(fd, ifi.Name, ifi.Index); err != nil {
		b.close()
		return fmt.Errorf("netio: the beat's socket: %w", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		b.close()
		return fmt.Errorf("netio: the beat's source %v: %w", src, err)
	}
	if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
		b.close()
		return fmt.Errorf("netio: the beat's source check: %w", err)
	}
	b.verify = fd
	if err := unix.BindToDevice(fd, ifi.Name); err != nil {
		b.close()
		return fmt.Errorf("netio: the beat's source check: SO_BINDTODEVICE %s: %w", ifi.Name, err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		b.close()
		return fmt.Errorf("netio: the beat's source %v: %w", src, err)
	}
	// The port is never used: nothing is sent.
	b.dst = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.Unmap().As4(), Port: 9 << 8}
	return nil
}

// ownMsg is sendOwn's message as bytes: the destination, and the header
// and payload in one piece. The identification is the same in every
// advert of the beat: an atomic datagram's need not change (RFC 6864
// section 4.1), and the thread writes nothing.
func (s *Socket) ownMsg(payload []byte, src, dst netip.Addr) (beat.Msg, error) {
	dst = dst.Unmap()
	if !dst.Is4() || !src.Is4() || len(payload) == 0 {
		return beat.Msg{}, errFamily
	}
	data := make([]byte, len(s.ohdr)+len(payload))
	copy(data, s.ohdr[:])
	s.ownHeader(data, len(payload), src, dst)
	copy(data[len(s.ohdr):], payload)
	return beat.Msg{Name: name4(dst), Data: data}, nil
}

// openBeatSocket opens the socket the beats send on: set up as the VRRP
// socket is, but a socket of its own, which no poller watches. A send's
// completion signals write space on its socket (an EPOLLOUT edge), and on
// the VRRP socket, which the Go runtime's poller watches for the loop, that
// woke the runtime for every advert the thread sent: the wake-up the
// thread is there to save. It is connected to the multicast group, which
// no packet comes from, so it receives nothing (a raw socket gets a copy of
// every VRRP packet otherwise); each message names its destination.
func (s *Socket) openBeatSocket() (int, error) {
	domain := unix.AF_INET
	if s.fam == inet.IPv6 {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, Protocol)
	if err != nil {
		return -1, err
	}
	b := &Socket{fd: fd, fam: s.fam, ifi: s.ifi, own: -1, beatFd: -1}
	if err := b.setup(s.ifi.Name, Options{}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: wire.GroupV4.As4()}
	if s.fam == inet.IPv6 {
		sa = &unix.SockaddrInet6{Addr: wire.GroupV6.As16(), ZoneId: uint32(s.ifi.Index)}
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect to the group (to receive nothing): %w", err)
	}
	return fd, nil
}

// beatMsg is sendKernel's message as bytes: the destination, the
// IP_PKTINFO / IPV6_PKTINFO control message, the payload.
func (s *Socket) beatMsg(payload []byte, src, dst netip.Addr) (beat.Msg, error) {
	src, dst = src.Unmap(), dst.Unmap()
	if (s.fam == inet.IPv4) != dst.Is4() || (src.IsValid() && src.Is4() != dst.Is4()) || len(payload) == 0 {
		return beat.Msg{}, errFamily
	}
	m := beat.Msg{Data: payload}
	if s.fam == inet.IPv4 {
		m.Name = name4(dst)
	} else {
		sa := s.name6(dst)
		m.Name = bytesOf(&sa)
	}
	var cm [64]byte
	m.Control = append([]byte(nil), cm[:s.pktinfo(cm[:], src)]...)
	return m, nil
}

// name4 is the IPv4 destination dst as a struct sockaddr_in's bytes.
func name4(dst netip.Addr) []byte {
	return bytesOf(&unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()})
}

// bytesOf is a copy of the bytes of *v, a C struct.
func bytesOf[T any](v *T) []byte {
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))...)
}
