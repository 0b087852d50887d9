package daemon

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"vigil/check"
	"vigil/config"
	"vigil/lb"
)

// TestEveryCheckerTypeIsMapped: every checker type config accepts becomes
// a health checker (BFD_CHECK is a BFD session, read elsewhere), so a new
// checker type fails here until watch maps it.
func TestEveryCheckerTypeIsMapped(t *testing.T) {
	cfg := &config.Config{TrackFiles: []*config.TrackFile{{Name: "tf", File: "/nonexistent"}}}
	for _, typ := range config.CheckerTypes() {
		if typ == config.CheckBFD {
			continue
		}
		c := &config.Checker{Type: typ, ConnectIP: netip.MustParseAddr("198.51.100.1"), ConnectPort: 80,
			ConnectTimeout: time.Second, DelayLoop: time.Second,
			HTTP: &config.HTTPCheck{URLs: []*config.URLCheck{{Path: "/"}}}, Misc: &config.MiscCheck{Path: &config.Command{Args: []string{"/bin/true"}}},
			DNS: &config.DNSCheck{Type: "A", Name: "example."}, UDP: &config.UDPCheck{}, SMTP: &config.SMTPCheck{},
			File: &config.FileCheck{TrackFile: "tf"}, DRPath: &config.DRPathCheck{VIP: netip.MustParseAddr("192.0.2.1")}}
		w, err := watch(cfg, c, 1)
		if errors.Is(err, errNoChecker) {
			t.Errorf("%v: %v", typ, err)
		} else if err == nil && w == nil {
			t.Errorf("%v: no checker and no error", typ)
		}
	}
	if _, err := watch(&config.Config{}, &config.Checker{Type: config.CheckerType(99)}, 1); !errors.Is(err, errNoChecker) {
		t.Errorf("an unknown checker type: %v, want errNoChecker", err)
	}
}

// TestWatchSchedule: the translation from a checker block to a schedule,
// which is keepalived's timing per checker type.
func TestWatchSchedule(t *testing.T) {
	base := config.Checker{ConnectIP: netip.MustParseAddr("198.51.100.1"), ConnectPort: 80, ConnectTimeout: time.Second,
		DelayLoop: 7 * time.Second, Retry: 2, DelayBeforeRetry: 3 * time.Second, Warmup: 4 * time.Second}
	twoURLs := &config.HTTPCheck{URLs: []*config.URLCheck{{Path: "/a"}, {Path: "/b"}}}
	for _, tt := range []struct {
		name string
		c    func(*config.Checker)
		want check.Schedule
	}{
		{"TCP", func(c *config.Checker) { c.Type = config.CheckTCP },
			check.Schedule{DelayLoop: 7 * time.Second, Retry: 2, DelayBeforeRetry: 3 * time.Second, Warmup: 4 * time.Second, Rise: 1}},
		{"HTTP with two URLs needs both to rise", func(c *config.Checker) { c.Type, c.HTTP = config.CheckHTTP, twoURLs },
			check.Schedule{DelayLoop: 7 * time.Second, Retry: 2, DelayBeforeRetry: 3 * time.Second, Warmup: 4 * time.Second, Rise: 2}},
		{"fast_recovery rises on one", func(c *config.Checker) {
			c.Type, c.HTTP = config.CheckHTTP, &config.HTTPCheck{URLs: twoURLs.URLs, FastRecovery: true}
		}, check.Schedule{DelayLoop: 7 * time.Second, Retry: 2, DelayBeforeRetry: 3 * time.Second, Warmup: 4 * time.Second, Rise: 1}},
		{"FILE_CHECK polls", func(c *config.Checker) { c.Type, c.File = config.CheckFile, &config.FileCheck{TrackFile: "tf"} },
			check.Schedule{DelayLoop: check.FilePollInterval, Rise: 1}},
	} {
		c := base
		tt.c(&c)
		w, err := watch(&config.Config{TrackFiles: []*config.TrackFile{{Name: "tf", File: "/nonexistent"}}}, &c, 1)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if w.Schedule != tt.want {
			t.Errorf("%s: schedule %+v, want %+v", tt.name, w.Schedule, tt.want)
		}
	}
}

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
	d := &Daemon{bal: &balancer{specs: specs, model: m}, host: edges{neighbours: func(want []netip.Addr) (map[netip.Addr][6]byte, error) {
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
