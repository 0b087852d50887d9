package link

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
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

// listener receives on UDP 3784 for one family, with the TTL (hop limit)
// and destination address of each packet, which RFC 5881 section 5 and
// demultiplexing need.
type listener struct {
	c  *net.UDPConn
	p4 *ipv4.PacketConn
	p6 *ipv6.PacketConn
}

func listen(v6 bool) (*listener, error) {
	network, any := "udp4", netip.IPv4Unspecified()
	if v6 {
		network, any = "udp6", netip.IPv6Unspecified()
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(any, Port)))
	if err != nil {
		return nil, fmt.Errorf("bfd: listen on UDP %d: %w", Port, err)
	}
	_ = c.SetReadBuffer(1 << 20)
	l := &listener{c: c}
	if v6 {
		l.p6 = ipv6.NewPacketConn(c)
		err = l.p6.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true)
	} else {
		l.p4 = ipv4.NewPacketConn(c)
		err = l.p4.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst, true)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("bfd: ask for TTL and destination on UDP %d: %w", Port, err)
	}
	return l, nil
}

func (l *listener) read(buf []byte) (received, error) {
	if l.p6 != nil {
		n, cm, src, err := l.p6.ReadFrom(buf)
		if err != nil {
			return received{}, err
		}
		r := received{data: buf[:n], ttl: -1}
		if ua, ok := src.(*net.UDPAddr); ok {
			r.src = ua.AddrPort().Addr().Unmap()
		}
		if cm != nil {
			r.ttl = cm.HopLimit
			r.dst, _ = netip.AddrFromSlice(cm.Dst)
		}
		return r, nil
	}
	n, cm, src, err := l.p4.ReadFrom(buf)
	if err != nil {
		return received{}, err
	}
	r := received{data: buf[:n], ttl: -1}
	if ua, ok := src.(*net.UDPAddr); ok {
		r.src = ua.AddrPort().Addr().Unmap()
	}
	if cm != nil {
		r.ttl = cm.TTL
		if d, ok := netip.AddrFromSlice(cm.Dst); ok {
			r.dst = d.Unmap()
		}
	}
	return r, nil
}

func (l *listener) Close() error { return l.c.Close() }

// sender is a session's transmit socket: bound to its source address and
// a port from 49152-65535 (RFC 5881 section 4), sending with the TTL /
// hop limit configured (255 for single hop).
type sender struct {
	c    *net.UDPConn
	peer *net.UDPAddr
	port uint16
}

func openSender(local, peer netip.Addr, ttl int, rnd *rand.Rand) (*sender, error) {
	network := "udp4"
	if peer.Is6() {
		network = "udp6"
		if !local.IsValid() {
			local = netip.IPv6Unspecified()
		}
	} else if !local.IsValid() {
		local = netip.IPv4Unspecified()
	}
	var c *net.UDPConn
	var port uint16
	var err error
	for try := 0; try < 64; try++ {
		port = uint16(49152 + rnd.IntN(65536-49152))
		c, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, port)))
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bfd: bind %v to a source port in 49152-65535: %w", local, err)
	}
	if peer.Is6() {
		p := ipv6.NewConn(c)
		err = errors.Join(p.SetHopLimit(ttl), p.SetTrafficClass(tosNetworkControl))
	} else {
		p := ipv4.NewConn(c)
		err = errors.Join(p.SetTTL(ttl), p.SetTOS(tosNetworkControl))
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("bfd: set TTL %d: %w", ttl, err)
	}
	return &sender{c: c, port: port, peer: net.UDPAddrFromAddrPort(netip.AddrPortFrom(peer, Port))}, nil
}

func (s *sender) send(b []byte) error {
	_, err := s.c.WriteToUDP(b, s.peer)
	return err
}

func (s *sender) Close() error { return s.c.Close() }
