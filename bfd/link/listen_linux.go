package link

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// poller is what the Runner's thread waits on: one epoll instance holding
// the UDP 3784 listeners, a timerfd for the next BFD deadline and an
// eventfd for configuration changes and the end of Run. The Runner's own
// locked thread blocks in epoll_wait and is the thread the kernel wakes for
// a packet or a deadline: no reader goroutine, channel or Go timer is in
// the path, so under CPU saturation a transmit or a received packet waits
// for one thread wake-up, not three (the daemon loop does the same, see
// daemon/poll_linux.go and docs/benchmarks.md).
type poller struct {
	ep, tfd, efd int
	events       [16]unix.EpollEvent
	armed        time.Time
	one          [8]byte
}

const (
	tagTimer = -1
	tagWake  = -2
)

func newPoller() (*poller, error) {
	p := &poller{ep: -1, tfd: -1, efd: -1}
	var err error
	if p.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	if p.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err == nil {
		p.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	}
	if err == nil {
		err = errors.Join(p.add(p.tfd, tagTimer), p.add(p.efd, tagWake))
	}
	if err != nil {
		p.close()
		return nil, err
	}
	p.one[0] = 1
	return p, nil
}

func (p *poller) add(fd, tag int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tag)}
	return unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &ev)
}

func (p *poller) del(fd int) { _ = unix.EpollCtl(p.ep, unix.EPOLL_CTL_DEL, fd, nil) }

// arm sets the timerfd to fire at next (zero: never).
func (p *poller) arm(next time.Time) {
	if next.Equal(p.armed) {
		return
	}
	p.armed = next
	var spec unix.ItimerSpec
	if !next.IsZero() {
		d := time.Until(next)
		if d <= 0 {
			d = 1
		}
		spec.Value = unix.NsecToTimespec(int64(d))
	}
	_ = unix.TimerfdSettime(p.tfd, 0, &spec, nil)
}

func (p *poller) wait() ([]unix.EpollEvent, error) {
	for {
		n, err := unix.EpollWait(p.ep, p.events[:], -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return p.events[:n], nil
	}
}

func (p *poller) timerFired() {
	var b [8]byte
	_, _ = unix.Read(p.tfd, b[:])
	p.armed = time.Time{}
}

func (p *poller) drainWake() {
	var b [8]byte
	_, _ = unix.Read(p.efd, b[:])
}

// wake makes wait return; any goroutine.
func (p *poller) wake() { _, _ = unix.Write(p.efd, p.one[:]) }

func (p *poller) close() {
	for _, fd := range []int{p.tfd, p.efd, p.ep} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

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
