package netio

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/packet"
)

// openAnnouncerIn opens an Announcer in h's namespace, closed when t ends.
func openAnnouncerIn(t *testing.T, h *netlabHost, ifname string, cfg AnnouncerConfig) *Announcer {
	t.Helper()
	return openInHost(t, h, func() (*Announcer, error) { return OpenAnnouncer(ifname, cfg) })
}

// neighMAC returns the link-layer address h's neighbour table holds for ip
// on eth0, or "".
func neighMAC(t *testing.T, h *netlabHost, ip netip.Addr) string {
	t.Helper()
	out, err := h.Run("ip", "neigh", "show", ip.String(), "dev", "eth0")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// TestAnnouncerUpdatesNeighbours: after a gratuitous ARP (both forms) or an
// unsolicited NA, a peer that cached another MAC for the address maps it to
// the announcer's. For NA this also proves the kernel accepted the frame:
// it drops a Neighbor Advertisement with a bad checksum, a hop limit other
// than 255 or a Solicited flag to a multicast destination (RFC 4861
// section 7.1.2), and keeps the old address without the Override flag.
func TestAnnouncerUpdatesNeighbours(t *testing.T) {
	t.Parallel()
	a, b := twoHosts(t, "nioan")
	ifA, _ := ifaceIn(t, a, "eth0")
	ifaceIn(t, b, "eth0")
	// Linux creates entries from gratuitous ARP only with arp_accept; the
	// test primes the entries anyway, so this only rules out the other
	// reason for an update not to happen.
	must[string](t)(b.Run("sysctl", "-qw", "net.ipv4.conf.all.arp_accept=1"))

	const stale = "02:00:00:00:00:99"
	vmac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 0x33}
	for _, tc := range []struct {
		name string
		cfg  AnnouncerConfig
		ip   netip.Addr
		want string
	}{
		{"GARP request", AnnouncerConfig{}, netip.MustParseAddr("192.0.2.100"), ifA.HardwareAddr.String()},
		{"GARP reply", AnnouncerConfig{ARPReply: true}, netip.MustParseAddr("192.0.2.101"), ifA.HardwareAddr.String()},
		{"GARP VMAC", AnnouncerConfig{MAC: vmac}, netip.MustParseAddr("192.0.2.102"), vmac.String()},
		{"NA", AnnouncerConfig{}, netip.MustParseAddr("2001:db8::100"), ifA.HardwareAddr.String()},
		{"NA router", AnnouncerConfig{Router: true}, netip.MustParseAddr("2001:db8::101"), ifA.HardwareAddr.String()},
		{"NA VMAC", AnnouncerConfig{MAC: vmac}, netip.MustParseAddr("2001:db8::102"), vmac.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			must[string](t)(b.Run("ip", "neigh", "replace", tc.ip.String(), "lladdr", stale, "dev", "eth0", "nud", "stale"))
			if got := neighMAC(t, b, tc.ip); got != stale {
				t.Fatalf("primed entry for %v is %q, want %s", tc.ip, got, stale)
			}
			an := openAnnouncerIn(t, a, "eth0", tc.cfg)
			check(t, an.Announce(tc.ip))
			var got string
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				if got = neighMAC(t, b, tc.ip); got == tc.want {
					break
				}
			}
			if got != tc.want {
				t.Errorf("after announcing %v, the peer maps it to %q, want %s", tc.ip, got, tc.want)
			}
			s := an.Stats()
			if tc.ip.Is4() && s != (AnnouncerStats{ARPs: 1}) || tc.ip.Is6() && s != (AnnouncerStats{NAs: 1}) {
				t.Errorf("stats %+v", s)
			}
		})
	}

	t.Run("link-local found late", func(t *testing.T) {
		must[string](t)(a.Run("ip", "link", "add", "dum0", "type", "veth", "peer", "name", "dum1"))
		an := openAnnouncerIn(t, a, "dum0", AnnouncerConfig{})
		vip := netip.MustParseAddr("2001:db8::100")
		// Announce looks the address up in the calling thread's namespace.
		// The first send after the link comes up must not be lost to an
		// ENETDOWN kept from the Announcer's opening on a down link (a
		// bound packet socket kept one; the unbound one must not fail).
		if err := a.Do(func() error { return an.Announce(vip) }); err == nil {
			t.Error("NA from a down interface without a link-local address succeeded")
		}
		must[string](t)(a.Run("ip", "link", "set", "dum1", "up"))
		must[string](t)(a.Run("ip", "link", "set", "dum0", "up"))
		ifaceIn(t, a, "dum0")
		check(t, a.Do(func() error { return an.Announce(vip) }))
		if s := an.Stats(); s != (AnnouncerStats{NAs: 1, Errors: 1}) {
			t.Errorf("stats %+v", s)
		}
	})

	t.Run("errors", func(t *testing.T) {
		an := openAnnouncerIn(t, a, "eth0", AnnouncerConfig{})
		if err := an.Announce(netip.Addr{}); err == nil {
			t.Error("announcing the zero Addr succeeded")
		}
		if err := an.Announce(netip.MustParseAddr("ff02::1")); err == nil {
			t.Error("announcing a multicast address succeeded")
		}
		if s := an.Stats(); s != (AnnouncerStats{Errors: 2}) {
			t.Errorf("stats %+v", s)
		}
		if _, err := OpenAnnouncer("eth0", AnnouncerConfig{MAC: net.HardwareAddr{1, 2, 3}}); err == nil {
			t.Error("OpenAnnouncer with a 3-byte MAC succeeded")
		}
	})
}

