package netio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"vigil/internal/inet"
)

// Socket is the same raw VRRP socket as Conn (same options, same packets
// on the wire, same receive information) for an event loop that waits on
// file descriptors itself: it is non-blocking, stays out of the Go
// runtime's poller, and its Recv and Send allocate nothing.
//
// What that saves, measured by TestSocketAgainstConn: Conn allocates 11
// objects per IPv4 advert sent (67 per IPv6 one, which resolves the
// zone) and 5 per advert received (ReadMsgIP's source address, control
// messages, the destination); Socket none. And a packet on a Conn wakes a
// poller thread which then wakes the goroutine that reads it; with a
// Socket the loop's own thread is the one the kernel wakes, and it is the
// thread vrrp_rt_priority and vrrp_priority apply to.
//
// Recv, Send and JoinGroup are for one goroutine (the loop) at a time;
// Stats may be read from any.
type Socket struct {
	fd     int
	fam    inet.Family
	ifi    net.Interface
	joined bool

	// Receive scratch, reused: one recvmmsg(2) reads up to two packets,
	// the first into Recv's buffer, the second into spare, where the next
	// Recv takes it (pending). Two, because a batch that comes back with
	// one packet says the queue is empty (Drained): the loop then skips
	// the recvmsg that would only return EAGAIN, one of the six system
	// calls per advert a backup received at advert_int 10 ms
	// (docs/benchmarks.md, footprint). Per slot: the header and its
	// length, the source address and the control messages.
	rmm     [2]mmsghdr
	riov    [2]unix.Iovec
	rname   [2]unix.RawSockaddrInet6 // large enough for either family
	rcm     [2][128]byte
	spare   [spareLen]byte
	got     int  // packets the last recvmmsg read
	pending bool // rmm[1]'s packet, in spare, is not returned yet

	// Send scratch, reused: the destination and the IP_PKTINFO /
	// IPV6_PKTINFO control message that carries the source.
	smsg   unix.Msghdr
	siov   unix.Iovec
	sname4 unix.RawSockaddrInet4
	sname6 unix.RawSockaddrInet6
	scm    [64]byte

	// IPv4 adverts whose header vigil writes (sendOwn): a send-only
	// IPPROTO_RAW socket on the same interface (-1: none), the header and
	// payload vectors, the source the kernel last accepted on a
	// kernel-built send and when, and the identification counter.
	own     int
	omsg    unix.Msghdr
	oiov    [2]unix.Iovec
	ohdr    [20]byte
	okSrc   netip.Addr
	okAt    time.Time
	ownID   uint16
	ownSent uint64 // adverts sent with vigil's header (tests)

	// beatFd is the socket the beats send on (Beat), -1 until the first.
	beatFd int

	counters
}

// verifyEvery is how long a source the kernel accepted on a kernel-built
// send is trusted for adverts with vigil's own header (sendOwn): at least
// one advert a second goes through the kernel's source check, so a
// source address removed from the host stops adverts within a second
// (send errors, counted and logged) rather than going out spoofed.
const verifyEvery = time.Second

// mmsghdr is struct mmsghdr of recvmmsg(2): a message header and the
// length the kernel received into it.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// spareLen bounds the second packet of a batch: the largest VRRP packet
// (IPv6: 8 + 255 × 16 bytes of VRRP, without the IP header, which a raw
// IPv6 socket does not return; IPv4: a 60-byte header with options, 8 +
// 255 × 4 + 8) fits; a larger one is truncated, counted and skipped, as it
// cannot be a valid advert.
const spareLen = 4160

// ErrWouldBlock is returned by Socket.Recv when no packet is queued.
var ErrWouldBlock = errors.New("netio: no packet queued")

