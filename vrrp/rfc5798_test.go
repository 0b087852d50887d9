package vrrp_test

// One test per requirement of RFC 5798 section 6, named after its section.
// The requirements about ARP, ND, MAC addresses and accepting traffic are
// the data plane's; the engine's part of them is owning the VIPs (and
// asking for announcements) exactly in MASTER, which is what these tests
// check.

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"vigil/internal/inet"
	"vigil/vrrp"
	"vigil/vrrp/sim"
)

// 6.1: "The value of 255 (decimal) is reserved for the router that owns the
// IPvX address associated with the virtual router." The owner's priority
// is never moved by tracking, and no tracking gives a non-owner 255.
func TestRFC5798_6_1_PriorityOwnerIs255(t *testing.T) {
	owner := start(t, v3(255), t0)
	mustStep(t, owner, t0, vrrp.Tracking{Delta: -100})
	if p := owner.Priority(); p != 255 {
		t.Errorf("owner priority after tracking -100: %d, want 255", p)
	}
	other := start(t, v3(200), t0)
	mustStep(t, other, t0, vrrp.Tracking{Delta: 100})
	if p := other.Priority(); p != 254 {
		t.Errorf("priority 200+100: %d, want 254", p)
	}
}

// 6.1: "The value of 0 (zero) is reserved for the Master router to indicate
// it is releasing responsibility for the virtual router." Tracking never
// takes the priority to 0; only a releasing master sends 0.
func TestRFC5798_6_1_PriorityZeroOnlyWhenReleasing(t *testing.T) {
	in := start(t, v3(10), t0)
	mustStep(t, in, t0, vrrp.Tracking{Delta: -200})
	if p := in.Priority(); p != 1 {
		t.Errorf("priority 10-200: %d, want 1", p)
	}
	in.Advance(at(10 * time.Second))
	wantState(t, in, vrrp.StateMaster)
	for _, a := range adverts(t, in.Ready(), inet.IPv4) {
		if a.Priority != 1 {
			t.Errorf("master advertised priority %d, want 1", a.Priority)
		}
	}
	mustStep(t, in, at(10*time.Second), vrrp.Shutdown{})
	as := adverts(t, in.Ready(), inet.IPv4)
	if len(as) != 1 || as[0].Priority != 0 {
		t.Errorf("shutdown adverts %v, want one with priority 0", as)
	}
}

// 6.1: the defaults: priority 100, Advertisement_Interval 100 centiseconds,
// Preempt_Mode True. (Accept_Mode: the RFC's default is False, keepalived's
// is to accept outside vrrp_strict, and vigil follows keepalived: see
// Config.NoAccept.)
func TestRFC5798_6_1_Defaults(t *testing.T) {
	in := start(t, vrrp.Config{VRID: 1, Version: 3, SrcAddr: me}, t0)
	c := in.Config()
	if c.Priority != 100 || c.AdvertInterval != time.Second || c.NoPreempt {
		t.Errorf("defaults: priority %d, interval %v, nopreempt %v; want 100, 1s, false", c.Priority, c.AdvertInterval, c.NoPreempt)
	}
}

// 6.1: Master_Adver_Interval starts as Advertisement_Interval, and
// Master_Down_Interval is 3×Master_Adver_Interval + Skew_Time with
// Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256.
func TestRFC5798_6_1_MasterDownInterval(t *testing.T) {
	c := v3(100)
	c.AdvertInterval = 2 * time.Second
	st := start(t, c, t0).Status()
	if st.MasterAdverInterval != 2*time.Second {
		t.Errorf("Master_Adver_Interval %v, want 2s", st.MasterAdverInterval)
	}
	want := 6*time.Second + 156*2*time.Second/256
	if st.MasterDownInterval != want || !st.MasterDownAt.Equal(t0.Add(want)) {
		t.Errorf("Master_Down_Interval %v (timer at %v), want %v", st.MasterDownInterval, st.MasterDownAt.Sub(t0), want)
	}
}

