package check

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// PingConfig configures a PING_CHECK: one ICMP (or ICMPv6) echo request to
// Target.Addr; up when the matching echo reply arrives within
// connect_timeout. The port of Target.Addr is ignored.
type PingConfig struct {
	Target
}

// Ping is a PING_CHECK. It uses an unprivileged ICMP socket when
// net.ipv4.ping_group_range admits vigil's group, and a raw socket (needing
// CAP_NET_RAW) otherwise. keepalived instead widens ping_group_range for
// root; vigil leaves the host's sysctl alone.
type Ping struct {
	cfg PingConfig
}

// NewPing validates cfg and returns the checker; it opens nothing.
func NewPing(cfg PingConfig) (*Ping, error) {
	if err := cfg.Target.validate(false); err != nil {
		return nil, fmt.Errorf("PING_CHECK: %w", err)
	}
	if cfg.BindPort != 0 {
		return nil, errors.New("PING_CHECK: bind_port has no meaning for ICMP")
	}
	cfg.Addr = netip.AddrPortFrom(cfg.Addr.Addr().Unmap(), 0)
	return &Ping{cfg: cfg}, nil
}

func (c *Ping) String() string { return "PING_CHECK " + c.cfg.Addr.Addr().String() }

// Check sends one echo request and waits for its reply.
func (c *Ping) Check(ctx context.Context) Result {
	start := time.Now()
	dst := c.cfg.Addr.Addr()
	what := "ping " + dst.String()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	conn, raw, err := c.open(ctx)
	if err != nil {
		return down(what+": open ICMP socket: "+describe(err), start)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var idb [2]byte
	token := make([]byte, 16)
	rand.Read(idb[:])
	rand.Read(token)
	id, seq := int(binary.BigEndian.Uint16(idb[:])), 1
	var typ, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if dst.Is6() {
		typ, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: token}}
	// For ICMPv6 the kernel fills the checksum in; Marshal(nil) leaves it
	// zero there and computes it for ICMPv4.
	wire, err := msg.Marshal(nil)
	if err != nil {
		return down(what+": "+err.Error(), start)
	}
	ip := net.IP(dst.AsSlice())
	var to net.Addr = &net.UDPAddr{IP: ip, Zone: c.zone()}
	if raw {
		to = &net.IPAddr{IP: ip, Zone: c.zone()}
	}
	if _, err := conn.WriteTo(wire, to); err != nil {
		return down(what+": send: "+describe(err), start)
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if isTimeout(err) && !errors.Is(ctx.Err(), context.Canceled) {
				return down(fmt.Sprintf("%s: no echo reply within %v", what, c.cfg.Timeout), start)
			}
			return down(what+": "+describe(err), start)
		}
		if src, ok := addrOf(from); !ok || src != dst {
			continue // a raw socket sees every ICMP packet of the host
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		// The kernel rewrites the ID of an unprivileged socket's echo.
		if !ok || echo.Seq != seq || !bytes.Equal(echo.Data, token) || (raw && echo.ID != id) {
			continue
		}
		kind := "ICMP socket"
		if raw {
			kind = "raw socket"
		}
		return up(fmt.Sprintf("%s: echo reply in %v (%s)", what, time.Since(start).Round(time.Microsecond), kind), start)
	}
}

func (c *Ping) zone() string {
	if z := c.cfg.Addr.Addr().Zone(); z != "" {
		return z
	}
	if c.cfg.Addr.Addr().IsLinkLocalUnicast() {
		return c.cfg.BindIf
	}
	return ""
}

func addrOf(a net.Addr) (netip.Addr, bool) {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	default:
		return netip.Addr{}, false
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr.Unmap(), ok
}

// open returns an unprivileged ICMP socket if the host allows one, else a
// raw socket; raw reports which.
func (c *Ping) open(ctx context.Context) (conn net.PacketConn, raw bool, err error) {
	v6 := c.cfg.Addr.Addr().Is6()
	conn, err = c.openDgram(v6)
	if err == nil {
		return conn, false, nil
	}
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EPROTONOSUPPORT) {
		return nil, false, err
	}
	network, laddr := "ip4:icmp", "0.0.0.0"
	if v6 {
		network, laddr = "ip6:ipv6-icmp", "::"
	}
	if c.cfg.BindAddr.IsValid() {
		laddr = c.cfg.BindAddr.String()
	}
	lc := net.ListenConfig{}
	if c.cfg.Fwmark != 0 || c.cfg.BindIf != "" {
		mark, dev := c.cfg.Fwmark, c.cfg.BindIf
		lc.Control = func(_, _ string, rc syscall.RawConn) error { return sockopts(rc, mark, dev, false) }
	}
	conn, err = lc.ListenPacket(ctx, network, laddr)
	if err != nil {
		return nil, false, fmt.Errorf("no unprivileged ping socket (net.ipv4.ping_group_range) and raw socket refused: %w", err)
	}
	return conn, true, nil
}

// openDgram opens an unprivileged ICMP socket (SOCK_DGRAM, IPPROTO_ICMP),
// which the kernel grants to groups in net.ipv4.ping_group_range; it
// filters replies to this socket by echo ID for us.
func (c *Ping) openDgram(v6 bool) (net.PacketConn, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		return nil, err
	}
	closeFD := func(err error) (net.PacketConn, error) {
		unix.Close(fd)
		return nil, err
	}
	if c.cfg.Fwmark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(c.cfg.Fwmark)); err != nil {
			return closeFD(fmt.Errorf("fwmark: %w", err))
		}
	}
	if c.cfg.BindIf != "" {
		if err := unix.BindToDevice(fd, c.cfg.BindIf); err != nil {
			return closeFD(fmt.Errorf("bind_if %s: %w", c.cfg.BindIf, err))
		}
	}
	if b := c.cfg.BindAddr; b.IsValid() {
		var sa unix.Sockaddr
		if v6 {
			sa6 := &unix.SockaddrInet6{Addr: b.As16()}
			if b.Zone() != "" {
				if ifi, err := net.InterfaceByName(b.Zone()); err == nil {
					sa6.ZoneId = uint32(ifi.Index)
				}
			}
			sa = sa6
		} else {
			sa = &unix.SockaddrInet4{Addr: b.As4()}
		}
		if err := unix.Bind(fd, sa); err != nil {
			return closeFD(fmt.Errorf("bindto %s: %w", b, err))
		}
	}
	f := os.NewFile(uintptr(fd), "icmp")
	conn, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	return conn, nil
}
