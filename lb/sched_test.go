package lb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
)

// dispatch is what the data plane does with a Service for one new flow,
// given the numgen counter or the flow hash v: weighted ranges for
// numgen/hash, the table for Maglev.
func dispatch(s *Service, v uint32) Backend {
	if s.Selection == SelectMaglev {
		return s.Backends[s.Maglev[int(v%uint32(len(s.Maglev)))]]
	}
	r := int(v % uint32(s.TotalWeight()))
	for _, b := range s.Backends {
		if r < b.Weight {
			return b
		}
		r -= b.Weight
	}
	panic("range past the total weight")
}

func weights(s Service) string {
	var b []string
	for _, x := range s.Backends {
		b = append(b, fmt.Sprintf("%d", x.Weight))
	}
	return strings.Join(b, " ")
}

// wrr through numgen: a full cycle of the counter gives every backend
// exactly its weight; random flow hashes (sh, and numgen random) give it
// its share within 1 percentage point over 200,000 flows.
func TestWeightedDistribution(t *testing.T) {
	for _, sched := range []string{"wrr", "sh", "dh", "mh"} {
		t.Run(sched, func(t *testing.T) {
			c := svc(4, func(c *ServiceConfig) { c.Scheduler = sched })
			for i, w := range []int{1, 2, 3, 10} {
				c.RealServers[i].Weight = w
			}
			s := mustNew(t, c).Desired().Services[0]
			want := map[netip.Addr]float64{}
			for _, b := range s.Backends {
				want[b.Addr] = float64(b.Weight) / 16
			}
			if sched == "wrr" {
				got := map[netip.Addr]int{}
				for v := range uint32(16 * 10) {
					got[dispatch(&s, v).Addr]++
				}
				for _, b := range s.Backends {
					if got[b.Addr] != 10*b.Weight {
						t.Errorf("numgen cycle: %v got %d of 160, want %d", b.Addr, got[b.Addr], 10*b.Weight)
					}
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			got := map[netip.Addr]int{}
			const flows = 200000
			for range flows {
				got[dispatch(&s, rng.Uint32()).Addr]++
			}
			for a, w := range want {
				if f := float64(got[a]) / flows; math.Abs(f-w) > 0.01 {
					t.Errorf("%v: share %.4f, want %.4f±0.01", a, f, w)
				}
			}
		})
	}
}

func TestSchedulerMapping(t *testing.T) {
	tests := []struct {
		sched  string
		flags  []string
		method Method
		sel    Selection
		hash   Hash
		w      string
	}{
		{"rr", nil, NAT, SelectNumgen, HashNone, "1 1 1"},
		{"wrr", nil, NAT, SelectNumgen, HashNone, "1 2 3"},
		{"sh", nil, NAT, SelectHash, HashSourceAddr, "1 2 3"},
		{"sh", []string{"sh-port"}, NAT, SelectHash, HashSourceAddrPort, "1 2 3"},
		{"dh", nil, NAT, SelectHash, HashDestAddr, "1 2 3"},
		{"lblc", nil, NAT, SelectHash, HashDestAddr, "1 2 3"},
		{"mh", nil, NAT, SelectMaglev, HashSourceAddr, "1 2 3"},
		{"mh", []string{"mh-port"}, FNAT, SelectMaglev, HashSourceAddrPort, "1 2 3"},
		{"lc", nil, NAT, SelectRandom, HashNone, "1 1 1"},
		{"wlc", nil, NAT, SelectRandom, HashNone, "1 2 3"},
		{"sed", nil, NAT, SelectRandom, HashNone, "1 2 3"},
		{"nq", nil, NAT, SelectRandom, HashNone, "1 2 3"},
		{"ovf", nil, NAT, SelectRandom, HashNone, "3"},
		{"wlc", nil, DR, SelectMaglev, HashFlow, "1 2 3"},
		{"fo", nil, NAT, SelectNumgen, HashNone, "3"},
		{"rr", nil, DR, SelectMaglev, HashFlow, "1 1 1"},
		{"sh", nil, DR, SelectMaglev, HashSourceAddr, "1 2 3"},
	}
	for _, tt := range tests {
		c := svc(3, func(c *ServiceConfig) {
			c.Scheduler, c.SchedFlags, c.Method = tt.sched, tt.flags, tt.method
			c.LocalAddrs = []netip.Addr{netip.MustParseAddr("10.1.0.1")}
			for i := range c.RealServers {
				c.RealServers[i].Weight = i + 1
			}
		})
		s := mustNew(t, c).Desired().Services[0]
		if s.Selection != tt.sel || s.Hash != tt.hash || weights(s) != tt.w || (s.Maglev != nil) != (tt.sel == SelectMaglev) {
			t.Errorf("%s %v %v: %v %v weights %q, want %v %v %q", tt.sched, tt.flags, tt.method, s.Selection, s.Hash, weights(s), tt.sel, tt.hash, tt.w)
		}
	}
}

// The connection-count approximation, case by case.
func TestConnCountWeights(t *testing.T) {
	tests := []struct {
		sched   string
		weights []int
		conns   []int // nil: none reported
		want    string
		drain   string
	}{
		{"lc", []int{5, 5, 5}, nil, "1 1 1", ""},
		{"wlc", []int{1, 2, 3}, nil, "1 2 3", ""},
		// An idle server soaks up new flows; busy ones keep a trickle.
		{"lc", []int{1, 1, 1}, []int{0, 100, 1000}, "256 3 1", ""},
		// Loads already in proportion to the weights: new flows follow
		// the weights, so the loads stay in proportion.
		{"wlc", []int{1, 2, 4}, []int{100, 200, 400}, "64 128 256", ""},
		// Equal loads: the heavier server is the less loaded one
		// (scores 1/11 and 9/13).
		{"sed", []int{1, 3}, []int{10, 10}, "34 256", ""},
		// nq: while one server idles, the busy ones get the minimum.
		{"nq", []int{1, 1, 2}, []int{0, 1, 0}, "128 1 256", ""},
		{"nq", []int{1, 1}, []int{4, 1}, "102 256", ""},
		// fo: only the highest weight takes new flows.
		{"fo", []int{2, 5, 5}, nil, "5", "10.0.0.1:80 10.0.0.3:80"},
		// ovf: the highest weight until its connections reach its weight.
		{"ovf", []int{2, 5, 5}, []int{0, 5, 1}, "5", "10.0.0.1:80 10.0.0.2:80"},
		{"ovf", []int{2, 5, 5}, []int{1, 5, 5}, "2", "10.0.0.2:80 10.0.0.3:80"},
		{"ovf", []int{2, 5, 5}, []int{3, 5, 5}, "5", "10.0.0.1:80 10.0.0.3:80"},
	}
	for _, tt := range tests {
		c := svc(len(tt.weights), func(c *ServiceConfig) { c.Scheduler = tt.sched })
		var counts map[netip.AddrPort]int
		for i, w := range tt.weights {
			c.RealServers[i].Weight = w
			if tt.conns != nil {
				if counts == nil {
					counts = map[netip.AddrPort]int{}
				}
				counts[rs(i+1)] = tt.conns[i]
			}
		}
		m := mustNew(t, c)
		if err := m.SetConnCounts(c.Name(), counts); err != nil {
			t.Fatal(err)
		}
		s := m.Desired().Services[0]
		var drain []string
		for _, b := range s.Draining {
			drain = append(drain, b.AddrPort().String())
		}
		if got, d := weights(s), strings.Join(drain, " "); got != tt.want || d != tt.drain {
			t.Errorf("%s weights %v conns %v: got %q | %q, want %q | %q", tt.sched, tt.weights, tt.conns, got, d, tt.want, tt.drain)
		}
	}
}

// The approximation reaches what least-connection is for: a server added
// to a loaded pool catches up, and loads end proportional to the weights.
// Every round the daemon reports the counts, 300 new flows arrive and a
// tenth of the established ones end.
func TestConnCountsConverge(t *testing.T) {
	for _, sched := range []string{"lc", "wlc"} {
		t.Run(sched, func(t *testing.T) {
			c := svc(3, func(c *ServiceConfig) { c.Scheduler = sched })
			c.RealServers[2].Weight = 2
			m := mustNew(t, c)
			conns := []float64{2000, 2000, 0} // server 3 just joined
			rng := rand.New(rand.NewPCG(3, 4))
			for range 60 {
				counts := map[netip.AddrPort]int{}
				for i, n := range conns {
					counts[rs(i+1)] = int(n)
				}
				m.SetConnCounts(c.Name(), counts)
				s := m.Desired().Services[0]
				for range 300 {
					conns[int(dispatch(&s, rng.Uint32()).Addr.As4()[3])-1]++
				}
				for i := range conns {
					conns[i] *= 0.9
				}
			}
			total := conns[0] + conns[1] + conns[2]
			want := []float64{1. / 3, 1. / 3, 1. / 3}
			if sched == "wlc" {
				want = []float64{0.25, 0.25, 0.5}
			}
			for i := range conns {
				if f := conns[i] / total; math.Abs(f-want[i]) > 0.05 {
					t.Errorf("server %d holds %.3f of the connections, want %.3f±0.05 (%v)", i+1, f, want[i], conns)
				}
			}
		})
	}
}

func TestFitTotal(t *testing.T) {
	c := svc(3)
	for i := range c.RealServers {
		c.RealServers[i].Weight = MaxWeight - i
	}
	c.RealServers[2].Weight = 1
	s := mustNew(t, c).Desired().Services[0]
	if tw := s.TotalWeight(); tw > MaxTotalWeight {
		t.Errorf("total weight %d above %d", tw, MaxTotalWeight)
	}
	if s.Backends[0].Weight < s.Backends[1].Weight || s.Backends[2].Weight != 1 || s.Backends[0].Weight < MaxTotalWeight/2-2 {
		t.Errorf("weights %s", weights(s))
	}
}

func fmtDesired(d Desired) string { return fmt.Sprintf("%#v", d) }

// DRNote names the schedulers whose IPVS meaning DR cannot keep, and only
// those.
func TestDRNote(t *testing.T) {
	for _, c := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"mh", nil, ""}, {"mh", []string{"mh-port"}, ""}, {"sh", nil, ""}, {"dh", nil, ""}, {"fo", nil, ""},
		{"rr", nil, "weight 1"}, {"wrr", nil, "not in turn"}, {"wlc", nil, "no connections"}, {"lc", nil, "weight 1"},
	} {
		got := DRNote(c.name, c.flags, false)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("DRNote(%s, %v) = %q, want one with %q", c.name, c.flags, got, c.want)
		}
	}
	if got := DRNote("rr", nil, true); !strings.Contains(got, "client address") {
		t.Errorf("persistent rr: %q", got)
	}
}
