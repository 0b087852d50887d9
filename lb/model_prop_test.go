package lb

import (
	"net/netip"
	"testing"

	"pgregory.net/rapid"
)

// Any sequence of health verdicts, dynamic weights, connection counts and
// VRRP changes keeps the model's invariants: the quorum state agrees with
// the hysteresis rule, events alternate and match the state, every backend
// is in at most one list, Backends have positive weights, the Maglev table
// indexes Backends, and Desired does not depend on how often it is asked.
func TestModelInvariants(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 8).Draw(t, "n")
		c := svc(n, func(c *ServiceConfig) {
			c.Scheduler = rapid.SampledFrom([]string{"rr", "wrr", "sh", "mh", "wlc", "lc", "nq", "fo", "ovf"}).Draw(t, "sched")
			c.Quorum = rapid.IntRange(0, 2*n).Draw(t, "quorum")
			c.Hysteresis = rapid.IntRange(0, 3).Draw(t, "hysteresis")
			if rapid.Bool().Draw(t, "sorry") {
				c.Sorry = netip.MustParseAddrPort("10.9.9.9:80")
				c.SorryInhibit = rapid.Bool().Draw(t, "sorryInhibit")
			}
			if rapid.Bool().Draw(t, "dr") {
				c.Method, c.Interface = DR, "eth0"
			}
			for i := range c.RealServers {
				c.RealServers[i].Weight = rapid.IntRange(0, 3).Draw(t, "weight")
				c.RealServers[i].InhibitOnFailure = rapid.Bool().Draw(t, "inhibit")
				c.RealServers[i].Alpha = rapid.Bool().Draw(t, "alpha")
				c.RealServers[i].UThreshold = rapid.SampledFrom([]int{0, 5}).Draw(t, "uthreshold")
			}
		})
		m, err := New([]ServiceConfig{c})
		if err != nil {
			t.Fatal(err)
		}
		name := c.Name()
		q, h := max(c.Quorum, 1), c.Hysteresis
		up, _ := m.QuorumUp(name)
		weights := map[netip.AddrPort]int{}
		alive := map[netip.AddrPort]bool{}
		for _, r := range c.RealServers {
			k := netip.AddrPortFrom(r.Addr, r.Port)
			weights[k], alive[k] = r.Weight, !r.Alpha
		}
		live := func() int {
			w := 0
			for k, a := range alive {
				if a {
					w += weights[k]
				}
			}
			return w
		}
		for step := range rapid.IntRange(1, 40).Draw(t, "steps") {
			_ = step
			switch rapid.IntRange(0, 2).Draw(t, "op") {
			case 0:
				i := rapid.IntRange(1, n).Draw(t, "rs")
				a := rapid.Bool().Draw(t, "up")
				w := rapid.IntRange(-1, 4).Draw(t, "dyn")
				evs, err := m.SetHealth(name, rs(i), a, w)
				if err != nil {
					t.Fatal(err)
				}
				alive[rs(i)] = a
				weights[rs(i)] = w
				if w < 0 {
					weights[rs(i)] = c.RealServers[i-1].Weight
				}
				lw := live()
				switch {
				case len(evs) > 1:
					t.Fatalf("%d events from one verdict", len(evs))
				case len(evs) == 1 && evs[0].Kind == QuorumUp:
					if up || lw < q+h {
						t.Fatalf("quorum up at weight %d (q %d h %d, was up %v)", lw, q, h, up)
					}
					up = true
				case len(evs) == 1 && evs[0].Kind == QuorumDown:
					if !up || (lw >= q-h && lw > 0) {
						t.Fatalf("quorum down at weight %d (q %d h %d, was up %v)", lw, q, h, up)
					}
					up = false
				case up && (lw == 0 || lw < q-h), !up && lw >= q+h:
					t.Fatalf("no event at weight %d (q %d h %d, up %v)", lw, q, h, up)
				}
			case 1:
				counts := map[netip.AddrPort]int{}
				for i := 1; i <= n; i++ {
					counts[rs(i)] = rapid.IntRange(0, 8).Draw(t, "conns")
				}
				if err := m.SetConnCounts(name, counts); err != nil {
					t.Fatal(err)
				}
			case 2:
				m.SetActive(vip, rapid.Bool().Draw(t, "active"))
			}
			if got, _ := m.QuorumUp(name); got != up {
				t.Fatalf("QuorumUp %v, events said %v", got, up)
			}
			d := m.Desired()
			s := d.Services[0]
			seen := map[netip.AddrPort]bool{}
			for _, b := range s.Backends {
				if b.Weight <= 0 || seen[b.AddrPort()] {
					t.Fatalf("backend %v weight %d (seen %v)", b.AddrPort(), b.Weight, seen[b.AddrPort()])
				}
				seen[b.AddrPort()] = true
				if !b.Sorry && !alive[b.AddrPort()] {
					t.Fatalf("failed server %v takes new flows", b.AddrPort())
				}
			}
			for _, b := range s.Draining {
				if b.Weight != 0 || seen[b.AddrPort()] {
					t.Fatalf("draining %v weight %d, also a backend %v", b.AddrPort(), b.Weight, seen[b.AddrPort()])
				}
				seen[b.AddrPort()] = true
			}
			if s.Sorry != (!up && c.Sorry.IsValid()) {
				t.Fatalf("sorry %v with quorum up %v", s.Sorry, up)
			}
			for _, i := range s.Maglev {
				if i < 0 || i >= len(s.Backends) {
					t.Fatalf("Maglev entry %d outside %d backends", i, len(s.Backends))
				}
			}
			if (s.Selection == SelectMaglev && len(s.Backends) > 0) != (s.Maglev != nil) {
				t.Fatalf("selection %v with %d backends and table %d", s.Selection, len(s.Backends), len(s.Maglev))
			}
			if d2 := m.Desired(); !desiredEqual(d, d2) {
				t.Fatal("Desired changed without input")
			}
		}
	})
}

func desiredEqual(a, b Desired) bool {
	return fmtDesired(a) == fmtDesired(b)
}
