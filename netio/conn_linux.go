package netio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
	"vigil/internal/inet"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Protocol is the IP protocol number of VRRP (RFC 5798 section 5.1.1.4).
const Protocol = 112

// hopLimit is the TTL / hop limit every VRRP packet is sent with and that
// RFC 5798 section 7.1 requires of every multicast packet received.
const hopLimit = 255

// tosNetworkControl is the IPv4 TOS / IPv6 traffic class of adverts:
// precedence 6, "internetwork control" (RFC 791), DSCP CS6 (RFC 4594
// section 3.2), as keepalived sends them, so that switches that queue by
// DSCP favour adverts over the traffic they protect.
const tosNetworkControl = 0xc0

// group returns the VRRP multicast group of f (RFC 5798 sections 5.1.1.2
// and 5.1.2.2).
func group(f inet.Family) netip.Addr {
	if f == inet.IPv6 {
		return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
	}
	return netip.AddrFrom4([4]byte{224, 0, 0, 18})
}

// Options tune Listen.
type Options struct {
	// Multicast joins the VRRP group (224.0.0.18 or ff02::12) on the
	// interface. Leave it false for a socket that only serves unicast
	// instances (unicast_peer): it then receives only packets addressed to
	// the host, even when another socket joined the group.
	Multicast bool
	// ReadBuffer sets the socket receive buffer (SO_RCVBUF) when positive,
	// for links with many virtual routers.
	ReadBuffer int
}

// Packet is one VRRP packet received.
type Packet struct {
	Data     []byte     // the VRRP message only (the IP payload), a slice of the caller's buffer
	Src, Dst netip.Addr // IP source and destination, without zone
	TTL      int        // IPv4 TTL or IPv6 hop limit as received
	IfIndex  int        // the interface it arrived on
}

// Stats are a Conn's (or a Socket's) counters since Listen (OpenSocket).
type Stats struct {
	Sent          uint64 // packets handed to the kernel
	Received      uint64 // packets returned by ReadPacket
	SendErrors    uint64 // Send calls that failed
	ReceiveErrors uint64 // reads that failed, and packets skipped as too large for the buffer or malformed
	Ignored       uint64 // multicast packets dropped because the Conn did not join the group
}

// counters are the Stats of a Conn or a Socket, counted without a lock.
type counters struct {
	sent, received, sendErrs, recvErrs, ignored atomic.Uint64
}

// Stats returns the counters. It takes no lock.
func (c *counters) Stats() Stats {
	return Stats{
		Sent:          c.sent.Load(),
		Received:      c.received.Load(),
		SendErrors:    c.sendErrs.Load(),
		ReceiveErrors: c.recvErrs.Load(),
		Ignored:       c.ignored.Load(),
	}
}

// Conn is a raw VRRP socket on one interface for one address family. Send
// and ReadPacket may be called concurrently with each other and with Close;
// ReadPacket from one goroutine at a time.
type Conn struct {
	fam    inet.Family
	ifi    *net.Interface
	ipc    *net.IPConn
	p4     *ipv4.PacketConn // set for IPv4
	p6     *ipv6.PacketConn // set for IPv6
	oob    []byte           // control message buffer, used by ReadPacket only
	joined atomic.Bool
	counters
}

// Listen opens a raw socket for IP protocol 112 on interface ifname for
// family fam, in the network namespace of the calling thread.
//
// The socket is bound to the interface (SO_BINDTODEVICE), so it never sees
// packets from other links; it sends multicast and unicast with TTL / hop
// limit 255 and multicast on ifname, does not loop its own multicast back,
// and asks the kernel for the TTL / hop limit, destination and interface of
// every packet. With opts.Multicast it joins the group on ifname.
func Listen(ifname string, fam inet.Family, opts Options) (*Conn, error) {
	ifi, err := vrrpIface("netio: listen on "+ifname, ifname, fam)
	if err != nil {
		return nil, err
	}
	network, laddr := "ip4:"+strconv.Itoa(Protocol), "0.0.0.0"
	if fam == inet.IPv6 {
		network, laddr = "ip6:"+strconv.Itoa(Protocol), "::"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return sockopts(rc, ifname, fam, opts)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return nil, fmt.Errorf("netio: listen on %s for %v: %w", ifname, fam, err)
	}
	c := &Conn{fam: fam, ifi: ifi, ipc: pc.(*net.IPConn)}
	if err := c.setup(opts); err != nil {
		_ = c.ipc.Close()
		return nil, fmt.Errorf("netio: listen on %s for %v: %w", ifname, fam, err)
	}
	return c, nil
}