// OpenSocket opens a non-blocking raw socket for IP protocol 112 on ifname
// for fam, set up exactly as Listen sets up a Conn, in the network
// namespace of the calling thread.
func OpenSocket(ifname string, fam inet.Family, opts Options) (*Socket, error) {
	ifi, err := vrrpIface("netio: open "+ifname, ifname, fam)
	if err != nil {
		return nil, err
	}
	domain := unix.AF_INET
	if fam == inet.IPv6 {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, Protocol)
	if err != nil {
		return nil, fmt.Errorf("netio: open %s for %v: %w", ifname, fam, err)
	}
	s := &Socket{fd: fd, fam: fam, ifi: *ifi, own: -1, beatFd: -1}
	if err := s.setup(ifname, opts); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netio: open %s for %v: %w", ifname, fam, err)
	}
	if fam == inet.IPv4 {
		s.openOwn(ifname)
	}
	for i := range s.rmm {
		h := &s.rmm[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&s.rname[i]))
		h.Iov = &s.riov[i]
		h.SetIovlen(1)
		h.Control = &s.rcm[i][0]
	}
	s.riov[1].Base = &s.spare[0]
	s.riov[1].SetLen(len(s.spare))
	s.smsg.Iov = &s.siov
	s.smsg.SetIovlen(1)
	return s, nil
}

func (s *Socket) setup(ifname string, opts Options) error {
	fd := s.fd
	type opt struct {
		what             string
		level, name, val int
	}
	var opts2 []opt
	if s.fam == inet.IPv4 {
		opts2 = []opt{
			{"multicast_all off", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0},
			{"TOS", unix.IPPROTO_IP, unix.IP_TOS, tosNetworkControl},
			{"TTL", unix.IPPROTO_IP, unix.IP_TTL, hopLimit},
			{"multicast TTL", unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, hopLimit},
			{"control messages", unix.IPPROTO_IP, unix.IP_PKTINFO, 1},
		}
	} else {
		opts2 = []opt{
			{"multicast_all off", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0},
			{"traffic class", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tosNetworkControl},
			{"hop limit", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, hopLimit},
			{"multicast hop limit", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, hopLimit},
			{"multicast loop", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
			{"multicast interface", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, s.ifi.Index},
			{"control messages", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1},
			{"hop limit messages", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1},
		}
	}
	if s.fam == inet.IPv4 {
		if err := sendVia(fd, ifname, s.ifi.Index); err != nil {
			return err
		}
	} else if err := unix.BindToDevice(fd, ifname); err != nil {
		return fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, err)
	}
	if opts.ReadBuffer > 0 {
		opts2 = append(opts2, opt{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, opts.ReadBuffer})
	}
	for _, o := range opts2 {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.val); err != nil {
			return fmt.Errorf("%s: %w", o.what, err)
		}
	}
	if opts.Multicast {
		return s.JoinGroup()
	}
	return nil
}

// sendVia makes the IPv4 socket fd send out of ifname (index) only, its
// multicast included, and not loop its own multicast back: the VRRP
// socket's setting and sendOwn's socket's alike.
func sendVia(fd int, ifname string, index int) error {
	if err := unix.BindToDevice(fd, ifname); err != nil {
		return fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0); err != nil {
		return fmt.Errorf("multicast loop: %w", err)
	}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(index)}); err != nil {
		return fmt.Errorf("multicast interface: %w", err)
	}
	return nil
}

// Fd is the socket's descriptor, to wait on (EPOLLIN) for Recv.
func (s *Socket) Fd() int { return s.fd }

// Family returns the socket's address family.
func (s *Socket) Family() inet.Family { return s.fam }

// Interface returns the interface the socket is bound to, as it was at
// OpenSocket.
func (s *Socket) Interface() net.Interface { return s.ifi }

// JoinGroup joins the VRRP multicast group on the socket's interface;
// joining twice is not an error.
func (s *Socket) JoinGroup() error {
	if s.joined {
		return nil
	}
	var err error
	if s.fam == inet.IPv4 {
		g := group(s.fam).As4()
		err = unix.SetsockoptIPMreqn(s.fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &unix.IPMreqn{Multiaddr: g, Ifindex: int32(s.ifi.Index)})
	} else {
		err = unix.SetsockoptIPv6Mreq(s.fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &unix.IPv6Mreq{Multiaddr: group(s.fam).As16(), Interface: uint32(s.ifi.Index)})
	}
	if err != nil {
		return fmt.Errorf("netio: join %v on %s: %w", group(s.fam), s.ifi.Name, err)
	}
	s.joined = true
	return nil
}

