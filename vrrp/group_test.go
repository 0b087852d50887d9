package vrrp_test

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"vigil/vrrp"
)

func member(t *testing.T, vrid uint8, prio uint8) *vrrp.Instance {
	t.Helper()
	c := v3(prio)
	c.VRID, c.Name = vrid, "VI_"+string(rune('0'+vrid))
	c.VIPs = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, vrid}), 32)}
	return start(t, c, t0)
}

func states(ins ...*vrrp.Instance) []vrrp.State {
	var s []vrrp.State
	for _, in := range ins {
		s = append(s, in.State())
	}
	return s
}

func TestNewGroupErrors(t *testing.T) {
	a, b := member(t, 1, 100), member(t, 2, 100)
	if _, err := vrrp.NewGroup("G"); !errors.Is(err, vrrp.ErrConfig) {
		t.Errorf("empty group: %v", err)
	}
	if _, err := vrrp.NewGroup("G", a, a); !errors.Is(err, vrrp.ErrConfig) {
		t.Errorf("duplicate member: %v", err)
	}
	if _, err := vrrp.NewGroup("G", a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := vrrp.NewGroup("H", b); !errors.Is(err, vrrp.ErrConfig) {
		t.Errorf("member of two groups: %v", err)
	}
}

// One member in FAULT takes the others there, and they leave it together.
func TestGroupFaultIsShared(t *testing.T) {
	a, b, c := member(t, 1, 100), member(t, 2, 100), member(t, 3, 100)
	g, err := vrrp.NewGroup("G", a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	a.Advance(at(5 * time.Second))
	b.Advance(at(5 * time.Second))
	c.Advance(at(5 * time.Second))
	if g.State() != vrrp.StateMaster {
		t.Fatalf("group %v, members %v", g.State(), states(a, b, c))
	}
	a.Ready()
	b.Ready()
	c.Ready()
	mustStep(t, b, at(6*time.Second), vrrp.InterfaceDown{})
	if s := states(a, b, c); s[0] != vrrp.StateFault || s[1] != vrrp.StateFault || s[2] != vrrp.StateFault {
		t.Fatalf("after b's interface went down: %v", s)
	}
	for _, in := range []*vrrp.Instance{a, c} {
		if rd := in.Ready(); len(rd.DelAddrs) != 1 || len(rd.Adverts) != 1 || rd.Adverts[0].Priority != 0 {
			t.Errorf("a member dragged into FAULT: deleted %v, adverts %d; want its VIP and a priority 0 advert", rd.DelAddrs, len(rd.Adverts))
		}
	}
	// A second fault on c, then b recovers: still FAULT because of c.
	mustStep(t, c, at(7*time.Second), vrrp.Tracking{Fault: true, Reason: "chk_nginx failed"})
	mustStep(t, b, at(8*time.Second), vrrp.InterfaceUp{})
	if s := states(a, b, c); s[0] != vrrp.StateFault || s[1] != vrrp.StateFault || s[2] != vrrp.StateFault {
		t.Fatalf("with c still faulty: %v", s)
	}
	if f := b.Status().Faults; len(f) != 1 || f[0] != "sync group G" {
		t.Errorf("b's faults %q, want only the group's", f)
	}
	mustStep(t, c, at(9*time.Second), vrrp.Tracking{})
	if s := states(a, b, c); s[0] != vrrp.StateBackup || s[1] != vrrp.StateBackup || s[2] != vrrp.StateBackup {
		t.Fatalf("all recovered: %v", s)
	}
	var got []vrrp.State
	for _, tr := range g.Ready() {
		got = append(got, tr.To)
	}
	want := []vrrp.State{vrrp.StateBackup, vrrp.StateMaster, vrrp.StateFault, vrrp.StateBackup}
	if !slices.Equal(got, want) {
		t.Errorf("group transitions %v, want %v", got, want)
	}
}

// One member yielding to a higher priority takes the others to BACKUP.
func TestGroupBackupIsShared(t *testing.T) {
	a, b := member(t, 1, 100), member(t, 2, 100)
	if _, err := vrrp.NewGroup("G", a, b); err != nil {
		t.Fatal(err)
	}
	a.Advance(at(5 * time.Second))
	b.Advance(at(5 * time.Second))
	cfgA := a.Config()
	mustStep(t, a, at(5*time.Second), packet(t, cfgA, "192.0.2.99", 200, 100))
	if s := states(a, b); s[0] != vrrp.StateBackup || s[1] != vrrp.StateBackup {
		t.Fatalf("after a higher priority for a: %v", s)
	}
	rd := b.Ready()
	last := rd.Transitions[len(rd.Transitions)-1]
	if last.Reason != "sync group G: VI_1 became BACKUP" || last.Cause != vrrp.CauseSyncGroup {
		t.Errorf("b's reason %q, cause %v", last.Reason, last.Cause)
	}
}

// An address owner in a group takes the others to MASTER at once.
func TestGroupFollowsOwner(t *testing.T) {
	c := owner()
	c.VRID, c.Name = 1, "VI_1"
	a, b := start(t, c, t0), member(t, 2, 100)
	if _, err := vrrp.NewGroup("G", a, b); err != nil {
		t.Fatal(err)
	}
	if s := states(a, b); s[0] != vrrp.StateMaster || s[1] != vrrp.StateMaster {
		t.Fatalf("states %v, want both MASTER", s)
	}
}

// Shutdown then Startup of a member while another is faulty puts it in
// FAULT, not BACKUP.
func TestGroupStartupWhileFaulty(t *testing.T) {
	a, b := member(t, 1, 100), member(t, 2, 100)
	if _, err := vrrp.NewGroup("G", a, b); err != nil {
		t.Fatal(err)
	}
	mustStep(t, a, at(time.Second), vrrp.Shutdown{})
	mustStep(t, b, at(time.Second), vrrp.InterfaceDown{})
	mustStep(t, a, at(2*time.Second), vrrp.Startup{})
	if s := states(a, b); s[0] != vrrp.StateFault || s[1] != vrrp.StateFault {
		t.Fatalf("states %v, want both FAULT", s)
	}
}
