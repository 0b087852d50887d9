package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vigil/config"
)

var (
	edge     = &config.BGPAnnounce{Instance: "EDGE"}
	edgeComm = &config.BGPAnnounce{Instance: "EDGE", Communities: []uint32{65000<<16 | 100}, MED: 20, HasMED: true}
	edgeMED  = &config.BGPAnnounce{Instance: "EDGE", Communities: []uint32{1<<16 | 1}, MED: 10, HasMED: true}
	core     = &config.BGPAnnounce{Instance: "CORE"}
	vip      = netip.MustParseAddr("192.0.2.100")
	vip6     = netip.MustParseAddr("2001:db8::100")
)

func p(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// print shows decisions one per line, for compact expectations.
func print(ds []Decision) string {
	var b strings.Builder
	for _, d := range ds {
		mark := "-"
		if d.Announced {
			mark = "+"
		}
		b.WriteString(mark + " " + d.Route.String() + " (" + strings.Join(d.Reasons, "; ") + ")\n")
	}
	return b.String()
}

func TestDecide(t *testing.T) {
	cases := []struct {
		name string
		in   Input
		want string
	}{
		{"quorum and rules: announced", Input{Services: []Service{{Source: "s80", VIP: vip, Quorum: true, Ready: true, Announce: []*config.BGPAnnounce{edgeComm}}}},
			"+ EDGE 192.0.2.100/32 community 65000:100 med 20 (virtual_server s80: quorum, rules in place)\n"},
		{"rules not in place yet: not announced", Input{Services: []Service{{Source: "s80", VIP: vip, Quorum: true, Announce: []*config.BGPAnnounce{edge}}}},
			"- EDGE 192.0.2.100/32 (virtual_server s80: waiting for the forwarding rules)\n"},
		{"quorum lost: withdrawn even with rules", Input{Services: []Service{{Source: "s80", VIP: vip, Ready: true, Announce: []*config.BGPAnnounce{edgeComm}}}},
			"- EDGE 192.0.2.100/32 (virtual_server s80: quorum lost)\n"},
		{"stopping: everything withdrawn", Input{Stopping: true,
			Services:  []Service{{Source: "s80", VIP: vip, Quorum: true, Ready: true, Announce: []*config.BGPAnnounce{edge}}},
			Instances: []Instance{{Name: "VI_1", Master: true, VIPs: []netip.Addr{vip6}, Announce: []*config.BGPAnnounce{edge}}}},
			"- EDGE 192.0.2.100/32 (virtual_server s80: shutting down)\n- EDGE 2001:db8::100/128 (vrrp_instance VI_1: shutting down)\n"},
		{"one of two ports with quorum keeps the address, attributes of the qualifying one", Input{Services: []Service{
			{Source: "s80", VIP: vip, Quorum: true, Ready: true, Announce: []*config.BGPAnnounce{edgeComm}},
			{Source: "s443", VIP: vip, Quorum: false, Ready: true, Announce: []*config.BGPAnnounce{edgeMED}},
		}}, "+ EDGE 192.0.2.100/32 community 65000:100 med 20 (virtual_server s80: quorum, rules in place; virtual_server s443: quorum lost)\n"},
		{"two qualifying: union of communities, lowest MED", Input{Services: []Service{
			{Source: "s80", VIP: vip, Quorum: true, Ready: true, Announce: []*config.BGPAnnounce{edgeComm}},
			{Source: "s443", VIP: vip, Quorum: true, Ready: true, Announce: []*config.BGPAnnounce{edgeMED, core}},
		}}, "+ CORE 192.0.2.100/32 (virtual_server s443: quorum, rules in place)\n+ EDGE 192.0.2.100/32 community 1:1 community 65000:100 med 10 (virtual_server s80: quorum, rules in place; virtual_server s443: quorum, rules in place)\n"},
		{"vrrp master announces every VIP, IPv4-mapped unmapped", Input{Instances: []Instance{
			{Name: "VI_1", Master: true, VIPs: []netip.Addr{netip.MustParseAddr("::ffff:192.0.2.7"), vip6}, Announce: []*config.BGPAnnounce{edge}},
			{Name: "VI_2", Master: false, VIPs: []netip.Addr{vip}, Announce: []*config.BGPAnnounce{edge}},
		}}, "+ EDGE 192.0.2.7/32 (vrrp_instance VI_1: MASTER)\n- EDGE 192.0.2.100/32 (vrrp_instance VI_2: not MASTER)\n+ EDGE 2001:db8::100/128 (vrrp_instance VI_1: MASTER)\n"},
		{"no announce line: nothing", Input{Services: []Service{{Source: "s80", VIP: vip, Quorum: true, Ready: true}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, print(Decide(tc.in))); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestRoutesAndDiff(t *testing.T) {
	ds := Decide(Input{Services: []Service{
		{Source: "a", VIP: vip, Quorum: true, Ready: true, Announce: []*config.BGPAnnounce{edge, core}},
		{Source: "b", VIP: vip6, Quorum: false, Ready: true, Announce: []*config.BGPAnnounce{edge}},
	}})
	rs := Routes(ds)
	if len(rs["EDGE"]) != 1 || len(rs["CORE"]) != 1 || rs["EDGE"][0].Prefix != p("192.0.2.100/32") {
		t.Fatalf("routes = %v", rs)
	}
	old := []Route{
		{Instance: "EDGE", Prefix: p("192.0.2.1/32")},
		{Instance: "EDGE", Prefix: p("192.0.2.2/32"), MED: 5, HasMED: true},
		{Instance: "EDGE", Prefix: p("192.0.2.3/32")},
	}
	want := []Route{
		{Instance: "EDGE", Prefix: p("192.0.2.2/32"), MED: 6, HasMED: true},
		{Instance: "EDGE", Prefix: p("192.0.2.3/32")},
		{Instance: "EDGE", Prefix: p("2001:db8::1/128")},
	}
	ann, wd := Diff(old, want)
	if diff := cmp.Diff([]Route{want[0], want[2]}, ann, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("announce (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff([]Route{old[0]}, wd, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("withdraw (-want +got)\n%s", diff)
	}
	if a, w := Diff(want, want); len(a)+len(w) != 0 {
		t.Errorf("no change should send nothing, got %v %v", a, w)
	}
}

// announce_delay: a prefix not yet announced waits until its service's
// real servers have been unchanged for the hold; one already announced
// stays; losing quorum withdraws at once; other bgp_instances are not held.
func TestDecideHold(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	svc := Service{Source: "s80", VIP: vip, Quorum: true, Ready: true, Since: t0, Announce: []*config.BGPAnnounce{edge, core}}
	hold := map[string]time.Duration{"EDGE": time.Second}
	ds := Decide(Input{Services: []Service{svc}, Now: t0.Add(300 * time.Millisecond), Hold: hold})
	if got, want := print(ds), "+ CORE 192.0.2.100/32 (virtual_server s80: quorum, rules in place)\n- EDGE 192.0.2.100/32 (virtual_server s80: quorum, rules in place; holding until the real servers have not changed for announce_delay 1s)\n"; got != want {
		t.Fatalf("within the hold:\n%s\nwant:\n%s", got, want)
	}
	if ds[1].HoldUntil != t0.Add(time.Second) || !ds[0].HoldUntil.IsZero() {
		t.Errorf("HoldUntil %v, %v", ds[0].HoldUntil, ds[1].HoldUntil)
	}
	ds = Decide(Input{Services: []Service{svc}, Now: t0.Add(time.Second), Hold: hold, Previous: ds})
	if !ds[1].Announced || !ds[1].HoldUntil.IsZero() {
		t.Fatalf("after the hold: %s", print(ds))
	}
	// The table changes while announced: it stays announced.
	svc.Since = t0.Add(2 * time.Second)
	ds = Decide(Input{Services: []Service{svc}, Now: t0.Add(2100 * time.Millisecond), Hold: hold, Previous: ds})
	if !ds[1].Announced {
		t.Fatalf("an announced prefix was held back by a change: %s", print(ds))
	}
	// Quorum lost: withdrawn; back: held again.
	svc.Quorum = false
	ds = Decide(Input{Services: []Service{svc}, Now: t0.Add(3 * time.Second), Hold: hold, Previous: ds})
	if ds[1].Announced {
		t.Fatalf("quorum lost but announced: %s", print(ds))
	}
	svc.Quorum, svc.Since = true, t0.Add(4*time.Second)
	ds = Decide(Input{Services: []Service{svc}, Now: t0.Add(4500 * time.Millisecond), Hold: hold, Previous: ds})
	if ds[1].Announced || ds[1].HoldUntil != t0.Add(5*time.Second) {
		t.Fatalf("quorum back: want held until %v: %s (until %v)", t0.Add(5*time.Second), print(ds), ds[1].HoldUntil)
	}
}