// 6.4.1: with priority 255, on Startup: send an ADVERTISEMENT, announce
// each address (gratuitous ARP / unsolicited NA), set the Adver_Timer to
// Advertisement_Interval and transition to Master. (keepalived, and so
// vigil, does this only for an owner configured `state MASTER`; see
// TestKeepalivedOwnerWithoutStateMasterWaits.)
func TestRFC5798_6_4_1_StartupOwnerBecomesMaster(t *testing.T) {
	for _, fam := range []inet.Family{inet.IPv4, inet.IPv6} {
		t.Run(fam.String(), func(t *testing.T) {
			c := owner()
			if fam == inet.IPv6 {
				c.SrcAddr, c.VIPs = netip.MustParseAddr("fe80::10"), []netip.Prefix{vip6}
			}
			in := start(t, c, t0)
			rd := in.Ready()
			wantState(t, in, vrrp.StateMaster)
			if as := adverts(t, rd, fam); len(as) != 1 || as[0].Priority != 255 {
				t.Errorf("adverts %v, want one with priority 255", as)
			}
			if len(rd.Announce) == 0 || !slices.Equal(rd.Announce[0].Addrs, []netip.Addr{c.VIPs[0].Addr()}) {
				t.Errorf("announcements %v, want the VIP", rd.Announce)
			}
			if !slices.Equal(rd.AddAddrs, c.VIPs) {
				t.Errorf("added %v, want %v", rd.AddAddrs, c.VIPs)
			}
			if st := in.Status(); !st.NextAdvertAt.Equal(at(time.Second)) {
				t.Errorf("Adver_Timer at %v, want 1s", st.NextAdvertAt.Sub(t0))
			}
		})
	}
}

// 6.4.1: any other priority: Master_Adver_Interval = Advertisement_Interval,
// Master_Down_Timer = Master_Down_Interval, transition to Backup. This
// holds for `state MASTER` too, as in keepalived 2.2.7.
func TestRFC5798_6_4_1_StartupBecomesBackup(t *testing.T) {
	c := v3(254)
	c.InitialState = vrrp.StateMaster
	in := start(t, c, t0)
	rd := in.Ready()
	wantState(t, in, vrrp.StateBackup)
	if len(rd.Adverts) != 0 || len(rd.AddAddrs) != 0 {
		t.Errorf("a starting backup sent %d adverts and added %v", len(rd.Adverts), rd.AddAddrs)
	}
	want := t0.Add(vrrp.MasterDownInterval(3, 254, time.Second))
	if !rd.Next.Equal(want) {
		t.Errorf("next deadline %v, want Master_Down_Interval %v", rd.Next.Sub(t0), want.Sub(t0))
	}
}

// 6.4.2: a Backup MUST NOT respond to ARP/ND for the addresses, MUST
// discard frames to the virtual MAC and MUST NOT accept packets to the
// addresses: it never holds them, however adverts come and go.
func TestRFC5798_6_4_2_BackupDoesNotOwnAddresses(t *testing.T) {
	in := start(t, v3(100), t0)
	for k := range 10 {
		now := at(time.Duration(k) * time.Second)
		mustStep(t, in, now, packet(t, v3(0), "192.0.2.20", 200, 100))
		rd := in.Ready()
		if len(rd.AddAddrs) != 0 || len(rd.Announce) != 0 || in.Status().OwnsVIPs || in.Status().AcceptTraffic {
			t.Fatalf("backup at %v: added %v, announced %v", now.Sub(t0), rd.AddAddrs, rd.Announce)
		}
	}
	wantState(t, in, vrrp.StateBackup)
}

// 6.4.2: Shutdown in Backup: cancel the Master_Down_Timer, transition to
// Initialize (and send nothing).
func TestRFC5798_6_4_2_BackupShutdown(t *testing.T) {
	in := start(t, v3(100), t0)
	in.Ready()
	mustStep(t, in, at(time.Second), vrrp.Shutdown{})
	rd := in.Ready()
	wantState(t, in, vrrp.StateInit)
	if len(rd.Adverts) != 0 || !rd.Next.IsZero() {
		t.Errorf("backup shutdown: %d adverts, next %v; want none and no timer", len(rd.Adverts), rd.Next)
	}
	in.Advance(at(time.Hour))
	wantState(t, in, vrrp.StateInit)
}

