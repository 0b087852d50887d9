package netio

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"vigil/internal/inet"
	"vigil/internal/labtest"
	"vigil/vrrp/wire"
)

// TestConnMulticastAndUnicast: two hosts on one segment; adverts sent by
// one Conn arrive at the other unchanged, with TTL 255 and the source and
// destination they were sent with, over every family and version.
func TestConnMulticastAndUnicast(t *testing.T) {
	t.Parallel()
	h := lanHosts(t, "niocm", []string{"192.0.2.1/24", "192.0.2.11/24", "2001:db8::1/64"}, []string{"192.0.2.2/24", "2001:db8::2/64"})
	a, b := h[0], h[1]
	_, llA := ifaceIn(t, a, "eth0")
	ifB, llB := ifaceIn(t, b, "eth0")

	for _, tc := range []struct {
		name     string
		fam      inet.Family
		version  uint8
		src, dst netip.Addr
		vip      netip.Addr
	}{
		{"v2 IPv4 multicast", inet.IPv4, 2, netip.MustParseAddr("192.0.2.1"), wire.GroupV4, netip.MustParseAddr("192.0.2.100")},
		{"v3 IPv4 multicast", inet.IPv4, 3, netip.MustParseAddr("192.0.2.1"), wire.GroupV4, netip.MustParseAddr("192.0.2.100")},
		{"v3 IPv4 multicast from secondary", inet.IPv4, 3, netip.MustParseAddr("192.0.2.11"), wire.GroupV4, netip.MustParseAddr("192.0.2.100")},
		{"v3 IPv6 multicast", inet.IPv6, 3, llA, wire.GroupV6, netip.MustParseAddr("2001:db8::100")},
		{"v2 IPv4 unicast", inet.IPv4, 2, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.100")},
		{"v3 IPv4 unicast", inet.IPv4, 3, netip.MustParseAddr("192.0.2.11"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.100")},
		{"v3 IPv6 unicast link-local", inet.IPv6, 3, llA, llB, netip.MustParseAddr("2001:db8::100")},
		{"v3 IPv6 unicast global", inet.IPv6, 3, netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::100")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			multicast := tc.dst.IsMulticast()
			ca := listenIn(t, a, "eth0", tc.fam, Options{Multicast: multicast})
			cb := listenIn(t, b, "eth0", tc.fam, Options{Multicast: multicast})
			msg := advert(t, tc.version, 51, 150, tc.vip, tc.src, tc.dst)
			check(t, ca.Send(msg, tc.src, tc.dst))

			got := drain(t, cb, 1)
			if len(got) != 1 {
				t.Fatalf("received %d packets, want 1: %v", len(got), vrids(got))
			}
			p := got[0]
			if !bytes.Equal(p.Data, msg) {
				t.Errorf("received % x\n     sent % x", p.Data, msg)
			}
			if p.TTL != 255 || p.Src != tc.src || p.Dst != tc.dst || p.IfIndex != ifB.Index {
				t.Errorf("received from %v to %v TTL %d on ifindex %d, want from %v to %v TTL 255 on %d",
					p.Src, p.Dst, p.TTL, p.IfIndex, tc.src, tc.dst, ifB.Index)
			}
			// Multicast loop is off: the sender does not hear itself.
			if own := drain(t, ca, 0); len(own) != 0 {
				t.Errorf("sender received its own packets: %v", vrids(own))
			}
			if s := ca.Stats(); s != (Stats{Sent: 1}) {
				t.Errorf("sender stats %+v", s)
			}
			if s := cb.Stats(); s != (Stats{Received: 1}) {
				t.Errorf("receiver stats %+v", s)
			}
		})
	}

	t.Run("oversized packet skipped", func(t *testing.T) {
		ca := listenIn(t, a, "eth0", inet.IPv4, Options{})
		cb := listenIn(t, b, "eth0", inet.IPv4, Options{Multicast: true})
		src := netip.MustParseAddr("192.0.2.1")
		big := wire.Advert{Version: 3, Type: wire.TypeAdvertisement, VRID: 1, Priority: 100, Interval: 100}
		for i := range 10 {
			big.Addrs = append(big.Addrs, netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}))
		}
		check(t, ca.Send(must[[]byte](t)(big.Marshal(src, wire.GroupV4, wire.ChecksumPseudoHeader)), src, wire.GroupV4))
		sendAdvert(t, ca, 2, 100, netip.MustParseAddr("192.0.2.100"), src, wire.GroupV4)
		// 40 bytes hold the IPv4 header and a one-address advert, not ten.
		check(t, cb.SetReadDeadline(time.Now().Add(3*time.Second)))
		p, err := cb.ReadPacket(make([]byte, 40))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Data) != 12 || p.Data[1] != 2 {
			t.Errorf("read % x, want the VRID 2 advert", p.Data)
		}
		if s := cb.Stats(); s != (Stats{Received: 1, ReceiveErrors: 1}) {
			t.Errorf("stats %+v, want 1 received and 1 error", s)
		}
	})

	t.Run("send errors", func(t *testing.T) {
		checkSendErrors(t, listenIn(t, a, "eth0", inet.IPv4, Options{}), netip.MustParseAddr("192.0.2.1"))
	})
}