// Recv returns the next queued VRRP packet, or ErrWouldBlock when none is;
// Packet.Data is a slice of buf, which must hold the whole IP packet for
// IPv4 or the VRRP message for IPv6 (a larger packet is skipped and
// counted). A packet that is not one (too short, no control message) is
// counted in ReceiveErrors and skipped, as Conn.ReadPacket does.
func (s *Socket) Recv(buf []byte) (Packet, error) {
	for {
		p, err := s.recv(buf)
		if err == errBadPacket {
			s.recvErrs.Add(1)
			continue
		}
		if err != nil {
			if err != ErrWouldBlock {
				s.recvErrs.Add(1)
			}
			return Packet{}, err
		}
		if p.Dst.IsMulticast() && !s.joined {
			s.ignored.Add(1)
			continue
		}
		s.received.Add(1)
		return p, nil
	}
}

// Drained reports that the Recv before it emptied the socket's queue: its
// batch came back with fewer packets than it had room for, and none of it
// is left. A Recv now would return ErrWouldBlock, unless a packet came
// since, which makes the socket readable again for epoll. The loop uses it
// to save that Recv's system call.
func (s *Socket) Drained() bool { return !s.pending && s.got == 1 }

func (s *Socket) recv(buf []byte) (Packet, error) {
	if len(buf) == 0 {
		return Packet{}, errors.New("netio: empty receive buffer")
	}
	if s.pending {
		s.pending = false
		m := &s.rmm[1]
		if int(m.n) > len(buf) {
			return Packet{}, errBadPacket
		}
		copy(buf, s.spare[:m.n])
		return s.parse(buf, int(m.n), &m.hdr, &s.rname[1], s.rcm[1][:])
	}
	s.got = 0
	s.riov[0].Base = &buf[0]
	s.riov[0].SetLen(len(buf))
	for i := range s.rmm {
		h := &s.rmm[i].hdr
		h.Namelen = uint32(unsafe.Sizeof(s.rname[i]))
		h.SetControllen(len(s.rcm[i]))
		h.Flags = 0
	}
	// RawSyscall: MSG_DONTWAIT never blocks, and a Syscall's
	// entersyscall wakes the runtime's sysmon thread, one more wake-up
	// per advert (bench/footprint.sh).
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.rmm[0])), uintptr(len(s.rmm)), unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		if e == unix.EAGAIN || e == unix.EINTR {
			return Packet{}, ErrWouldBlock
		}
		if e == unix.EBADF {
			return Packet{}, net.ErrClosed
		}
		return Packet{}, e
	}
	s.got = int(r)
	s.pending = s.got > 1
	m := &s.rmm[0]
	return s.parse(buf, int(m.n), &m.hdr, &s.rname[0], s.rcm[0][:])
}

// parse makes a Packet of the n bytes in buf that the message h received,
// from address name, with control messages in cm.
func (s *Socket) parse(buf []byte, n int, h *unix.Msghdr, name *unix.RawSockaddrInet6, cm []byte) (Packet, error) {
	if h.Flags&unix.MSG_TRUNC != 0 {
		return Packet{}, errBadPacket
	}
	var p Packet
	cm = cm[:h.Controllen]
	if s.fam == inet.IPv4 {
		p.Src = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(name)).Addr)
		b := buf[:n]
		if n < 20 || b[0]>>4 != 4 {
			return Packet{}, errBadPacket
		}
		ihl := int(b[0]&0x0f) * 4
		tot := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < 20 || ihl > n {
			return Packet{}, errBadPacket
		}
		if tot >= ihl && tot < n {
			b = b[:tot]
		}
		p.TTL = int(b[8])
		p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.Data = b[ihl:]
		forEachCmsg(cm, func(level, typ int32, data []byte) {
			if level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= 4 {
				p.IfIndex = int(int32(binary.NativeEndian.Uint32(data)))
			}
		})
		return p, nil
	}
	p.Src = netip.AddrFrom16(name.Addr).Unmap()
	p.Data = buf[:n]
	p.TTL = -1
	forEachCmsg(cm, func(level, typ int32, data []byte) {
		if level != unix.IPPROTO_IPV6 {
			return
		}
		switch {
		case typ == unix.IPV6_PKTINFO && len(data) >= 20:
			p.Dst = netip.AddrFrom16([16]byte(data[:16]))
			p.IfIndex = int(binary.NativeEndian.Uint32(data[16:20]))
		case typ == unix.IPV6_HOPLIMIT && len(data) >= 4:
			p.TTL = int(int32(binary.NativeEndian.Uint32(data)))
		}
	})
	if p.TTL < 0 || !p.Dst.IsValid() {
		return Packet{}, errBadPacket
	}
	return p, nil
}