// TestAnnouncerSendsWithoutAllocating: Announce allocates nothing, for
// gratuitous ARP and NA alike, and each call puts on the wire the frame
// GratuitousARP or UnsolicitedNA builds (a peer's packet socket reads
// them). Through mdlayher/packet's Conn.WriteTo a frame cost about 590
// bytes (issue #7).
func TestAnnouncerSendsWithoutAllocating(t *testing.T) { // not parallel: AllocsPerRun
	a, b := twoHosts(t, "niana")
	ifA, llA := ifaceIn(t, a, "eth0")
	ifB, _ := ifaceIn(t, b, "eth0")
	for _, tc := range []struct {
		name string
		ip   netip.Addr
		et   uint16
		want func(ip netip.Addr) ([]byte, error)
	}{
		{"GARP", netip.MustParseAddr("192.0.2.100"), EtherTypeARP, func(ip netip.Addr) ([]byte, error) {
			return GratuitousARP(ifA.HardwareAddr, ip, false)
		}},
		{"NA", netip.MustParseAddr("2001:db8::100"), EtherTypeIPv6, func(ip netip.Addr) ([]byte, error) {
			return UnsolicitedNA(ifA.HardwareAddr, ip, llA, false)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := must[[]byte](t)(tc.want(tc.ip))
			c := openInHost(t, b, func() (*packet.Conn, error) { return packet.Listen(&ifB, packet.Raw, int(tc.et), nil) })
			an := openAnnouncerIn(t, a, "eth0", AnnouncerConfig{})
			check(t, an.Announce(tc.ip)) // the link-local lookup, once
			const runs = 50
			if n := testing.AllocsPerRun(runs, func() {
				if err := an.Announce(tc.ip); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Announce(%v) allocates %v times, want 0", tc.ip, n)
			}
			// AllocsPerRun runs the function once more than runs.
			sent := 1 + runs + 1
			if s := an.Stats(); s.ARPs+s.NAs != uint64(sent) || s.Errors != 0 {
				t.Errorf("stats %+v, want %d sent", s, sent)
			}
			buf := make([]byte, 1500)
			got := 0
			check(t, c.SetReadDeadline(time.Now().Add(2*time.Second)))
			for got < sent {
				n, _, err := c.ReadFrom(buf)
				if err != nil {
					t.Fatalf("the peer read %d frames of %d: %v", got, sent, err)
				}
				if tc.et == EtherTypeIPv6 && (n < len(want) || buf[ethHeaderLen+6] != icmpv6Proto) {
					continue // the peer's own traffic (MLD, DAD)
				}
				if !bytes.Equal(buf[:n], want) {
					t.Fatalf("frame % x, want % x", buf[:n], want)
				}
				got++
			}
		})
	}
}