// 6.4.2: when the Master_Down_Timer fires: send an ADVERTISEMENT, announce,
// set the Adver_Timer, transition to Master.
func TestRFC5798_6_4_2_MasterDownTimerFires(t *testing.T) {
	in := start(t, v3(100), t0)
	in.Ready()
	down := vrrp.MasterDownInterval(3, 100, time.Second)
	in.Advance(t0.Add(down - 1))
	wantState(t, in, vrrp.StateBackup)
	in.Advance(t0.Add(down))
	rd := in.Ready()
	wantState(t, in, vrrp.StateMaster)
	wantOneAdvert(t, rd, 100)
	if len(rd.Announce) == 0 || len(rd.AddAddrs) != 1 {
		t.Errorf("announced %v, added %v; want the VIP both", rd.Announce, rd.AddAddrs)
	}
	if want := t0.Add(down + time.Second); !rd.Next.Equal(want) {
		t.Errorf("Adver_Timer %v, want %v", rd.Next.Sub(t0), want.Sub(t0))
	}
}

// 6.4.2: an ADVERTISEMENT with priority 0: set the Master_Down_Timer to
// Skew_Time.
func TestRFC5798_6_4_2_BackupPriorityZeroSetsSkewTime(t *testing.T) {
	in := start(t, v3(100), t0)
	mustStep(t, in, at(time.Second), packet(t, v3(0), "192.0.2.20", 0, 100))
	skew := vrrp.SkewTime(3, 100, time.Second)
	if st := in.Status(); !st.MasterDownAt.Equal(at(time.Second + skew)) {
		t.Errorf("Master_Down_Timer at %v, want 1s + Skew_Time %v", st.MasterDownAt.Sub(t0), skew)
	}
	in.Advance(at(time.Second + skew))
	wantState(t, in, vrrp.StateMaster)
}

// 6.4.2: with a priority greater than or equal to ours: set
// Master_Adver_Interval from the ADVERTISEMENT, recompute the
// Master_Down_Interval, reset the Master_Down_Timer.
func TestRFC5798_6_4_2_BackupAcceptsHigherOrEqualPriority(t *testing.T) {
	for _, prio := range []uint8{100, 101, 255} {
		in := start(t, v3(100), t0)
		mustStep(t, in, at(2*time.Second), packet(t, v3(0), "192.0.2.20", prio, 50))
		st := in.Status()
		want := vrrp.MasterDownInterval(3, 100, 500*time.Millisecond)
		if st.MasterAdverInterval != 500*time.Millisecond || st.MasterDownInterval != want ||
			!st.MasterDownAt.Equal(at(2*time.Second+want)) {
			t.Errorf("prio %d: Master_Adver_Interval %v, Master_Down_Interval %v at %v; want 500ms, %v at %v",
				prio, st.MasterAdverInterval, st.MasterDownInterval, st.MasterDownAt.Sub(t0), want, 2*time.Second+want)
		}
	}
}

// 6.4.2: with Preempt_Mode False a lower priority advert is accepted too.
func TestRFC5798_6_4_2_BackupNoPreemptAcceptsLowerPriority(t *testing.T) {
	c := v3(200)
	c.NoPreempt = true
	in := start(t, c, t0)
	for k := range 20 {
		mustStep(t, in, at(time.Duration(k)*time.Second), packet(t, c, "192.0.2.20", 100, 100))
	}
	wantState(t, in, vrrp.StateBackup)
}

// 6.4.2: with Preempt_Mode True a lower priority advert is discarded, so
// the Master_Down_Timer fires and the higher priority backup preempts.
func TestRFC5798_6_4_2_BackupPreemptsOnHigherPriority(t *testing.T) {
	n := sim.New(1)
	low, high := v3(100), v3(200)
	low.SrcAddr, high.SrcAddr = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	r1, err := n.Add("r1", low)
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(10 * time.Second)
	wantState(t, r1.Instances()[0], vrrp.StateMaster)
	r2, err := n.Add("r2", high)
	if err != nil {
		t.Fatal(err)
	}
	n.RunFor(vrrp.MasterDownInterval(3, 200, time.Second) + time.Millisecond)
	wantState(t, r2.Instances()[0], vrrp.StateMaster)
	wantState(t, r1.Instances()[0], vrrp.StateBackup)
	if h := n.Holders()[vip]; !slices.Equal(h, []string{"r2"}) {
		t.Errorf("VIP held by %v, want r2", h)
	}
}

