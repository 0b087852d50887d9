package drpath

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"vigil/netio"
)

// Link is the director's side of the path to a real server: the interface
// the real server is on and this host's address on that subnet (DR needs
// the real servers on the director's link).
type Link struct {
	Ifi *net.Interface
	Own netip.Prefix
}

// FindLink returns the link whose subnet holds real.
func FindLink(real netip.Addr) (Link, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return Link{}, err
	}
	for i := range ifs {
		ifi := &ifs[i]
		if ifi.Flags&net.FlagLoopback != 0 || len(ifi.HardwareAddr) != 6 {
			continue
		}
		as, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			n, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, _ := netip.AddrFromSlice(n.IP)
			ones, _ := n.Mask.Size()
			p := netip.PrefixFrom(ip.Unmap(), ones)
			if p.Addr().Is4() && p.Bits() < 32 && p.Masked().Contains(real) {
				return Link{Ifi: ifi, Own: p}, nil
			}
		}
	}
	return Link{}, fmt.Errorf("no interface of this host has an IPv4 address on the subnet of %s (lb_kind DR needs the real servers on the director's link)", real)
}

// Open returns an AF_PACKET socket on the link that receives ARP and sends
// whole frames. It needs CAP_NET_RAW.
func (l Link) Open() (*packet.Conn, error) {
	c, err := packet.Listen(l.Ifi, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket on %s: %w", l.Ifi.Name, err)
	}
	return c, nil
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// SendARP broadcasts an ARP request from sender (this host's address, or
// 0.0.0.0 for an RFC 5227 probe) for target on the link.
func (l Link) SendARP(conn *packet.Conn, sender, target netip.Addr) error {
	req := netio.ARP{EthDst: broadcast, EthSrc: l.Ifi.HardwareAddr, Op: netio.ARPRequest,
		SenderMAC: l.Ifi.HardwareAddr, SenderIP: sender, TargetMAC: make(net.HardwareAddr, 6), TargetIP: target}
	b, err := req.MarshalBinary()
	if err != nil {
		return err
	}
	_, err = conn.WriteTo(b, &packet.Addr{HardwareAddr: broadcast})
	return err
}

// Resolve returns real's MAC from the neighbour table, or asks by ARP from
// this host's own address, as the kernel would, waiting up to wait.
func (l Link) Resolve(ctx context.Context, conn *packet.Conn, real netip.Addr, wait time.Duration) (net.HardwareAddr, error) {
	if mac := Neighbours()[real.String()+" "+l.Ifi.Name]; mac != nil {
		return mac, nil
	}
	if err := l.SendARP(conn, l.Own.Addr(), real); err != nil {
		return nil, fmt.Errorf("ARP request for %s on %s: %w", real, l.Ifi.Name, err)
	}
	var mac net.HardwareAddr
	readARP(ctx, conn, time.Now().Add(wait), func(a netio.ARP) bool {
		if a.Op == netio.ARPReply && a.SenderIP == real {
			mac = a.SenderMAC
		}
		return mac != nil
	})
	if mac == nil {
		return nil, fmt.Errorf("%s did not answer ARP on %s", real, l.Ifi.Name)
	}
	return mac, nil
}

// Unused returns the first of cands that nobody claims: RFC 5227 probes
// (sender 0.0.0.0, so no neighbour cache changes anywhere) go unanswered
// for wait. It returns the zero Addr when every candidate is taken.
func (l Link) Unused(ctx context.Context, conn *packet.Conn, cands []netip.Addr, wait time.Duration) netip.Addr {
	for _, c := range cands {
		if err := l.SendARP(conn, netip.IPv4Unspecified(), c); err != nil {
			return netip.Addr{}
		}
		taken := false
		readARP(ctx, conn, time.Now().Add(wait), func(a netio.ARP) bool {
			taken = a.Op == netio.ARPReply && a.SenderIP == c && !slices.Equal(a.SenderMAC, l.Ifi.HardwareAddr)
			return taken
		})
		if !taken && ctx.Err() == nil {
			return c
		}
	}
	return netip.Addr{}
}

// Reaches sends tries SYNs (100 ms apart) from spoofed to vip:port through
// the real server's MAC and reports whether the real server asked by ARP
// for spoofed (to answer) within wait of the last, with what was seen.
func (l Link) Reaches(ctx context.Context, conn *packet.Conn, mac net.HardwareAddr, spoofed, vip netip.Addr, port uint16, tries int, wait time.Duration) (bool, string, error) {
	sport := uint16(32768 + rand.N(28000))
	for i := 0; i < tries; i++ {
		b, err := SYN(mac, l.Ifi.HardwareAddr, spoofed, vip, sport, port, rand.Uint32())
		if err != nil {
			return false, "", err
		}
		if _, err := conn.WriteTo(b, &packet.Addr{HardwareAddr: mac}); err != nil {
			return false, "", fmt.Errorf("send on %s: %w", l.Ifi.Name, err)
		}
		if i < tries-1 {
			select {
			case <-ctx.Done():
				return false, "", ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	seen := ""
	readARP(ctx, conn, time.Now().Add(wait), func(a netio.ARP) bool {
		if a.Op == netio.ARPRequest && a.TargetIP == spoofed && slices.Equal(a.SenderMAC, mac) {
			seen = fmt.Sprintf("%s asked by ARP who has %s, to answer it", a.SenderIP, spoofed)
		}
		return seen != ""
	})
	return seen != "", seen, ctx.Err()
}

// readARP hands every ARP packet read before deadline (or ctx's end) to
// seen, until it returns true.
func readARP(ctx context.Context, conn *packet.Conn, deadline time.Time, seen func(netio.ARP) bool) {
	ReadFrames(ctx, conn, deadline, func(b []byte) bool {
		a, err := netio.ParseARP(b)
		return err == nil && seen(a)
	})
}

// ReadFrames hands every frame conn reads before deadline (or ctx's end)
// to seen, until it returns true.
func ReadFrames(ctx context.Context, conn *packet.Conn, deadline time.Time, seen func([]byte) bool) {
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 2048)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil || seen(buf[:n]) {
			return
		}
	}
}
