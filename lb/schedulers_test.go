package lb_test

import (
	"net/netip"
	"slices"
	"testing"

	"vigil/config"
	"vigil/lb"
)

// TestEverySchedulerIsModelled: config accepts exactly the schedulers lb
// models, and each one says by itself how it selects and whether it needs
// connection counts; nothing else in the tree knows scheduler names
// (TestNoSchedulerNamesOutsideLB at the root). Adding a scheduler is a row
// in lb's table and a name in config.Schedulers.
func TestEverySchedulerIsModelled(t *testing.T) {
	cfgNames := slices.Sorted(slices.Values(config.Schedulers))
	if !slices.Equal(cfgNames, lb.Schedulers()) {
		t.Fatalf("config.Schedulers %v, lb.Schedulers %v: add the scheduler to both", cfgNames, lb.Schedulers())
	}
	for _, name := range lb.Schedulers() {
		c := lb.ServiceConfig{Proto: lb.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80, Method: lb.NAT, Scheduler: name,
			RealServers: []lb.RealServerConfig{{Addr: netip.MustParseAddr("198.51.100.1"), Port: 80, Weight: 1}}}
		m, err := lb.New([]lb.ServiceConfig{c})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		s := m.Desired().Services[0]
		if s.Selection == lb.SelectRandom != c.NeedsConnCounts() {
			t.Errorf("%s: selection %v but NeedsConnCounts %v: counted schedulers pick at random", name, s.Selection, c.NeedsConnCounts())
		}
		if (s.Selection == lb.SelectHash || s.Selection == lb.SelectMaglev) != (s.Hash != lb.HashNone) {
			t.Errorf("%s: selection %v with hash %v", name, s.Selection, s.Hash)
		}
		c.Method = lb.DR
		if c.NeedsConnCounts() {
			t.Errorf("%s: DR needs connection counts, but keeps no flows to count", name)
		}
	}
	if !(&lb.ServiceConfig{}).NeedsConnCounts() {
		t.Error("the default scheduler (wlc) does not need connection counts")
	}
}