// sockopts sets, before bind, the options x/net does not cover.
func sockopts(rc syscall.RawConn, ifname string, fam inet.Family, opts Options) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		s := int(fd)
		if serr = unix.BindToDevice(s, ifname); serr != nil {
			serr = fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, serr)
			return
		}
		// Without this, Linux delivers to the socket the multicast of every
		// group any socket of the host joined, so a unicast-only socket
		// would still hear the group.
		if fam == inet.IPv4 {
			serr = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
		} else {
			serr = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
		}
		if serr != nil {
			serr = fmt.Errorf("multicast_all off: %w", serr)
			return
		}
		if opts.ReadBuffer > 0 {
			if serr = unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, opts.ReadBuffer); serr != nil {
				serr = fmt.Errorf("SO_RCVBUF %d: %w", opts.ReadBuffer, serr)
			}
		}
	})
	return errors.Join(err, serr)
}

// vrrpIface checks that fam is one VRRP runs over and looks up ifname, for
// Listen and OpenSocket; what begins its errors.
func vrrpIface(what, ifname string, fam inet.Family) (*net.Interface, error) {
	if fam != inet.IPv4 && fam != inet.IPv6 {
		return nil, fmt.Errorf("%s: %v, want IPv4 or IPv6", what, fam)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return ifi, nil
}

// step is one socket option set, named in its error.
type step struct {
	what string
	err  error
}

// firstFailed returns the error of the first step that failed, naming it.
func firstFailed(steps []step) error {
	for _, s := range steps {
		if s.err != nil {
			return fmt.Errorf("%s: %w", s.what, s.err)
		}
	}
	return nil
}

func (c *Conn) setup(opts Options) error {
	if c.fam == inet.IPv4 {
		p := ipv4.NewPacketConn(c.ipc)
		c.p4 = p
		if err := firstFailed([]step{
			{"TOS", p.SetTOS(tosNetworkControl)},
			{"TTL", p.SetTTL(hopLimit)},
			{"multicast TTL", p.SetMulticastTTL(hopLimit)},
			{"multicast loop", p.SetMulticastLoopback(false)},
			{"multicast interface", p.SetMulticastInterface(c.ifi)},
			// The TTL comes from the IP header, which a raw IPv4 socket
			// returns; the destination and interface from IP_PKTINFO.
			{"control messages", p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)},
		}); err != nil {
			return err
		}
		c.oob = ipv4.NewControlMessage(ipv4.FlagDst | ipv4.FlagInterface)
	} else {
		p := ipv6.NewPacketConn(c.ipc)
		c.p6 = p
		cf := ipv6.FlagHopLimit | ipv6.FlagDst | ipv6.FlagInterface
		if err := firstFailed([]step{
			{"traffic class", p.SetTrafficClass(tosNetworkControl)},
			{"hop limit", p.SetHopLimit(hopLimit)},
			{"multicast hop limit", p.SetMulticastHopLimit(hopLimit)},
			{"multicast loop", p.SetMulticastLoopback(false)},
			{"multicast interface", p.SetMulticastInterface(c.ifi)},
			{"control messages", p.SetControlMessage(cf, true)},
		}); err != nil {
			return err
		}
		c.oob = ipv6.NewControlMessage(cf)
	}
	if opts.Multicast {
		return c.JoinGroup()
	}
	return nil
}

