package sim_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"vigil/vrrp"
	"vigil/vrrp/sim"
)

// Whatever happens to a LAN of preempting routers (partitions, losses,
// stalls, kills, priority changes, shutdowns), once it heals and settles
// exactly one router is master and holds the VIP, and it has the highest
// priority.
func TestConvergesToOneMaster(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		version := rapid.SampledFrom([]int{2, 3}).Draw(rt, "version")
		ival := time.Second
		if version == 3 {
			ival = rapid.SampledFrom([]time.Duration{100 * time.Millisecond, time.Second}).Draw(rt, "interval")
		}
		n := sim.New(rapid.Int64().Draw(rt, "seed"))
		count := rapid.IntRange(2, 5).Draw(rt, "routers")
		names := make([]string, count)
		for k := range count {
			names[k] = fmt.Sprintf("r%d", k+1)
			c := vrrp.Config{
				VRID: 51, Version: version, AdvertInterval: ival,
				Priority: rapid.SampledFrom([]uint8{50, 100, 100, 200, 254, 255}).Draw(rt, "prio"),
				SrcAddr:  netip.AddrFrom4([4]byte{192, 0, 2, byte(k + 1)}),
				VIPs:     []netip.Prefix{netip.MustParsePrefix("198.51.100.51/32")},
			}
			if _, err := n.Add(names[k], c); err != nil {
				rt.Fatal(err)
			}
		}
		deltas := map[string]int{}
		for range rapid.IntRange(0, 15).Draw(rt, "events") {
			name := rapid.SampledFrom(names).Draw(rt, "router")
			r := n.Router(name)
			switch rapid.IntRange(0, 8).Draw(rt, "event") {
			case 0:
				cut := rapid.IntRange(1, count-1).Draw(rt, "cut")
				n.Partition(names[:cut], names[cut:])
			case 1:
				n.Heal()
			case 2:
				n.SetLoss(name, rapid.SampledFrom(names).Draw(rt, "other"), rapid.Float64Range(0, 0.9).Draw(rt, "loss"))
			case 3:
				if !r.Dead() {
					n.Stall(r, time.Duration(rapid.IntRange(1, 8000).Draw(rt, "stall ms"))*time.Millisecond)
				}
			case 4:
				if r.Dead() {
					if err := n.Restart(r); err != nil {
						rt.Fatal(err)
					}
				} else {
					n.Kill(r)
				}
			case 5:
				if !r.Dead() {
					deltas[name] = rapid.IntRange(-120, 120).Draw(rt, "delta")
					_ = n.Step(r, 0, vrrp.Tracking{Delta: deltas[name]})
				}
			case 6:
				if !r.Dead() {
					_ = n.Step(r, 0, vrrp.Shutdown{})
					_ = n.Step(r, 0, vrrp.Startup{})
				}
			case 7:
				if !r.Dead() {
					_ = n.Step(r, 0, vrrp.InterfaceDown{})
					n.RunFor(time.Duration(rapid.IntRange(0, 5000).Draw(rt, "down ms")) * time.Millisecond)
					_ = n.Step(r, 0, vrrp.InterfaceUp{})
				}
			}
			n.RunFor(time.Duration(rapid.IntRange(0, 10000).Draw(rt, "run ms")) * time.Millisecond)
		}
		// Heal everything and let it settle.
		n.Heal()
		for _, a := range names {
			for _, b := range names {
				n.SetLoss(a, b, 0)
			}
			if r := n.Router(a); r.Dead() {
				if err := n.Restart(r); err != nil {
					rt.Fatal(err)
				}
			}
		}
		n.RunFor(10*time.Second + 20*ival) // stalls end within 8s
		n.Lines()
		n.RunFor(10 * ival)

		// A backup never preempts a master of equal priority (RFC 5798
		// 6.4.2), so with a tie at the top any of the tied may be master.
		var top uint8
		var masters []string
		for _, r := range n.Routers() {
			in := r.Instances()[0]
			if in.State() == vrrp.StateMaster {
				masters = append(masters, r.Name)
			}
			top = max(top, in.Priority())
		}
		if len(masters) != 1 {
			rt.Fatalf("masters %v, want exactly one", masters)
		}
		master := n.Router(masters[0])
		if p := master.Instances()[0].Priority(); p != top {
			rt.Fatalf("master %s has priority %d, the highest is %d", master.Name, p, top)
		}
		if h := n.Holders()[netip.MustParsePrefix("198.51.100.51/32")]; !slices.Equal(h, masters) {
			rt.Fatalf("VIP held by %v, want %v", h, masters)
		}
		// Settled means quiet: no transitions in the last stretch.
		n.RunFor(10 * ival)
		for _, l := range n.Lines() {
			if strings.Contains(l, "->") && !strings.Contains(l, "advert") {
				rt.Fatalf("still changing after settling: %s", l)
			}
		}
	})
}

// The same seed gives the same trace, losses included.
func TestDeterministic(t *testing.T) {
	run := func() string {
		s := sim.NewScript(7)
		var out []string
		for _, cmd := range []string{
			"add-router r1 prio=200 version=3 int=100ms",
			"add-router r2 prio=150 version=3 int=100ms",
			"add-router r3 prio=100 version=3 int=100ms",
			"loss r1 r2 0.4", "loss r1 r3 0.4",
			"advance 20s",
		} {
			out = append(out, s.Run(cmd))
		}
		return strings.Join(out, "\n")
	}
	a, b := run(), run()
	if a != b {
		t.Fatal("two runs with the same seed differ")
	}
	if !strings.Contains(a, "lost") {
		t.Fatal("no loss happened; the test proves nothing")
	}
}
