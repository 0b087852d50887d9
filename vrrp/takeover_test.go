package vrrp_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"vigil/vrrp"
)

// backupOf returns a backup of priority prio that has heard master at t0.
func backupOf(t *testing.T, prio uint8, master string) (*vrrp.Instance, vrrp.Config) {
	t.Helper()
	c := v3(prio)
	in := start(t, c, t0)
	in.Ready()
	mustStep(t, in, t0, packet(t, c, master, 254, 100))
	wantState(t, in, vrrp.StateBackup)
	return in, c
}

// PeerDown for the current master: MASTER one Skew_Time later, with adverts
// still at 1 s, and the reason says why.
func TestPeerDownTakesOverAfterSkew(t *testing.T) {
	in, _ := backupOf(t, 250, "192.0.2.1")
	down := at(100 * time.Millisecond)
	mustStep(t, in, down, vrrp.PeerDown{Addr: netip.MustParseAddr("192.0.2.1"), Reason: "BFD session m to 192.0.2.1 went down"})
	wantState(t, in, vrrp.StateBackup)
	skew := vrrp.SkewTime(3, 250, time.Second)
	if n := in.Next(); !n.Equal(down.Add(skew)) {
		t.Fatalf("next deadline %v after the event, want Skew_Time %v", n.Sub(down), skew)
	}
	in.Advance(down.Add(skew - time.Millisecond))
	wantState(t, in, vrrp.StateBackup)
	in.Advance(down.Add(skew))
	wantState(t, in, vrrp.StateMaster)
	rd := in.Ready()
	if len(rd.Transitions) != 1 || !strings.Contains(rd.Transitions[0].Reason, "BFD session m") ||
		rd.Transitions[0].Cause != vrrp.CauseBFDTakeover || in.Status().Cause != vrrp.CauseBFDTakeover {
		t.Errorf("transitions %+v", rd.Transitions)
	}
	if in.Config().AdvertInterval != time.Second {
		t.Error("advert interval changed")
	}
}

// PeerDown for another router, or to a master, or in FAULT, changes nothing.
func TestPeerDownIgnoredUnlessMaster(t *testing.T) {
	in, _ := backupOf(t, 250, "192.0.2.1")
	before := in.Next()
	mustStep(t, in, at(100*time.Millisecond), vrrp.PeerDown{Addr: netip.MustParseAddr("192.0.2.99")})
	if !in.Next().Equal(before) {
		t.Error("a PeerDown for a router that is not the master moved the down timer")
	}
	m := start(t, v3(100), t0)
	m.Advance(at(10 * time.Second))
	wantState(t, m, vrrp.StateMaster)
	m.Ready()
	mustStep(t, m, at(10*time.Second), vrrp.PeerDown{Addr: netip.MustParseAddr("192.0.2.1")})
	wantState(t, m, vrrp.StateMaster)
	f, _ := backupOf(t, 250, "192.0.2.1")
	mustStep(t, f, at(time.Millisecond), vrrp.Tracking{Fault: true, Reason: "x"})
	mustStep(t, f, at(2*time.Millisecond), vrrp.PeerDown{Addr: netip.MustParseAddr("192.0.2.1")})
	wantState(t, f, vrrp.StateFault)
	mustStep(t, f, at(3*time.Millisecond), vrrp.Tracking{})
	f.Advance(at(500 * time.Millisecond))
	wantState(t, f, vrrp.StateBackup)
}

// An advert from the master after PeerDown and before Skew_Time cancels
// the takeover: the master is alive on the LAN (a BFD-only failure).
func TestPeerDownCancelledByAdvert(t *testing.T) {
	in, c := backupOf(t, 250, "192.0.2.1")
	mustStep(t, in, at(100*time.Millisecond), vrrp.PeerDown{Addr: netip.MustParseAddr("192.0.2.1")})
	mustStep(t, in, at(105*time.Millisecond), packet(t, c, "192.0.2.1", 254, 100))
	in.Advance(at(2 * time.Second))
	wantState(t, in, vrrp.StateBackup)
	down := at(105 * time.Millisecond).Add(vrrp.MasterDownInterval(3, 250, time.Second))
	if n := in.Next(); !n.Equal(down) {
		t.Errorf("down timer at %v", n.Sub(t0))
	}
	// The ordinary timer, when it fires, is no BFD takeover.
	in.Ready()
	in.Advance(down)
	wantState(t, in, vrrp.StateMaster)
	if c := in.Status().Cause; c != vrrp.CauseMasterDown {
		t.Errorf("cause %v after the ordinary down timer, want master_down", c)
	}
}

// No split brain from a BFD-only failure: the backup that took over hears
// the old master's next advert (higher priority) and yields at once.
func TestPeerDownMasterStillAdvertisingWinsBack(t *testing.T) {
	in, c := backupOf(t, 250, "192.0.2.1")
	mustStep(t, in, at(100*time.Millisecond), vrrp.PeerDown{Addr: netip.MustParseAddr("192.0.2.1")})
	in.Advance(at(200 * time.Millisecond))
	wantState(t, in, vrrp.StateMaster)
	in.Ready()
	mustStep(t, in, at(time.Second), packet(t, c, "192.0.2.1", 254, 100))
	wantState(t, in, vrrp.StateBackup)
	if rd := in.Ready(); len(rd.DelAddrs) != 1 {
		t.Errorf("the yielding backup keeps its VIPs: %+v", rd)
	}
}
