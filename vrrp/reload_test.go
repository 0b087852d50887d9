package vrrp_test

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"vigil/internal/inet"
	"vigil/vrrp"
)

// A reload keeps the state; a master's addresses are diffed, not torn down.
func TestReloadDiffsAddresses(t *testing.T) {
	other := netip.MustParsePrefix("198.51.100.52/32")
	excl := netip.MustParsePrefix("203.0.113.1/32")
	c := v3(100)
	c.ExcludedVIPs = []netip.Prefix{excl}
	in := start(t, c, t0)
	mustStep(t, in, t0, vrrp.Tracking{Delta: 20})
	in.Advance(at(5 * time.Second))
	if rd := in.Ready(); !slices.Equal(rd.AddAddrs, []netip.Prefix{vip, excl}) {
		t.Fatalf("became master adding %v", rd.AddAddrs)
	}

	c.VIPs = []netip.Prefix{vip, other}
	c.ExcludedVIPs = nil
	c.Priority = 150
	if err := in.Reload(c, at(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	rd := in.Ready()
	wantState(t, in, vrrp.StateMaster)
	if !slices.Equal(rd.AddAddrs, []netip.Prefix{other}) || !slices.Equal(rd.DelAddrs, []netip.Prefix{excl}) {
		t.Errorf("reload added %v, deleted %v; want %v and %v", rd.AddAddrs, rd.DelAddrs, other, excl)
	}
	if len(rd.Announce) != 1 || !slices.Equal(rd.Announce[0].Addrs, []netip.Addr{other.Addr()}) {
		t.Errorf("announced %v, want only the new address", rd.Announce)
	}
	as := adverts(t, rd, inet.IPv4)
	if len(as) != 1 || as[0].Priority != 170 || len(as[0].Addrs) != 2 {
		t.Errorf("adverts %v, want one with priority 150+20 and both VIPs", as)
	}
	if len(rd.Transitions) != 0 {
		t.Errorf("a reload changed state: %v", rd.Transitions)
	}
}

func TestReloadRefusesIdentityChange(t *testing.T) {
	in := start(t, v3(100), t0)
	c := v3(100)
	c.VRID = 52
	if err := in.Reload(c, t0); !errors.Is(err, vrrp.ErrConfig) {
		t.Errorf("vrid change: %v", err)
	}
	c = v2(100)
	if err := in.Reload(c, t0); !errors.Is(err, vrrp.ErrConfig) {
		t.Errorf("version change: %v", err)
	}
	if in.Config().VRID != 51 || in.Config().Version != 3 {
		t.Errorf("a refused reload changed the config: %+v", in.Config())
	}
}

func TestReloadBackupKeepsTimers(t *testing.T) {
	in := start(t, v3(100), t0)
	mustStep(t, in, at(time.Second), packet(t, v3(0), peer, 200, 100))
	before := in.Status()
	in.Ready()
	c := v3(120)
	if err := in.Reload(c, at(time.Second)); err != nil {
		t.Fatal(err)
	}
	after := in.Status()
	if rd := in.Ready(); !rd.Empty() || !after.MasterDownAt.Equal(before.MasterDownAt) || after.Priority != 120 {
		t.Errorf("backup reload: ready %+v, down timer %v -> %v, priority %d", rd, before.MasterDownAt, after.MasterDownAt, after.Priority)
	}
}

// Two reloads and a shutdown before the caller asks for Ready: it is told
// to delete what it holds, the first configuration's addresses, and
// nothing of the two configurations it never installed. A tracking delta
// beyond what a priority can move keeps its effect across the reloads.
func TestReloadsBeforeReady(t *testing.T) {
	a, b, c3 := netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("198.51.100.2/32"), netip.MustParsePrefix("198.51.100.3/32")
	c := v3(100)
	c.VIPs = []netip.Prefix{vip, a}
	in := start(t, c, t0)
	mustStep(t, in, t0, vrrp.Tracking{Delta: 1000})
	in.Advance(at(5 * time.Second))
	if rd := in.Ready(); !slices.Equal(rd.AddAddrs, []netip.Prefix{vip, a}) {
		t.Fatalf("became master adding %v", rd.AddAddrs)
	}
	c.VIPs = []netip.Prefix{vip, b}
	c.Priority = 10
	if err := in.Reload(c, at(6*time.Second)); err != nil {
		t.Fatal(err)
	}
	c.VIPs = []netip.Prefix{vip, c3}
	if err := in.Reload(c, at(7*time.Second)); err != nil {
		t.Fatal(err)
	}
	if p := in.Priority(); p != 254 {
		t.Errorf("priority %d after the reloads, want 10+1000 clamped to 254", p)
	}
	if !in.HasReady() {
		t.Fatal("nothing ready after two reloads")
	}
	mustStep(t, in, at(7*time.Second), vrrp.Shutdown{})
	rd := in.Ready()
	if len(rd.AddAddrs) != 0 || !slices.Equal(rd.DelAddrs, []netip.Prefix{vip, a}) {
		t.Errorf("added %v, deleted %v; want nothing added and %v deleted", rd.AddAddrs, rd.DelAddrs, []netip.Prefix{vip, a})
	}
	if rd := in.Ready(); len(rd.AddAddrs)+len(rd.DelAddrs) != 0 || in.HasReady() {
		t.Errorf("a second Ready changes addresses again: %+v", rd)
	}
}