// TestConnIsolation: a Conn hears only its own interface, and a Conn that
// did not join the group hears only unicast, even when another socket on
// the same interface joined it.
func TestConnIsolation(t *testing.T) {
	t.Parallel()
	l := newLab(t, "nioci")
	check(t, l.AddSegment("lan"))
	check(t, l.AddSegment("lan2"))
	a := must[*netlabHost](t)(l.AddHost("a"))
	b := must[*netlabHost](t)(l.AddHost("b"))
	c := must[*netlabHost](t)(l.AddHost("c"))
	must[string](t)(l.Connect(a, "eth0", "lan", "192.0.2.1/24", "2001:db8::1/64"))
	must[string](t)(l.Connect(b, "eth0", "lan", "192.0.2.2/24", "2001:db8::2/64"))
	must[string](t)(l.Connect(b, "eth1", "lan2", "198.51.100.2/24", "2001:db8:1::2/64"))
	must[string](t)(l.Connect(c, "eth0", "lan2", "198.51.100.3/24", "2001:db8:1::3/64"))
	_, llA := ifaceIn(t, a, "eth0")
	_, llC := ifaceIn(t, c, "eth0")
	ifB0, _ := ifaceIn(t, b, "eth0")
	ifB1, _ := ifaceIn(t, b, "eth1")

	for _, fam := range []inet.Family{inet.IPv4, inet.IPv6} {
		t.Run(fam.String(), func(t *testing.T) {
			srcA, srcC := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.3")
			group, peerB, vip := wire.GroupV4, netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.100")
			if fam == inet.IPv6 {
				srcA, srcC = llA, llC
				group, peerB, vip = wire.GroupV6, netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::100")
			}
			sa := listenIn(t, a, "eth0", fam, Options{})
			sc := listenIn(t, c, "eth0", fam, Options{})
			b0 := listenIn(t, b, "eth0", fam, Options{Multicast: true})
			b1 := listenIn(t, b, "eth1", fam, Options{Multicast: true})
			bu := listenIn(t, b, "eth0", fam, Options{}) // unicast only

			// VRID 1: a to the group on lan; VRID 2: c to the group on
			// lan2; VRID 3: a to b's address on lan.
			sendAdvert(t, sa, 1, 100, vip, srcA, group)
			sendAdvert(t, sc, 2, 100, vip, srcC, group)
			sendAdvert(t, sa, 3, 100, vip, srcA, peerB)

			for _, r := range []struct {
				name  string
				c     *Conn
				ifi   int
				vrids []uint8
			}{
				{"b eth0 joined", b0, ifB0.Index, []uint8{1, 3}},
				{"b eth1 joined", b1, ifB1.Index, []uint8{2}},
				{"b eth0 unicast only", bu, ifB0.Index, []uint8{3}},
			} {
				got := drain(t, r.c, len(r.vrids))
				if !slices.Equal(vrids(got), r.vrids) {
					t.Errorf("%s received VRIDs %v, want %v", r.name, vrids(got), r.vrids)
				}
				for _, p := range got {
					if p.IfIndex != r.ifi {
						t.Errorf("%s received VRID %d on ifindex %d, want %d", r.name, p.Advert.VRID, p.IfIndex, r.ifi)
					}
				}
			}
		})
	}
}