// 6.4.3: a Master MUST respond to ARP/ND for the addresses, MUST forward
// frames to the virtual MAC, and MUST accept packets to the addresses only
// if it is the owner or Accept_Mode is True.
func TestRFC5798_6_4_3_MasterOwnsAddresses(t *testing.T) {
	for _, tc := range []struct {
		prio     uint8
		noAccept bool
		accept   bool
	}{{255, true, true}, {100, false, true}, {100, true, false}} {
		c := v3(tc.prio)
		c.NoAccept = tc.noAccept
		in := start(t, c, t0)
		in.Advance(at(10 * time.Second))
		wantState(t, in, vrrp.StateMaster)
		st := in.Status()
		if !st.OwnsVIPs || st.AcceptTraffic != tc.accept {
			t.Errorf("prio %d noaccept %v: owns %v accept %v; want true %v", tc.prio, tc.noAccept, st.OwnsVIPs, st.AcceptTraffic, tc.accept)
		}
	}
}

// 6.4.3: Shutdown in Master: cancel the Adver_Timer, send an ADVERTISEMENT
// with priority 0, transition to Initialize; the VIPs go after the advert.
func TestRFC5798_6_4_3_MasterShutdownSendsPriorityZero(t *testing.T) {
	in := start(t, owner(), t0)
	in.Ready()
	mustStep(t, in, at(500*time.Millisecond), vrrp.Shutdown{})
	rd := in.Ready()
	wantState(t, in, vrrp.StateInit)
	wantOneAdvert(t, rd, 0)
	if !slices.Equal(rd.DelAddrs, []netip.Prefix{vip}) || !rd.Next.IsZero() {
		t.Errorf("deleted %v, next %v; want the VIP and no timer", rd.DelAddrs, rd.Next)
	}
}

// 6.4.3: when the Adver_Timer fires: send an ADVERTISEMENT and reset the
// timer to Advertisement_Interval.
func TestRFC5798_6_4_3_AdverTimerSendsAdvert(t *testing.T) {
	c := owner()
	c.AdvertInterval = 300 * time.Millisecond
	in := start(t, c, t0)
	in.Ready()
	for k := 1; k <= 5; k++ {
		now := at(time.Duration(k) * 300 * time.Millisecond)
		in.Advance(now.Add(-1))
		if rd := in.Ready(); len(rd.Adverts) != 0 {
			t.Fatalf("advert before the timer at %v", now.Sub(t0))
		}
		in.Advance(now)
		rd := in.Ready()
		if as := adverts(t, rd, inet.IPv4); len(as) != 1 || as[0].Interval != 30 {
			t.Fatalf("at %v: adverts %v, want one with interval 30cs", now.Sub(t0), as)
		}
		if !rd.Next.Equal(now.Add(300 * time.Millisecond)) {
			t.Fatalf("next %v, want %v", rd.Next.Sub(t0), now.Add(300*time.Millisecond).Sub(t0))
		}
	}
}

// 6.4.3: an ADVERTISEMENT with priority 0 received as Master: send an
// ADVERTISEMENT and reset the Adver_Timer.
func TestRFC5798_6_4_3_MasterAnswersPriorityZero(t *testing.T) {
	in := start(t, owner(), t0)
	in.Ready()
	mustStep(t, in, at(400*time.Millisecond), packet(t, v3(0), "192.0.2.20", 0, 100))
	rd := in.Ready()
	wantState(t, in, vrrp.StateMaster)
	wantOneAdvert(t, rd, 255)
	if !rd.Next.Equal(at(1400 * time.Millisecond)) {
		t.Errorf("Adver_Timer %v, want 1.4s", rd.Next.Sub(t0))
	}
}

