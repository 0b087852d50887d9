package netio

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"vigil/internal/inet"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
	"vigil/vrrp/wire"
)

type netlabHost = netlab.Host

// newLab returns a lab with prefix whose namespaces are removed when t
// ends, after the sockets the test opened (cleanups run last-in first-out).
func newLab(t *testing.T, prefix string) *netlab.Lab {
	t.Helper()
	testenv.RequireRoot(t)
	return labtest.New(t, prefix)
}

// twoHosts returns hosts a (192.0.2.1, 2001:db8::1) and b (192.0.2.2,
// 2001:db8::2), each with eth0 on segment "lan" of a lab with prefix. It
// skips (fails under CI) unless the test runs as root with tools.
func twoHosts(t *testing.T, prefix string, tools ...string) (a, b *netlabHost) {
	t.Helper()
	testenv.RequireLab(t, tools...)
	h := lanHosts(t, prefix, []string{"192.0.2.1/24", "2001:db8::1/64"}, []string{"192.0.2.2/24", "2001:db8::2/64"})
	return h[0], h[1]
}

// lanHosts returns one host per address list, named a, b, c, ..., each
// with eth0 and those addresses on segment "lan" of a lab with prefix.
func lanHosts(t *testing.T, prefix string, addrs ...[]string) []*netlabHost {
	t.Helper()
	l := newLab(t, prefix)
	check(t, l.AddSegment("lan"))
	var hosts []*netlabHost
	for i, a := range addrs {
		h := must[*netlabHost](t)(l.AddHost(string(rune('a' + i))))
		must[string](t)(l.Connect(h, "eth0", "lan", a...))
		hosts = append(hosts, h)
	}
	return hosts
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ifaceIn returns interface ifname of h, and its first link-local address,
// waiting for the kernel to assign one.
func ifaceIn(t *testing.T, h *netlab.Host, ifname string) (net.Interface, netip.Addr) {
	t.Helper()
	var ifi net.Interface
	var ll netip.Addr
	check(t, h.Do(func() error {
		deadline := time.Now().Add(5 * time.Second)
		for {
			i, err := net.InterfaceByName(ifname)
			if err != nil {
				return err
			}
			ifi = *i
			addrs, err := i.Addrs()
			if err != nil {
				return err
			}
			for _, a := range addrs {
				if ipn, ok := a.(*net.IPNet); ok {
					if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
						ll = ip
						return nil
					}
				}
			}
			if time.Now().After(deadline) {
				return errors.New("no link-local address on " + ifname)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}))
	return ifi, ll
}

// openInHost runs open in h's namespace (where what it opens stays) and
// closes what it opened when t ends.
func openInHost[T io.Closer](t *testing.T, h *netlab.Host, open func() (T, error)) T {
	t.Helper()
	var v T
	check(t, h.Do(func() (err error) {
		v, err = open()
		return err
	}))
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// listenIn opens a Conn in h's namespace, closed when t ends.
func listenIn(t *testing.T, h *netlab.Host, ifname string, fam inet.Family, opts Options) *Conn {
	t.Helper()
	return openInHost(t, h, func() (*Conn, error) { return Listen(ifname, fam, opts) })
}

// advert marshals a VRRP advert with one address from src to dst.
func advert(t *testing.T, version, vrid, prio uint8, vip, src, dst netip.Addr) []byte {
	t.Helper()
	a := wire.Advert{Version: version, Type: wire.TypeAdvertisement, VRID: vrid, Priority: prio, Interval: 100, Addrs: []netip.Addr{vip}}
	if version == 2 {
		a.Interval, a.AuthType, a.AuthData = 1, wire.AuthPass, wire.Password("vigil")
	}
	b, err := a.Marshal(src, dst, wire.ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sender is what a Conn and a Socket share for sending.
type sender interface {
	Send(msg []byte, src, dst netip.Addr) error
	Stats() Stats
}

// checkSendErrors checks that s, an IPv4 sender on a host whose address is
// own, fails to send from an address the host does not have and to an IPv6
// group, and counts both failures.
func checkSendErrors(t *testing.T, s sender, own netip.Addr) {
	t.Helper()
	msg := advert(t, 3, 51, 150, netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("203.0.113.9"), wire.GroupV4)
	if err := s.Send(msg, netip.MustParseAddr("203.0.113.9"), wire.GroupV4); err == nil {
		t.Error("Send from an address the host does not have succeeded")
	}
	if err := s.Send(msg, own, wire.GroupV6); err == nil {
		t.Error("Send to an IPv6 group on an IPv4 socket succeeded")
	}
	if st := s.Stats(); st != (Stats{SendErrors: 2}) {
		t.Errorf("stats %+v, want 2 send errors", st)
	}
}

// sendAdvert sends over s a VRRPv3 advert of vrid at prio, claiming vip,
// from src to dst.
func sendAdvert(t *testing.T, s sender, vrid, prio uint8, vip, src, dst netip.Addr) {
	t.Helper()
	check(t, s.Send(advert(t, 3, vrid, prio, vip, src, dst), src, dst))
}

// expectVRIDs drains c and checks that it received adverts of the VRIDs
// want, in that order (none if want is empty).
func expectVRIDs(t *testing.T, c *Conn, what string, want ...uint8) {
	t.Helper()
	if got := vrids(drain(t, c, len(want))); !slices.Equal(got, want) {
		t.Errorf("%s: received VRIDs %v, want %v", what, got, want)
	}
}

// received is what a test keeps of a packet.
type received struct {
	Packet
	Advert wire.Advert
}

// drain reads from c: up to want packets, waiting at most 3 s for them,
// then any more until nothing arrives for a short quiet time. It returns
// what it read, each packet checked to be a well-formed VRRP message with a
// good checksum.
func drain(t *testing.T, c *Conn, want int) []received {
	t.Helper()
	var out []received
	deadline := time.Now().Add(3 * time.Second)
	for {
		buf := make([]byte, 65536)
		if len(out) >= want {
			deadline = time.Now().Add(200 * time.Millisecond)
		}
		check(t, c.SetReadDeadline(deadline))
		p, err := c.ReadPacket(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatalf("ReadPacket: %v", err)
		}
		a := parseChecked(t, c, p)
		p.Data = slices.Clone(p.Data)
		out = append(out, received{p, a})
	}
}

// parseChecked parses p, read from c, as a VRRP message of c's family,
// failing t if it is malformed or its checksum does not verify.
func parseChecked(t *testing.T, c *Conn, p Packet) wire.Advert {
	t.Helper()
	a, err := wire.Parse(p.Data, c.Family())
	if err != nil {
		t.Fatalf("received % x from %v: %v", p.Data, p.Src, err)
	}
	if !wire.VerifyChecksum(p.Data, p.Src, p.Dst, wire.ChecksumPseudoHeader) {
		t.Errorf("received %v from %v to %v with a bad checksum", a, p.Src, p.Dst)
	}
	return a
}

// vrids lists the VRIDs of packets, in order.
func vrids(rs []received) []uint8 {
	var v []uint8
	for _, r := range rs {
		v = append(v, r.Advert.VRID)
	}
	return v
}