// TestConnCloseAndDeadline: Close unblocks a blocked ReadPacket, and an
// expired deadline is reported as such without counting as an error.
func TestConnCloseAndDeadline(t *testing.T) {
	t.Parallel()
	a := lanHosts(t, "niocc", []string{"192.0.2.1/24"})[0]
	for _, fam := range []inet.Family{inet.IPv4, inet.IPv6} {
		c := listenIn(t, a, "eth0", fam, Options{Multicast: true})
		check(t, c.SetReadDeadline(time.Now().Add(-time.Second)))
		if _, err := c.ReadPacket(make([]byte, 1500)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("%v: read past deadline: %v", fam, err)
		}
		check(t, c.SetReadDeadline(time.Time{}))
		done := make(chan error, 1)
		go func() { // owned here: it ends when Close unblocks it
			_, err := c.ReadPacket(make([]byte, 1500))
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		check(t, c.Close())
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("%v: ReadPacket after Close: %v, want net.ErrClosed", fam, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%v: Close did not unblock ReadPacket", fam)
		}
		if s := c.Stats(); s != (Stats{}) {
			t.Errorf("%v: stats %+v, want none", fam, s)
		}
	}
	if _, err := Listen("nosuch0", inet.IPv4, Options{}); err == nil {
		t.Error("Listen on a missing interface succeeded")
	}
}

// TestConnSurvivesLinkFlap: a Conn and an Announcer opened before their
// interface goes down and up again keep working without being reopened:
// the group membership comes back with the link, and the first send
// after it is not lost.
func TestConnSurvivesLinkFlap(t *testing.T) {
	t.Parallel()
	a, b := twoHosts(t, "niocf")
	_, llA := ifaceIn(t, a, "eth0")
	ifaceIn(t, b, "eth0")
	src4 := netip.MustParseAddr("192.0.2.1")
	a4, a6 := listenIn(t, a, "eth0", inet.IPv4, Options{}), listenIn(t, a, "eth0", inet.IPv6, Options{})
	b4, b6 := listenIn(t, b, "eth0", inet.IPv4, Options{Multicast: true}), listenIn(t, b, "eth0", inet.IPv6, Options{Multicast: true})
	an := openAnnouncerIn(t, a, "eth0", AnnouncerConfig{})

	must[string](t)(a.Run("ip", "link", "set", "eth0", "down"))
	must[string](t)(b.Run("ip", "link", "set", "eth0", "down"))
	must[string](t)(b.Run("ip", "link", "set", "eth0", "up"))
	must[string](t)(a.Run("ip", "link", "set", "eth0", "up"))
	_, llA2 := ifaceIn(t, a, "eth0")
	if llA2 != llA {
		t.Fatalf("link-local changed across the flap: %v, then %v", llA, llA2)
	}

	check(t, an.Announce(netip.MustParseAddr("192.0.2.100")))
	sendAdvert(t, a4, 51, 100, netip.MustParseAddr("192.0.2.100"), src4, wire.GroupV4)
	sendAdvert(t, a6, 52, 100, netip.MustParseAddr("2001:db8::100"), llA, wire.GroupV6)
	expectVRIDs(t, b4, "IPv4 after the flap", 51)
	expectVRIDs(t, b6, "IPv6 after the flap", 52)
}

// TestConnOnVMAC: with use_vmac, keepalived's layout, a Conn on a macvlan
// carrying the virtual MAC 00:00:5e:00:01:VRID (RFC 5798 section 7.3)
// sends adverts whose Ethernet source is the VMAC, receives the group from
// the link, and an Announcer on it announces the VMAC.
func TestConnOnVMAC(t *testing.T) {
	t.Parallel()
	a, b := twoHosts(t, "niocv")
	const vmac = "00:00:5e:00:01:33"
	must[string](t)(a.Run("ip", "link", "add", "link", "eth0", "name", "vrrp.51", "address", vmac, "type", "macvlan", "mode", "private"))
	must[string](t)(a.Run("ip", "link", "set", "vrrp.51", "up"))
	must[string](t)(a.Run("ip", "addr", "add", "192.0.2.100/32", "dev", "vrrp.51"))
	ifV, llV := ifaceIn(t, a, "vrrp.51")
	_, llB := ifaceIn(t, b, "eth0")
	if ifV.HardwareAddr.String() != vmac {
		t.Fatalf("macvlan MAC %v", ifV.HardwareAddr)
	}

	s := openInHost(t, b, func() (*Sniffer, error) { return OpenSniffer("eth0") })
	labtest.Run(t, s.Run)

	src4 := netip.MustParseAddr("192.0.2.1")
	va4, va6 := listenIn(t, a, "vrrp.51", inet.IPv4, Options{Multicast: true}), listenIn(t, a, "vrrp.51", inet.IPv6, Options{Multicast: true})
	b4, b6 := listenIn(t, b, "eth0", inet.IPv4, Options{Multicast: true}), listenIn(t, b, "eth0", inet.IPv6, Options{Multicast: true})
	sendAdvert(t, va4, 51, 200, netip.MustParseAddr("192.0.2.100"), src4, wire.GroupV4)
	sendAdvert(t, va6, 51, 200, netip.MustParseAddr("2001:db8::100"), llV, wire.GroupV6)
	if got := drain(t, b4, 1); len(got) != 1 || got[0].Src != src4 {
		t.Errorf("b received over IPv4 %v, want one advert from %v", got, src4)
	}
	if got := drain(t, b6, 1); len(got) != 1 || got[0].Src != llV {
		t.Errorf("b received over IPv6 %v, want one advert from %v", got, llV)
	}
	for end := time.Now().Add(3 * time.Second); len(s.Seen()) < 2 && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
	}
	seen := s.Seen()
	if len(seen) != 2 {
		t.Errorf("sniffer on the peer saw %v, want the two adverts", seen)
	}
	for k, sig := range seen {
		if sig.MAC != vmac {
			t.Errorf("advert %+v left with Ethernet source %s, want the VMAC %s", k, sig.MAC, vmac)
		}
	}

	// The other direction: the group reaches the macvlan.
	src4b := netip.MustParseAddr("192.0.2.2")
	sendAdvert(t, b4, 52, 100, netip.MustParseAddr("192.0.2.100"), src4b, wire.GroupV4)
	sendAdvert(t, b6, 52, 100, netip.MustParseAddr("2001:db8::100"), llB, wire.GroupV6)
	expectVRIDs(t, va4, "VMAC Conn over IPv4", 52)
	expectVRIDs(t, va6, "VMAC Conn over IPv6", 52)

	an := openAnnouncerIn(t, a, "vrrp.51", AnnouncerConfig{})
	if an.MAC().String() != vmac {
		t.Errorf("Announcer on the macvlan announces %v, want the VMAC", an.MAC())
	}
	must[string](t)(b.Run("ip", "neigh", "replace", "192.0.2.100", "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale"))
	check(t, an.Announce(netip.MustParseAddr("192.0.2.100")))
	var got string
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if got = neighMAC(t, b, netip.MustParseAddr("192.0.2.100")); got == vmac {
			break
		}
	}
	if got != vmac {
		t.Errorf("peer maps the VIP to %q, want the VMAC", got)
	}
}

