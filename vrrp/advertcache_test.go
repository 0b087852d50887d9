package vrrp_test

import (
	"net/netip"
	"testing"
	"time"

	"vigil/internal/inet"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

// A master sends the adverts it built while they stay right (sendAdvert);
// these tests hold the two events, besides a priority change, that make
// them wrong while it stays MASTER: a peer found to use the old unicast
// checksum, and a reload.

// TestMasterAdoptsOldUnicastChecksum: a unicast VRRPv3 master that hears a
// peer checksum its adverts the old way (over the multicast group, what
// keepalived's old_unicast_checksum sends) sends its next adverts that way
// too (Config.OldUnicastChecksum).
func TestMasterAdoptsOldUnicastChecksum(t *testing.T) {
	peer := netip.MustParseAddr("192.0.2.20")
	c := v3(150)
	c.Peers = []netip.Addr{peer}
	m := start(t, c, t0)
	m.Advance(at(10 * time.Second))
	wantState(t, m, vrrp.StateMaster)
	if rd := m.Ready(); len(rd.Adverts) != 1 || !wire.VerifyChecksum(rd.Adverts[0].Data, me, peer, wire.ChecksumPseudoHeader) {
		t.Fatalf("the first advert is not checksummed over its unicast destination")
	}
	// The peer's advert, lower priority, checksummed over 224.0.0.18
	// although it is sent to us.
	a := wire.Advert{Version: 3, Type: wire.TypeAdvertisement, VRID: c.VRID, Priority: 100, Interval: 100, Addrs: []netip.Addr{vip.Addr()}}
	b, err := a.Marshal(peer, wire.GroupV4, wire.ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	mustStep(t, m, at(10500*time.Millisecond), vrrp.Packet{Data: b, Src: peer, Dst: me, TTL: 255})
	wantState(t, m, vrrp.StateMaster)
	m.Ready()
	m.Advance(at(12 * time.Second))
	rd := m.Ready()
	if len(rd.Adverts) != 1 {
		t.Fatalf("%d adverts at the next Adver_Timer, want 1", len(rd.Adverts))
	}
	if o := rd.Adverts[0]; !wire.VerifyChecksum(o.Data, me, wire.GroupV4, wire.ChecksumPseudoHeader) {
		t.Errorf("after a peer's old-checksum advert the master still checksums over %v, want over %v as the peer does", o.Dst, wire.GroupV4)
	}
}

// TestMasterReloadChangesAdverts: a reload of a MASTER that changes what
// its adverts carry (the VIPs, the interval) has the next adverts carry
// the new configuration.
func TestMasterReloadChangesAdverts(t *testing.T) {
	c := v3(150)
	m := start(t, c, t0)
	m.Advance(at(10 * time.Second))
	wantState(t, m, vrrp.StateMaster)
	m.Ready()
	m.Advance(at(11 * time.Second))
	m.Ready()

	c.VIPs = []netip.Prefix{vip, netip.MustParsePrefix("198.51.100.52/32")}
	c.AdvertInterval = 2 * time.Second
	if err := m.Reload(c, at(11500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	for _, when := range []time.Duration{11500 * time.Millisecond, 13500 * time.Millisecond} {
		m.Advance(at(when))
		as := adverts(t, m.Ready(), inet.IPv4)
		if len(as) != 1 || len(as[0].Addrs) != 2 || as[0].AdverInterval() != 2*time.Second {
			t.Errorf("adverts at %v after the reload: %+v, want one with 2 addresses and a 2 s interval", when, as)
		}
	}
}