// forEachCmsg calls f for each control message in b, without allocating
// (unix.ParseSocketControlMessage allocates a slice).
func forEachCmsg(b []byte, f func(level, typ int32, data []byte)) {
	const hdr = unix.SizeofCmsghdr
	for len(b) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < hdr || l > len(b) {
			return
		}
		f(h.Level, h.Type, b[unix.CmsgLen(0):l])
		adv := unix.CmsgSpace(l - unix.CmsgLen(0))
		if adv > len(b) {
			return
		}
		b = b[adv:]
	}
}

// Send sends one VRRP message from src to dst, as Conn.Send does, without
// allocating. The socket is non-blocking: a full send buffer is an error
// (EAGAIN), counted; the next advert is the retry, as for a lost one.
func (s *Socket) Send(payload []byte, src, dst netip.Addr) error {
	if err := s.send(payload, src, dst); err != nil {
		s.sendErrs.Add(1)
		return &SendError{Len: len(payload), Src: src, Dst: dst, Ifname: s.ifi.Name, Err: err}
	}
	s.sent.Add(1)
	return nil
}

// SendError is a failed Socket.Send.
type SendError struct {
	Len      int
	Src, Dst netip.Addr
	Ifname   string
	Err      error
}

func (e *SendError) Error() string {
	return fmt.Sprintf("netio: send %d bytes from %v to %v on %s: %v", e.Len, e.Src, e.Dst, e.Ifname, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

var errFamily = errors.New("addresses do not match the socket's family")

func (s *Socket) send(payload []byte, src, dst netip.Addr) error {
	src, dst = src.Unmap(), dst.Unmap()
	if (s.fam == inet.IPv4) != dst.Is4() || (src.IsValid() && src.Is4() != dst.Is4()) || len(payload) == 0 {
		return errFamily
	}
	if s.own >= 0 && src.IsValid() {
		if src == s.okSrc && time.Since(s.okAt) < verifyEvery {
			return s.sendOwn(payload, src, dst)
		}
		if err := s.sendKernel(payload, src, dst); err != nil {
			s.okSrc = netip.Addr{}
			return err
		}
		s.okSrc, s.okAt = src, time.Now()
		return nil
	}
	return s.sendKernel(payload, src, dst)
}

// openOwn opens the send-only socket of sendOwn. Without it (it cannot
// fail where the VRRP socket opened, but if it does) every advert takes
// the kernel-built path.
func (s *Socket) openOwn(ifname string) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return
	}
	if sendVia(fd, ifname, s.ifi.Index) != nil {
		unix.Close(fd)
		return
	}
	s.own = fd
	s.omsg.Iov = &s.oiov[0]
	s.omsg.SetIovlen(2)
	s.omsg.Name = (*byte)(unsafe.Pointer(&s.sname4))
	s.omsg.Namelen = unix.SizeofSockaddrInet4
	s.oiov[0].Base = &s.ohdr[0]
	s.oiov[0].SetLen(len(s.ohdr))
	// The fields every advert's header shares, written once: the
	// kernel's header on the other path has them too (TOS network
	// control, TTL 255, don't fragment, protocol 112). The checksum stays
	// zero: the kernel computes it.
	h := &s.ohdr
	h[0] = 0x45 // version 4, 5 words: no options
	h[1] = tosNetworkControl
	binary.BigEndian.PutUint16(h[6:8], 0x4000) // DF
	h[8] = hopLimit
	h[9] = Protocol
	var seed [2]byte
	_, _ = unix.Getrandom(seed[:], 0)
	s.ownID = binary.NativeEndian.Uint16(seed[:])
}