// TestConnLeaveAndJoinGroup: after LeaveGroup a Conn no longer receives the
// VRRP group's adverts, over either family, and after JoinGroup it does
// again; leaving or joining twice is no error.
func TestConnLeaveAndJoinGroup(t *testing.T) {
	t.Parallel()
	a, b := twoHosts(t, "niolj")
	_, llA := ifaceIn(t, a, "eth0")
	ifaceIn(t, b, "eth0")
	for _, tc := range []struct {
		fam             inet.Family
		src, group, vip netip.Addr
	}{
		{inet.IPv4, netip.MustParseAddr("192.0.2.1"), wire.GroupV4, netip.MustParseAddr("192.0.2.100")},
		{inet.IPv6, llA, wire.GroupV6, netip.MustParseAddr("2001:db8::100")},
	} {
		t.Run(tc.fam.String(), func(t *testing.T) {
			ca := listenIn(t, a, "eth0", tc.fam, Options{})
			cb := listenIn(t, b, "eth0", tc.fam, Options{Multicast: true})
			check(t, cb.LeaveGroup())
			check(t, cb.LeaveGroup())
			sendAdvert(t, ca, 51, 100, tc.vip, tc.src, tc.group)
			expectVRIDs(t, cb, "after LeaveGroup")
			check(t, cb.JoinGroup())
			check(t, cb.JoinGroup())
			sendAdvert(t, ca, 52, 100, tc.vip, tc.src, tc.group)
			expectVRIDs(t, cb, "after JoinGroup", 52)
		})
	}
}
