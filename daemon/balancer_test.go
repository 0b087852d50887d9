package daemon

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"vigil/check"
	"vigil/config"
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
