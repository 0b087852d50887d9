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