// JoinGroup joins the VRRP multicast group on the Conn's interface, for an
// instance that starts using multicast after a reload. Joining twice is
// not an error.
func (c *Conn) JoinGroup() error { return c.membership(true) }

// LeaveGroup leaves the VRRP multicast group, when no instance on the
// interface uses multicast any more.
func (c *Conn) LeaveGroup() error { return c.membership(false) }

// membership joins (join) or leaves the VRRP group unless the Conn already
// has.
func (c *Conn) membership(join bool) error {
	if c.joined.Load() == join {
		return nil
	}
	g := &net.IPAddr{IP: group(c.fam).AsSlice()}
	var err error
	switch {
	case c.p4 != nil && join:
		err = c.p4.JoinGroup(c.ifi, g)
	case c.p4 != nil:
		err = c.p4.LeaveGroup(c.ifi, g)
	case join:
		err = c.p6.JoinGroup(c.ifi, g)
	default:
		err = c.p6.LeaveGroup(c.ifi, g)
	}
	if err != nil {
		verb := map[bool]string{true: "join", false: "leave"}[join]
		return fmt.Errorf("netio: %s %v on %s: %w", verb, g, c.ifi.Name, err)
	}
	c.joined.Store(join)
	return nil
}

// Family returns the Conn's address family.
func (c *Conn) Family() inet.Family { return c.fam }

// Interface returns the interface the Conn is bound to, as it was at Listen.
func (c *Conn) Interface() net.Interface { return *c.ifi }

// ReadPacket blocks until a VRRP packet arrives, the read deadline passes
// (an error satisfying os.ErrDeadlineExceeded) or the Conn is closed
// (net.ErrClosed); any other error is the socket's. buf must hold the whole
// IP packet for IPv4 (header included) or the VRRP message for IPv6: a
// larger packet is skipped and counted in ReceiveErrors, not truncated.
// 64 KiB is always enough; the link MTU is in practice. Packet.Data is a
// slice of buf. ReadPacket checks nothing of the VRRP message itself (see
// wire.Parse and the receive checks of RFC 5798 section 7.1).
func (c *Conn) ReadPacket(buf []byte) (Packet, error) {
	for {
		p, err := c.read(buf)
		if errors.Is(err, errBadPacket) {
			// A packet, not the socket, is at fault: count it and go on,
			// so that no sender can stop the reader.
			c.recvErrs.Add(1)
			continue
		}
		if err != nil {
			var ne net.Error
			if !errors.Is(err, net.ErrClosed) && !(errors.As(err, &ne) && ne.Timeout()) {
				c.recvErrs.Add(1)
			}
			return Packet{}, err
		}
		if p.Dst.IsMulticast() && !c.joined.Load() {
			// IPV6_MULTICAST_ALL does not filter unbound raw IPv6 sockets
			// (IP_MULTICAST_ALL does for IPv4): drop here the group
			// traffic another socket of the host joined.
			c.ignored.Add(1)
			continue
		}
		c.received.Add(1)
		return p, nil
	}
}

// errBadPacket marks the errors of read that concern one packet.
var errBadPacket = errors.New("bad packet")

