package vrrp_test

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"vigil/internal/inet"
	"vigil/vrrp"
)

// 6.3: the state diagram (plus keepalived's FAULT). Random events stepped
// into one instance never leave it, and the actions always fit the state:
// a router holds the VIPs exactly when it is master, becoming master sends
// an advert, leaving master by shutdown sends priority 0, timers run
// exactly in BACKUP and MASTER, and adverts carry the effective priority.
func TestRFC5798_6_3_StateMachineInvariants(t *testing.T) {
	allowed := map[[2]vrrp.State]bool{
		{vrrp.StateInit, vrrp.StateBackup}: true, {vrrp.StateInit, vrrp.StateMaster}: true, {vrrp.StateInit, vrrp.StateFault}: true,
		{vrrp.StateBackup, vrrp.StateMaster}: true, {vrrp.StateBackup, vrrp.StateInit}: true, {vrrp.StateBackup, vrrp.StateFault}: true,
		{vrrp.StateMaster, vrrp.StateBackup}: true, {vrrp.StateMaster, vrrp.StateInit}: true, {vrrp.StateMaster, vrrp.StateFault}: true,
		{vrrp.StateFault, vrrp.StateBackup}: true, {vrrp.StateFault, vrrp.StateInit}: true,
	}
	rapid.Check(t, func(rt *rapid.T) {
		c := v3(rapid.SampledFrom([]uint8{1, 100, 200, 254, 255}).Draw(rt, "prio"))
		if rapid.Bool().Draw(rt, "v2") {
			c = v2(c.Priority)
		}
		c.NoPreempt = rapid.Bool().Draw(rt, "nopreempt")
		if rapid.Bool().Draw(rt, "state MASTER") {
			c.InitialState = vrrp.StateMaster
		}
		if rapid.Bool().Draw(rt, "preempt delay") {
			c.PreemptDelay = 3 * time.Second
		}
		in, err := vrrp.New(c, t0)
		if err != nil {
			rt.Fatal(err)
		}
		now := t0
		holding := false
		state := vrrp.StateInit
		peers := []string{"192.0.2.1", "192.0.2.20", "192.0.2.200"}
		for range rapid.IntRange(1, 60).Draw(rt, "steps") {
			before, prevPrio := in.State(), in.Priority()
			var ev vrrp.Event
			switch rapid.IntRange(0, 9).Draw(rt, "event") {
			case 0, 1, 2, 3:
				ival := uint16(1)
				if c.Version == 3 {
					ival = rapid.SampledFrom([]uint16{50, 100, 300}).Draw(rt, "interval")
				}
				ev = packet(rt, c, rapid.SampledFrom(peers).Draw(rt, "src"), rapid.SampledFrom([]uint8{0, 1, 100, 200, 254, 255}).Draw(rt, "advert prio"), ival)
			case 4:
				ev = vrrp.Tracking{Delta: rapid.IntRange(-300, 300).Draw(rt, "delta"), Fault: rapid.IntRange(0, 4).Draw(rt, "fault") == 0}
			case 5:
				ev = vrrp.InterfaceDown{}
			case 6:
				ev = vrrp.InterfaceUp{}
			case 7:
				ev = vrrp.Shutdown{}
			case 8:
				ev = vrrp.Startup{}
			}
			now = now.Add(time.Duration(rapid.IntRange(0, 5000).Draw(rt, "ms")) * time.Millisecond)
			if ev == nil {
				in.Advance(now)
			} else if err := in.Step(now, ev); err != nil {
				var de *vrrp.DropError
				if !errors.As(err, &de) || de.Reason != vrrp.DropInactive {
					rt.Fatalf("step %T: %v", ev, err)
				}
			}
			rd := in.Ready()

			// Transitions chain from the previous state along the diagram.
			for _, tr := range rd.Transitions {
				if tr.From != state || !allowed[[2]vrrp.State{tr.From, tr.To}] {
					rt.Fatalf("transition %v from state %v (was %v before the step)", tr, state, before)
				}
				state = tr.To
			}
			if state != in.State() {
				rt.Fatalf("transitions end in %v, state is %v", state, in.State())
			}
			// The VIPs are held exactly in MASTER.
			if len(rd.AddAddrs) > 0 {
				if holding {
					rt.Fatalf("added %v twice", rd.AddAddrs)
				}
				holding = true
			}
			if len(rd.DelAddrs) > 0 {
				if !holding {
					rt.Fatalf("deleted %v not held", rd.DelAddrs)
				}
				holding = false
			}
			if holding != (in.State() == vrrp.StateMaster) || holding != in.Status().OwnsVIPs {
				rt.Fatalf("holding VIPs %v in state %v", holding, in.State())
			}
			// Adverts: the effective priority, or 0 when leaving MASTER.
			becameMaster, leftMaster := false, false
			for _, tr := range rd.Transitions {
				becameMaster = becameMaster || tr.To == vrrp.StateMaster
				leftMaster = leftMaster || (tr.From == vrrp.StateMaster && tr.To != vrrp.StateBackup)
			}
			zero := false
			for _, a := range adverts(rt, rd, in.Config().Family) {
				switch {
				case a.Priority == 0:
					zero = true
					if !leftMaster {
						rt.Fatalf("priority 0 advert without leaving MASTER: %v", rd.Transitions)
					}
				case a.Priority != in.Priority() && a.Priority != prevPrio:
					// Timers run before the event, so an advert may carry
					// the priority from before a Tracking change.
					rt.Fatalf("advert priority %d, effective %d (before the step %d)", a.Priority, in.Priority(), prevPrio)
				}
			}
			if becameMaster && len(rd.Adverts) == 0 {
				rt.Fatalf("became MASTER without an advert")
			}
			for _, tr := range rd.Transitions {
				if tr.From == vrrp.StateMaster && tr.To == vrrp.StateInit && !zero {
					rt.Fatalf("shutdown of a master without a priority 0 advert")
				}
			}
			// Timers run exactly in BACKUP and MASTER, and in the future.
			active := in.State() == vrrp.StateBackup || in.State() == vrrp.StateMaster
			if rd.Next.IsZero() == active {
				rt.Fatalf("state %v with next deadline %v", in.State(), rd.Next)
			}
			if active && !rd.Next.After(now) {
				rt.Fatalf("deadline %v not after now %v", rd.Next.Sub(t0), now.Sub(t0))
			}
			if st := in.Status(); in.State() == vrrp.StateMaster && st.MasterAddr != c.SrcAddr {
				rt.Fatalf("master reports master %v", st.MasterAddr)
			}
		}
	})
}

// Advertised addresses are the VIPs, never the excluded ones, which are
// still added and announced.
func TestExcludedVIPsNotAdvertised(t *testing.T) {
	c := owner()
	excl := netip.MustParsePrefix("203.0.113.7/32")
	c.ExcludedVIPs = []netip.Prefix{excl}
	in := start(t, c, t0)
	rd := in.Ready()
	as := adverts(t, rd, inet.IPv4)
	if len(as) != 1 || !slices.Equal(as[0].Addrs, []netip.Addr{vip.Addr()}) {
		t.Errorf("advertised %v, want only %v", as, vip)
	}
	if !slices.Contains(rd.AddAddrs, excl) || !slices.Contains(rd.Announce[0].Addrs, excl.Addr()) {
		t.Errorf("added %v, announced %v; want the excluded VIP in both", rd.AddAddrs, rd.Announce)
	}
}
