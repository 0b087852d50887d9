package daemon

import (
	"net/netip"
	"slices"
	"testing"

	"vigil/lb"
)

// TestRefreshMACsAsksOnlyForDRReals: the neighbour lookup (host I/O behind
// Daemon.host.neighbours) is asked for the DR real servers once each, and what
// it finds reaches the model.
func TestRefreshMACsAsksOnlyForDRReals(t *testing.T) {
	rs := func(a string) lb.RealServerConfig {
		return lb.RealServerConfig{Addr: netip.MustParseAddr(a), Port: 80, Weight: 1}
	}
	specs := []lb.ServiceConfig{
		{Proto: lb.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80, Method: lb.DR, Interface: "eth0", RealServers: []lb.RealServerConfig{rs("198.51.100.1"), rs("198.51.100.2")}},
		{Proto: lb.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 443, Method: lb.DR, Interface: "eth0", RealServers: []lb.RealServerConfig{rs("198.51.100.1")}},
		{Proto: lb.TCP, VIP: netip.MustParseAddr("192.0.2.11"), Port: 80, Method: lb.NAT, RealServers: []lb.RealServerConfig{rs("198.51.100.3")}},
	}
	m, err := lb.New(specs)
	if err != nil {
		t.Fatal(err)
	}
	mac := [6]byte{2, 0, 0, 0, 0, 1}
	var asked []netip.Addr
	d := &Daemon{bal: &balancer{lbConfig: lbConfig{specs: specs}, model: m}, host: edges{neighbours: func(want []netip.Addr) (map[netip.Addr][6]byte, error) {
		asked = want
		return map[netip.Addr][6]byte{netip.MustParseAddr("198.51.100.1"): mac}, nil
	}}}
	d.refreshMACs()
	slices.SortFunc(asked, netip.Addr.Compare)
	if want := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")}; !slices.Equal(asked, want) {
		t.Errorf("asked for %v, want %v", asked, want)
	}
	if !d.bal.dirty {
		t.Error("a new MAC did not mark the balancer for a push")
	}
	d.bal.dirty = false
	d.refreshMACs()
	if d.bal.dirty {
		t.Error("the same MAC again marked the balancer for a push")
	}
}
