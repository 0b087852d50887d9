package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// listener receives on UDP 3784 for one family, with the TTL (hop limit)
// and destination address of each packet, which RFC 5881 section 5 and
// demultiplexing need. It is a raw non-blocking socket the Runner's
// thread reads itself.
type listener struct {
	fd  int
	v6  bool
	oob []byte
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
	return &listener{fd: fd, v6: v6, oob: make([]byte, 128)}, nil
}

// read returns the next datagram, or unix.EAGAIN when there is none.
func (l *listener) read(buf []byte) (received, error) {
	n, oobn, _, from, err := unix.Recvmsg(l.fd, buf, l.oob, unix.MSG_DONTWAIT)
	if err != nil {
		return received{}, err
	}
	r := received{data: buf[:n], ttl: -1}
	switch sa := from.(type) {
	case *unix.SockaddrInet4:
		r.src = netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		r.src = netip.AddrFrom16(sa.Addr).Unmap()
	}
	msgs, err := unix.ParseSocketControlMessage(l.oob[:oobn])
	if err != nil {
		return r, nil
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL && len(m.Data) >= 4,
			m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4:
			r.ttl = int(int32(binary.NativeEndian.Uint32(m.Data)))
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 12:
			r.dst = netip.AddrFrom4([4]byte(m.Data[8:12]))
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16:
			r.dst = netip.AddrFrom16([16]byte(m.Data[:16])).Unmap()
		}
	}
	return r, nil
}

func (l *listener) Close() error { return unix.Close(l.fd) }
