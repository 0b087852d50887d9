package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listener receives on UDP 3784 for one family, with the TTL (hop limit)
// and destination address of each packet, which RFC 5881 section 5 and
// demultiplexing need. It is a raw non-blocking socket the Runner's
// thread reads itself, with recvmmsg as a raw system call on message
// headers built once: no allocation per packet, and none of the Go
// runtime's system call bookkeeping (entering a Syscall can wake the
// runtime's sysmon thread; x/sys's Recvmsg also asks the socket its
// protocol with a getsockopt each time).
//
// One recvmmsg reads up to rxBatch datagrams. A batch that comes back
// short says the queue is empty, so the drain that follows every wake-up
// needs no second call that would only return EAGAIN: one system call
// per received packet instead of two (docs/benchmarks.md, "the BFD
// process's late wake-ups").
type listener struct {
	fd   int
	v6   bool
	mm   [rxBatch]mmsghdr
	iov  [rxBatch]unix.Iovec
	name [rxBatch]unix.RawSockaddrInet6 // large enough for either family
	oob  [rxBatch][128]byte
	buf  [rxBatch][rxLen]byte
}

// rxBatch is how many datagrams one recvmmsg reads; rxLen bounds one (a
// BFD Control packet is 24 bytes plus at most 28 of authentication; the
// codec ignores what follows its Length field, as it does UDP padding).
const (
	rxBatch = 4
	rxLen   = 512
)

// mmsghdr is struct mmsghdr of recvmmsg(2): a message header and the
// length the kernel received into it.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

func listen(v6 bool) (*listener, error) {
	fam := unix.AF_INET
	if v6 {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("bfd: socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	if v6 {
		err = errors.Join(unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1),
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1),
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1))
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrInet6{Port: Port})
		}
	} else {
		err = errors.Join(unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTTL, 1),
			unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1))
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrInet4{Port: Port})
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bfd: listen on UDP %d: %w", Port, err)
	}
	l := &listener{fd: fd, v6: v6}
	for i := range l.mm {
		h := &l.mm[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&l.name[i]))
		h.Iov = &l.iov[i]
		h.SetIovlen(1)
		h.Control = &l.oob[i][0]
		l.iov[i].Base = &l.buf[i][0]
		l.iov[i].SetLen(rxLen)
	}
	return l, nil
}

// readBatch reads the datagrams queued, up to rxBatch; fewer than
// rxBatch means the queue is now empty. None queued is unix.EAGAIN.
// packet(i) is the i-th, valid until the next readBatch.
func (l *listener) readBatch() (int, error) {
	for i := range l.mm {
		h := &l.mm[i].hdr
		h.Namelen = uint32(unsafe.Sizeof(l.name[i]))
		h.SetControllen(len(l.oob[i]))
		h.Flags = 0
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(l.fd), uintptr(unsafe.Pointer(&l.mm[0])), rxBatch, unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// packet is the i-th datagram of the last batch.
func (l *listener) packet(i int) received {
	m := &l.mm[i]
	r := received{data: l.buf[i][:min(int(m.n), rxLen)], ttl: -1}
	if l.v6 {
		r.src = netip.AddrFrom16(l.name[i].Addr).Unmap()
	} else {
		r.src = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&l.name[i])).Addr)
	}
	b := l.oob[i][:m.hdr.Controllen]
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		hl := int(h.Len)
		if hl < unix.SizeofCmsghdr || hl > len(b) {
			break
		}
		d := b[unix.CmsgLen(0):hl]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TTL && len(d) >= 4,
			h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(d) >= 4:
			r.ttl = int(int32(binary.NativeEndian.Uint32(d)))
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(d) >= 12:
			r.dst = netip.AddrFrom4([4]byte(d[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(d) >= 16:
			r.dst = netip.AddrFrom16([16]byte(d[:16])).Unmap()
		}
		adv := unix.CmsgSpace(hl - unix.CmsgLen(0))
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	return r
}

func (l *listener) Close() error { return unix.Close(l.fd) }
