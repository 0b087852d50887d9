package nft

import (
	"strings"
	"testing"
	"time"

	"vigil/lb"
)

// TestDRCounterMapsCoverForwarding: in DR the statistics lookup sits in
// the forwarding rule, so a MAC the forwarding maps can produce but the
// statistics sets lack would stop that rule and drop the packet. Every
// value of the Maglev and drain maps must have its element.
func TestDRCounterMapsCoverForwarding(t *testing.T) {
	b1, b2, b3 := beMAC("192.0.2.11:80", 1, 0x11), beMAC("192.0.2.12:80", 1, 0x12), beMAC("192.0.2.13:80", 1, 0x13)
	shared := beMAC("192.0.2.14:80", 1, 0x11) // same host as b1
	mk := func(bs, draining []lb.Backend, mg []int) lb.Desired {
		s := natSvc("192.0.2.100", 80, lb.SelectMaglev, bs...)
		s.Method, s.Interface, s.Hash, s.Maglev, s.Draining = lb.DR, "eth0", lb.HashFlow, mg, draining
		s.FlowTimeout = time.Minute
		return lb.Desired{Services: []lb.Service{s}}
	}
	e := testEnv
	r1, err := render(mk([]lb.Backend{b1, b2, b3, shared}, nil, []int{0, 1, 2, 3, 0, 1, 2}), e)
	if err != nil {
		t.Fatal(err)
	}
	e.drOwners = r1.drOwners
	d2 := b2
	d2.Weight = 0
	r2, err := render(mk([]lb.Backend{b1, b3, shared}, []lb.Backend{d2}, []int{0, 1, 2, 0, 1, 2, 0}), e)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []rendered{r1, r2} {
		tb := r.rs.tables["netdev"]
		sin, snew := tb.sets["stats4dr_in"], tb.sets["stats4dr_new"]
		if sin == nil || snew == nil {
			t.Fatalf("no statistics sets in\n%s", r.rs)
		}
		for name, s := range tb.sets {
			if !strings.HasSuffix(name, "_mh") && !strings.HasSuffix(name, "_drain") {
				continue
			}
			for _, mac := range s.elems {
				key := "192.0.2.100 . tcp . 80 . " + mac
				if _, ok := sin.elems[key]; !ok {
					t.Errorf("%s forwards to %s, which %s does not count", name, mac, sin.name)
				}
				if _, ok := snew.elems[key]; !ok {
					t.Errorf("%s forwards to %s, which %s does not count", name, mac, snew.name)
				}
			}
		}
		for key := range sin.elems {
			if _, ok := r.counters[refKey(sin.name, key)]; !ok {
				t.Errorf("%s element %s counts for no real server", sin.name, key)
			}
		}
	}
}

// TestNATCounterKeys: each real server of a NAT service gets an element
// keyed (VIP, protocol, real server, port) in the connection, in and out
// sets; a second service of the same address and protocol that sends to
// the same real server and port cannot be told apart in the packet path
// and is not given elements of its own; IPv6 has its own sets.
func TestNATCounterKeys(t *testing.T) {
	web := natSvc("192.0.2.10", 80, lb.SelectNumgen, be("198.51.100.11:80", 1), be("198.51.100.12:80", 1))
	alt := natSvc("192.0.2.10", 8080, lb.SelectNumgen, be("198.51.100.11:80", 1), be("198.51.100.13:80", 1))
	alt.Name, alt.ID = "192.0.2.10:8080/tcp", "vs_192_0_2_10_8080_tcp"
	web.Draining = []lb.Backend{be("198.51.100.14:80", 0)}
	v6 := natSvc("2001:db8::10", 80, lb.SelectNumgen, be("[2001:db8:1::11]:80", 1))
	r, err := render(lb.Desired{Services: []lb.Service{web, alt, v6}}, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	tb := r.rs.tables["inet"]
	in := tb.sets["stats4_in"]
	if in == nil || tb.sets["stats4_out"] == nil || tb.sets["stats4_new"] == nil || tb.sets["stats6_in"] == nil {
		t.Fatalf("statistics sets missing:\n%s", r.rs)
	}
	want := map[string]string{ // element: the service whose real server it counts
		"192.0.2.10 . tcp . 198.51.100.11 . 80": web.Name,
		"192.0.2.10 . tcp . 198.51.100.12 . 80": web.Name,
		"192.0.2.10 . tcp . 198.51.100.14 . 80": web.Name, // draining: its flows still count
		"192.0.2.10 . tcp . 198.51.100.13 . 80": alt.Name,
	}
	if len(in.elems) != len(want) {
		t.Errorf("stats4_in has %d elements, want %d: %v", len(in.elems), len(want), in.elems)
	}
	for k, svc := range want {
		ref, ok := r.counters[refKey("stats4_in", k)]
		if _, there := in.elems[k]; !there || !ok || ref.service != svc || ref.kind != countIn {
			t.Errorf("stats4_in element %s: in the set %v, counts %+v; want service %s", k, there, ref, svc)
		}
	}
	ref := r.counters[refKey("stats4_out", "192.0.2.10 . tcp . 198.51.100.12 . 80")]
	if ref.service != web.Name || ref.backend != be("198.51.100.12:80", 1).AddrPort() || ref.kind != countOut {
		t.Errorf("out counter of 198.51.100.12: %+v", ref)
	}
	if _, ok := r.counters[refKey("stats6_new", "2001:db8::10 . tcp . 2001:db8:1::11 . 80")]; !ok {
		t.Errorf("the IPv6 real server has no connection counter: %v", r.counters)
	}
	if len(tb.chains["stats_in"].rules) != 6 || len(tb.chains["stats_out"].rules) != 6 {
		t.Errorf("want 3 rules per family in each statistics chain:\n%s", r.rs)
	}
}