func (c *Conn) read(buf []byte) (Packet, error) {
	n, oobn, flags, from, err := c.ipc.ReadMsgIP(buf, c.oob)
	if err != nil {
		return Packet{}, err
	}
	if flags&unix.MSG_TRUNC != 0 {
		return Packet{}, fmt.Errorf("%w: read on %s: packet from %v larger than the %d-byte buffer", errBadPacket, c.ifi.Name, from, len(buf))
	}
	var p Packet
	if src, ok := netip.AddrFromSlice(from.IP); ok {
		p.Src = src.Unmap().WithZone("")
	}
	if c.fam == inet.IPv4 {
		var cm ipv4.ControlMessage
		if err := cm.Parse(c.oob[:oobn]); err != nil {
			return Packet{}, fmt.Errorf("%w: read on %s: control message: %w", errBadPacket, c.ifi.Name, err)
		}
		p.IfIndex = cm.IfIndex
		// A raw IPv4 socket returns the IP header: take the TTL and the
		// destination from it (RFC 791), and the payload after it.
		b := buf[:n]
		if n < ipv4.HeaderLen || b[0]>>4 != 4 {
			return Packet{}, fmt.Errorf("%w: read on %s: %d bytes from %v are not an IPv4 packet", errBadPacket, c.ifi.Name, n, from)
		}
		ihl := int(b[0]&0x0f) * 4
		tot := int(binary.BigEndian.Uint16(b[2:4]))
		if ihl < ipv4.HeaderLen || ihl > n {
			return Packet{}, fmt.Errorf("%w: read on %s: IPv4 header length %d in %d bytes from %v", errBadPacket, c.ifi.Name, ihl, n, from)
		}
		if tot >= ihl && tot < n {
			b = b[:tot] // the kernel trims link padding, but be sure
		}
		p.TTL = int(b[8])
		p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		p.Data = b[ihl:]
	} else {
		var cm ipv6.ControlMessage
		if err := cm.Parse(c.oob[:oobn]); err != nil {
			return Packet{}, fmt.Errorf("%w: read on %s: control message: %w", errBadPacket, c.ifi.Name, err)
		}
		p.IfIndex = cm.IfIndex
		p.TTL = cm.HopLimit
		if dst, ok := netip.AddrFromSlice(cm.Dst); ok {
			p.Dst = dst.WithZone("")
		}
		p.Data = buf[:n]
	}
	return p, nil
}

// Send sends one VRRP message (the IP payload, as wire.Advert.Marshal
// returns it) from src to dst: the group or a unicast peer. src must be an
// address of the host (IPv4: the interface's primary address, or
// mcast_src_ip / unicast_src_ip; IPv6: the interface's link-local
// address); the checksum in payload must have been computed for this src
// and dst. An invalid src lets the kernel choose.
func (c *Conn) Send(payload []byte, src, dst netip.Addr) error {
	if err := c.send(payload, src, dst); err != nil {
		c.sendErrs.Add(1)
		return fmt.Errorf("netio: send %d bytes from %v to %v on %s: %w", len(payload), src, dst, c.ifi.Name, err)
	}
	c.sent.Add(1)
	return nil
}

func (c *Conn) send(payload []byte, src, dst netip.Addr) error {
	src, dst = src.Unmap(), dst.Unmap()
	if (c.fam == inet.IPv4) != dst.Is4() || (src.IsValid() && src.Is4() != dst.Is4()) {
		return fmt.Errorf("addresses do not match the %v socket", c.fam)
	}
	to := &net.IPAddr{IP: dst.AsSlice()}
	var err error
	if c.p4 != nil {
		cm := &ipv4.ControlMessage{IfIndex: c.ifi.Index}
		if src.IsValid() {
			cm.Src = src.AsSlice()
		}
		_, err = c.p4.WriteTo(payload, cm, to)
	} else {
		cm := &ipv6.ControlMessage{IfIndex: c.ifi.Index, HopLimit: hopLimit}
		if src.IsValid() {
			cm.Src = src.WithZone("").AsSlice()
		}
		if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() || dst.IsInterfaceLocalMulticast() {
			// A numeric zone: Go resolves a zone name in the network
			// namespace of the calling thread, which need not be the
			// socket's.
			to.Zone = strconv.Itoa(c.ifi.Index)
		}
		_, err = c.p6.WriteTo(payload, cm, to)
	}
	return err
}

// SetReadDeadline sets the deadline for ReadPacket; the zero time means
// none.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.ipc.SetReadDeadline(t) }

// Close closes the socket, leaving the group, and unblocks a ReadPacket in
// progress, which returns net.ErrClosed.
func (c *Conn) Close() error { return c.ipc.Close() }
