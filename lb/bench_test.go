package lb

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchModel is one service with n real servers on 10.1.x.y:80.
func benchModel(b *testing.B, n int, sched string, method Method) (*Model, string) {
	c := ServiceConfig{Proto: TCP, VIP: vip, Port: 80, Scheduler: sched, Method: method, Interface: "eth0"}
	for i := range n {
		c.RealServers = append(c.RealServers, RealServerConfig{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80, Weight: 1 + i%3})
	}
	m, err := New([]ServiceConfig{c})
	if err != nil {
		b.Fatal(err)
	}
	return m, c.Name()
}

// BenchmarkDesired1000 derives the data plane of 1,000 real servers right
// after one of them changed health (the worst case: a Maglev table to
// rebuild for mh and DR), which is what the daemon does per change.
func BenchmarkDesired1000(b *testing.B) {
	for _, tc := range []struct {
		sched  string
		method Method
	}{{"wrr", NAT}, {"wlc", NAT}, {"mh", NAT}, {"wrr", DR}} {
		b.Run(fmt.Sprintf("%s-%v", tc.sched, tc.method), func(b *testing.B) {
			m, name := benchModel(b, 1000, tc.sched, tc.method)
			counts := map[netip.AddrPort]int{}
			for i := range 1000 {
				counts[netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 80)] = i
			}
			m.SetConnCounts(name, counts)
			target := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, 7}), 80)
			up := false
			for b.Loop() {
				if _, err := m.SetHealth(name, target, up, -1); err != nil {
					b.Fatal(err)
				}
				up = !up
				if d := m.Desired(); len(d.Services[0].Backends) < 999 {
					b.Fatal("lost backends")
				}
			}
		})
	}
}

// BenchmarkReconfigure1000 is a reload that brings 1,000 real servers,
// then derives the data plane: the daemon's "apply a change of 1,000 real
// servers" path, minus nft.
func BenchmarkReconfigure1000(b *testing.B) {
	m, _ := benchModel(b, 10, "mh", DR)
	c := ServiceConfig{Proto: TCP, VIP: vip, Port: 80, Scheduler: "mh", Method: DR, Interface: "eth0"}
	for i := range 1000 {
		c.RealServers = append(c.RealServers, RealServerConfig{Addr: netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), Port: 80, Weight: 1})
	}
	for i := 0; b.Loop(); i++ {
		c.RealServers[0].Weight = 1 + i%2 // defeat the table cache
		if _, err := m.Configure([]ServiceConfig{c}); err != nil {
			b.Fatal(err)
		}
		if d := m.Desired(); len(d.Services[0].Backends) != 1000 {
			b.Fatal("wrong backends")
		}
	}
}

// BenchmarkDesired100x10 is 100 mh services of 10 real servers each, one
// server flapping: the other 99 tables come from the cache.
func BenchmarkDesired100x10(b *testing.B) {
	var cfgs []ServiceConfig
	for s := range 100 {
		c := ServiceConfig{Proto: TCP, VIP: netip.AddrFrom4([4]byte{192, 0, 2, byte(s)}), Port: 80, Scheduler: "mh"}
		for i := range 10 {
			c.RealServers = append(c.RealServers, RealServerConfig{Addr: netip.AddrFrom4([4]byte{10, 3, byte(s), byte(i)}), Port: 80, Weight: 1})
		}
		cfgs = append(cfgs, c)
	}
	m, err := New(cfgs)
	if err != nil {
		b.Fatal(err)
	}
	m.Desired() // fill the caches
	name := cfgs[0].Name()
	target := netip.AddrPortFrom(cfgs[0].RealServers[3].Addr, 80)
	up := false
	for b.Loop() {
		m.SetHealth(name, target, up, -1)
		up = !up
		if d := m.Desired(); len(d.Services) != 100 {
			b.Fatal("lost services")
		}
	}
}
