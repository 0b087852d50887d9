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
// thread reads itself, with recvmsg as a raw system call on a message
// header built once: no allocation per packet, and none of the Go
// runtime's system call bookkeeping (entering a Syscall can wake the
// runtime's sysmon thread; x/sys's Recvmsg also asks the socket its
// protocol with a getsockopt each time).
type listener struct {
	fd   int
	v6   bool
	msg  unix.Msghdr
	iov  unix.Iovec
	name unix.RawSockaddrInet6 // large enough for either family
	oob  [128]byte
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
	l.msg.Name = (*byte)(unsafe.Pointer(&l.name))
	l.msg.Iov = &l.iov
	l.msg.SetIovlen(1)
	l.msg.Control = &l.oob[0]
	return l, nil
}

// read returns the next datagram, or unix.EAGAIN when there is none. The
// datagram's data is buf's.
func (l *listener) read(buf []byte) (received, error) {
	l.iov.Base = &buf[0]
	l.iov.SetLen(len(buf))
	l.msg.Namelen = uint32(unsafe.Sizeof(l.name))
	l.msg.SetControllen(len(l.oob))
	l.msg.Flags = 0
	n, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(l.fd), uintptr(unsafe.Pointer(&l.msg)), unix.MSG_DONTWAIT)
	if e != 0 {
		return received{}, e
	}
	r := received{data: buf[:n], ttl: -1}
	if l.v6 {
		r.src = netip.AddrFrom16(l.name.Addr).Unmap()
	} else {
		r.src = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&l.name)).Addr)
	}
	b := l.oob[:l.msg.Controllen]
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
	return r, nil
}

func (l *listener) Close() error { return unix.Close(l.fd) }
