package nft

import (
	"strings"
	"testing"

	"vigil/lb"
)

// TestDRCounterMapsCoverForwarding: in DR the counter lookup sits in the
// forwarding rule, so a MAC the forwarding maps can produce but the
// counter map lacks would stop that rule and drop the packet. Every value
// of the Maglev and drain maps must be a key of the counter maps.
func TestDRCounterMapsCoverForwarding(t *testing.T) {
	b1, b2, b3 := beMAC("192.0.2.11:80", 1, 0x11), beMAC("192.0.2.12:80", 1, 0x12), beMAC("192.0.2.13:80", 1, 0x13)
	shared := beMAC("192.0.2.14:80", 1, 0x11) // same host as b1
	mk := func(bs, draining []lb.Backend, mg []int) lb.Desired {
		s := natSvc("192.0.2.100", 80, lb.SelectMaglev, bs...)
		s.Method, s.Interface, s.Hash, s.Maglev, s.Draining = lb.DR, "eth0", lb.HashFlow, mg, draining
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
		var cin, cnew *set
		for name, s := range tb.sets {
			switch {
			case strings.HasSuffix(name, "_cin"):
				cin = s
			case strings.HasSuffix(name, "_cnew"):
				cnew = s
			}
		}
		if cin == nil || cnew == nil {
			t.Fatalf("no counter maps in\n%s", r.rs)
		}
		for name, s := range tb.sets {
			if !strings.HasSuffix(name, "_mh") && !strings.HasSuffix(name, "_drain") {
				continue
			}
			for _, mac := range s.elems {
				if _, ok := cin.elems[mac]; !ok {
					t.Errorf("%s forwards to %s, which %s does not count", name, mac, cin.name)
				}
				if _, ok := cnew.elems[mac]; !ok {
					t.Errorf("%s forwards to %s, which %s does not count", name, mac, cnew.name)
				}
			}
		}
		for _, c := range cin.elems {
			if !tb.counters[c] {
				t.Errorf("%s names counter %s, which the table does not create", cin.name, c)
			}
		}
	}
}