// 6.4.3: a higher priority: cancel the Adver_Timer, adopt the advert's
// interval, recompute Skew_Time and Master_Down_Interval, set the
// Master_Down_Timer, transition to Backup.
func TestRFC5798_6_4_3_MasterYieldsToHigherPriority(t *testing.T) {
	in := start(t, v3(100), t0)
	in.Advance(at(6 * time.Second))
	wantState(t, in, vrrp.StateMaster)
	in.Ready()
	mustStep(t, in, at(6*time.Second), packet(t, v3(0), "192.0.2.1", 150, 200))
	rd := in.Ready()
	wantState(t, in, vrrp.StateBackup)
	st := in.Status()
	want := vrrp.MasterDownInterval(3, 100, 2*time.Second)
	if st.MasterAdverInterval != 2*time.Second || !st.MasterDownAt.Equal(at(6*time.Second+want)) || !st.NextAdvertAt.IsZero() {
		t.Errorf("Master_Adver_Interval %v, down at %v, adver timer %v; want 2s, %v, none",
			st.MasterAdverInterval, st.MasterDownAt.Sub(t0), st.NextAdvertAt, 6*time.Second+want)
	}
	if len(rd.Adverts) != 0 || !slices.Equal(rd.DelAddrs, []netip.Prefix{vip}) {
		t.Errorf("sent %d adverts, deleted %v; want none and the VIP", len(rd.Adverts), rd.DelAddrs)
	}
	if len(rd.Transitions) != 1 || rd.Transitions[0].Reason != "higher priority 150 from 192.0.2.1" {
		t.Errorf("transitions %v", rd.Transitions)
	}
}

// 6.4.3: an equal priority from a higher primary address (compared as
// unsigned integers in network byte order) also wins; from a lower one it
// does not.
func TestRFC5798_6_4_3_MasterYieldsOnEqualPriorityHigherAddress(t *testing.T) {
	for _, tc := range []struct {
		me, peer string
		yield    bool
	}{
		{"192.0.2.10", "192.0.2.11", true},
		{"192.0.2.10", "192.0.2.9", false},
		{"192.0.2.10", "10.0.0.1", false},
		{"10.255.255.255", "192.0.0.0", true},
		{"fe80::10", "fe80::11", true},
		{"fe80::10", "fe80::f", false},
	} {
		c := v3(100)
		c.SrcAddr = netip.MustParseAddr(tc.me)
		c.VIPs = []netip.Prefix{vip}
		if c.SrcAddr.Is6() {
			c.VIPs = []netip.Prefix{vip6}
		}
		in := start(t, c, t0)
		in.Advance(at(5 * time.Second))
		mustStep(t, in, at(5*time.Second), packet(t, c, tc.peer, 100, 100))
		if got := in.State() == vrrp.StateBackup; got != tc.yield {
			t.Errorf("%s hearing %s at equal priority: yielded %v, want %v", tc.me, tc.peer, got, tc.yield)
		}
	}
}

// 6.4.3: a lower priority is discarded: the Master stays Master. (keepalived
// also answers at once and announces again, so that a healed split brain
// converges; see the package documentation.)
func TestRFC5798_6_4_3_MasterKeepsLowerPriority(t *testing.T) {
	in := start(t, v3(200), t0)
	in.Advance(at(5 * time.Second))
	in.Ready()
	mustStep(t, in, at(5500*time.Millisecond), packet(t, v3(0), "192.0.2.99", 100, 100))
	rd := in.Ready()
	wantState(t, in, vrrp.StateMaster)
	wantOneAdvert(t, rd, 200)
	if len(rd.Announce) != 1 || len(rd.DelAddrs) != 0 {
		t.Errorf("announced %v, deleted %v; want one burst, nothing deleted", rd.Announce, rd.DelAddrs)
	}
}

// keepalived 2.2.7 departs from section 6.4.1 (observed): an owner
// configured `state BACKUP`, or one leaving FAULT, starts as a backup and
// takes over when its Master_Down_Timer fires.
func TestKeepalivedOwnerWithoutStateMasterWaits(t *testing.T) {
	in := start(t, v3(255), t0)
	wantState(t, in, vrrp.StateBackup)
	in.Advance(t0.Add(vrrp.MasterDownInterval(3, 255, time.Second)))
	wantState(t, in, vrrp.StateMaster)

	o := start(t, owner(), t0)
	wantState(t, o, vrrp.StateMaster)
	mustStep(t, o, at(time.Second), vrrp.Tracking{Fault: true})
	mustStep(t, o, at(2*time.Second), vrrp.Tracking{})
	wantState(t, o, vrrp.StateBackup)
}