// sendOwn sends an IPv4 advert with the header written here (IPPROTO_RAW
// implies IP_HDRINCL): openOwn's fixed fields, the length, an
// identification and the addresses. The kernel
// still routes it, runs the host's netfilter OUTPUT and POSTROUTING hooks
// on it and fills in its length and checksum; what it skips is the work
// of building the header (the identification hash, the append and copy of
// the data, the checksum over it) and of the IP_PKTINFO control message
// (the interface lookup and the source check: verifyEvery). keepalived
// writes its headers the same way. Measured at advert_int 10 ms
// (docs/benchmarks.md, footprint).
func (s *Socket) sendOwn(payload []byte, src, dst netip.Addr) error {
	s.ownHeader(s.ohdr[:], len(payload), src, dst)
	s.oiov[1].Base = &payload[0]
	s.oiov[1].SetLen(len(payload))
	s.sname4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
	// RawSyscall: non-blocking, see recv.
	_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(s.own), uintptr(unsafe.Pointer(&s.omsg)), unix.MSG_DONTWAIT)
	if e != 0 {
		return e
	}
	s.ownSent++
	return nil
}

// ownHeader writes into h, a copy of ohdr, what changes from one sendOwn
// to the next: the length, an identification and the addresses.
func (s *Socket) ownHeader(h []byte, n int, src, dst netip.Addr) {
	binary.BigEndian.PutUint16(h[2:4], uint16(len(s.ohdr)+n))
	// Non-zero, so the kernel keeps it: an atomic datagram's
	// identification need not be unique (RFC 6864 section 4.1).
	s.ownID++
	if s.ownID == 0 {
		s.ownID = 1
	}
	binary.BigEndian.PutUint16(h[4:6], s.ownID)
	a, b := src.As4(), dst.As4()
	copy(h[12:16], a[:])
	copy(h[16:20], b[:])
}

// sendKernel sends payload with the IP header the kernel builds, from src
// (the kernel refuses one the host does not have) out of the socket's
// interface.
func (s *Socket) sendKernel(payload []byte, src, dst netip.Addr) error {
	s.siov.Base = &payload[0]
	s.siov.SetLen(len(payload))
	if s.fam == inet.IPv4 {
		s.sname4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.As4()}
		s.smsg.Name = (*byte)(unsafe.Pointer(&s.sname4))
		s.smsg.Namelen = unix.SizeofSockaddrInet4
	} else {
		s.sname6 = s.name6(dst)
		s.smsg.Name = (*byte)(unsafe.Pointer(&s.sname6))
		s.smsg.Namelen = unix.SizeofSockaddrInet6
	}
	s.smsg.SetControllen(s.pktinfo(s.scm[:], src))
	s.smsg.Control = &s.scm[0]
	// RawSyscall: non-blocking, see recv.
	_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&s.smsg)), unix.MSG_DONTWAIT)
	if e != 0 {
		return e
	}
	return nil
}

// name6 is the IPv6 destination dst, scoped to the socket's interface
// where it must be.
func (s *Socket) name6(dst netip.Addr) unix.RawSockaddrInet6 {
	sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() || dst.IsInterfaceLocalMulticast() {
		sa.Scope_id = uint32(s.ifi.Index)
	}
	return sa
}

// pktinfo writes into cm the control message that sends out of the
// socket's interface from src (none: the kernel picks), IP_PKTINFO or
// IPV6_PKTINFO, and returns its length.
func (s *Socket) pktinfo(cm []byte, src netip.Addr) int {
	clear(cm)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&cm[0]))
	d := cm[unix.CmsgLen(0):]
	if s.fam == inet.IPv4 {
		// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		binary.NativeEndian.PutUint32(d[0:4], uint32(s.ifi.Index))
		if src.IsValid() {
			a := src.As4()
			copy(d[4:8], a[:])
		}
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	// struct in6_pktinfo { in6_addr addr; unsigned ifindex; }
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	if src.IsValid() {
		a := src.As16()
		copy(d[0:16], a[:])
	}
	binary.NativeEndian.PutUint32(d[16:20], uint32(s.ifi.Index))
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}

// Close closes the socket. The caller stops waiting on Fd first.
func (s *Socket) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	if s.own >= 0 {
		unix.Close(s.own)
		s.own = -1
	}
	if s.beatFd >= 0 {
		unix.Close(s.beatFd) // the caller stopped its beats first
		s.beatFd = -1
	}
	return err
}
