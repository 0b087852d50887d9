package vrrp_test

import (
	"net/netip"
	"testing"
	"time"

	"vigil/internal/inet"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

var (
	t0   = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	vip  = netip.MustParsePrefix("198.51.100.51/32")
	vip6 = netip.MustParsePrefix("2001:db8::51/128")
	me   = netip.MustParseAddr("192.0.2.10")
)

func at(d time.Duration) time.Time { return t0.Add(d) }

// v3 is an IPv4 VRRPv3 instance with priority prio at 192.0.2.10.
func v3(prio uint8) vrrp.Config {
	return vrrp.Config{Name: "VI_1", VRID: 51, Version: 3, Priority: prio, AdvertInterval: time.Second,
		SrcAddr: me, VIPs: []netip.Prefix{vip}}
}

// owner is an address owner configured as keepalived needs it to take
// over at startup: priority 255 and state MASTER.
func owner() vrrp.Config {
	c := v3(255)
	c.InitialState = vrrp.StateMaster
	return c
}

// v2 is the same with version 2 and a password.
func v2(prio uint8) vrrp.Config {
	c := v3(prio)
	c.Version, c.AuthType, c.AuthPass = 2, wire.AuthPass, "secret"
	return c
}

// tb is what testing.TB and *rapid.T share.
type tb interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func start(t *testing.T, c vrrp.Config, now time.Time) *vrrp.Instance {
	t.Helper()
	in, err := vrrp.New(c, now)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// packet is an advert from src for c's virtual router, as a peer would
// send it, with priority prio and interval field ival (seconds for v2,
// centiseconds for v3).
func packet(t tb, c vrrp.Config, src string, prio uint8, ival uint16) vrrp.Packet {
	t.Helper()
	a := wire.Advert{Version: uint8(c.Version), Type: wire.TypeAdvertisement, VRID: c.VRID, Priority: prio, Interval: ival}
	for _, p := range c.VIPs {
		a.Addrs = append(a.Addrs, p.Addr())
	}
	if c.Version == 2 {
		a.AuthType, a.AuthData = c.AuthType, wire.Password(c.AuthPass)
	}
	s := netip.MustParseAddr(src)
	dst := wire.GroupV4
	if s.Is6() {
		dst = wire.GroupV6
	}
	b, err := a.Marshal(s, dst, c.ChecksumMode)
	if err != nil {
		t.Fatal(err)
	}
	return vrrp.Packet{Data: b, Src: s, Dst: dst, TTL: 255}
}

// adverts decodes what rd asks to send.
func adverts(t tb, rd vrrp.Ready, fam inet.Family) []wire.Advert {
	t.Helper()
	var as []wire.Advert
	for _, o := range rd.Adverts {
		a, err := wire.Parse(o.Data, fam)
		if err != nil {
			t.Fatalf("engine sent an unparsable advert: %v", err)
		}
		if !wire.VerifyChecksum(o.Data, me, o.Dst, wire.ChecksumPseudoHeader) && fam == inet.IPv4 {
			t.Fatalf("engine sent a bad checksum: % x", o.Data)
		}
		as = append(as, a)
	}
	return as
}

func mustStep(t *testing.T, in *vrrp.Instance, now time.Time, ev vrrp.Event) {
	t.Helper()
	if err := in.Step(now, ev); err != nil {
		t.Fatalf("step %T: %v", ev, err)
	}
}

// wantOneAdvert checks that rd sends exactly one IPv4 advert, with
// priority prio.
func wantOneAdvert(t *testing.T, rd vrrp.Ready, prio uint8) {
	t.Helper()
	if as := adverts(t, rd, inet.IPv4); len(as) != 1 || as[0].Priority != prio {
		t.Errorf("adverts %v, want one with priority %d", as, prio)
	}
}

func wantState(t *testing.T, in *vrrp.Instance, want vrrp.State) {
	t.Helper()
	if got := in.State(); got != want {
		t.Fatalf("state %v, want %v (%s)", got, want, in.Status().Reason)
	}
}
