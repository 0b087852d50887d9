package daemon

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"vigil/check"
	"vigil/config"
)

// testLookups answer the translation's host questions without a host:
// every address is routed through eth1, every user is 1000:1000.
var testLookups = lbLookups{
	routeDevice: func(netip.Addr) (string, error) { return "eth1", nil },
	credential: func(user, group string) (*check.Credential, error) {
		return &check.Credential{UID: 1000, GID: 1000}, nil
	},
}

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
		w, err := watch(cfg, c, 1, testLookups.credential)
		if errors.Is(err, errNoChecker) {
			t.Errorf("%v: %v", typ, err)
		} else if err == nil && w == nil {
			t.Errorf("%v: no checker and no error", typ)
		}
	}
	if _, err := watch(&config.Config{}, &config.Checker{Type: config.CheckerType(99)}, 1, testLookups.credential); !errors.Is(err, errNoChecker) {
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
		w, err := watch(&config.Config{TrackFiles: []*config.TrackFile{{Name: "tf", File: "/nonexistent"}}}, &c, 1, testLookups.credential)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if w.Schedule != tt.want {
			t.Errorf("%s: schedule %+v, want %+v", tt.name, w.Schedule, tt.want)
		}
	}
}

func TestSameLBSeesCheckerChanges(t *testing.T) {
	conf := func(timeout string) *lbConfig {
		t.Helper()
		cfg, diags := config.LoadBytes("t.conf", []byte(`
virtual_server 192.0.2.100 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 198.51.100.11 80 {
    weight 1
    HTTP_GET {
      url {
        path /health
      }
      connect_timeout `+timeout+`
    }
  }
}
`), config.Env{})
		if diags.HasErrors() {
			t.Fatalf("config: %s", diags)
		}
		b, err := lbConfigFor(cfg, testLookups)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if !sameLB(conf("2"), conf("2")) {
		t.Error("the same virtual servers compare different: every reload would restart the checks")
	}
	if sameLB(conf("2"), conf("3")) {
		t.Error("a changed connect_timeout compares the same: a reload would keep the old checker")
	}
}

// TestLBConfigFor: the translation of virtual servers into the model's
// services and the checked real servers, one row per keepalived rule it
// carries out.
func TestLBConfigFor(t *testing.T) {
	const inst = `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 100
  use_vmac
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`
	vs := func(head, body string) string {
		return "virtual_server " + head + " {\n  lb_algo rr\n  protocol TCP\n" + body + "}\n"
	}
	real := "  real_server 198.51.100.1 80 {\n    weight 2\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }\n"
	for _, tt := range []struct {
		name, conf string
		check      func(t *testing.T, c *lbConfig)
		err        string // a part of the error; none when empty
		look       *lbLookups
	}{
		{name: "NAT on an instance's VIP waits for MASTER", conf: inst + vs("192.0.2.100 80", "  lb_kind NAT\n"+real),
			check: func(t *testing.T, c *lbConfig) {
				s := c.specs[0]
				if len(c.specs) != 1 || !s.Inactive || s.Interface != "" || s.Port != 80 || len(s.RealServers) != 1 || s.RealServers[0].Weight != 2 {
					t.Errorf("specs %+v", c.specs)
				}
				if c.owned[netip.MustParseAddr("192.0.2.100")] != "VI_1" {
					t.Errorf("owned %v", c.owned)
				}
				if len(c.servers) != 1 || len(c.servers[0].Checks) != 1 || c.servers[0].Weight != 2 {
					t.Errorf("servers %+v", c.servers)
				}
			}},
		{name: "DR forwards on the owner's VMAC", conf: inst + vs("192.0.2.100 80", "  lb_kind DR\n"+real),
			check: func(t *testing.T, c *lbConfig) {
				if c.specs[0].Interface != "vrrp.51" {
					t.Errorf("interface %q, want the VMAC vrrp.51", c.specs[0].Interface)
				}
			}},
		{name: "DR remembers flows for lvs_timeouts", conf: "global_defs {\n  lvs_timeouts tcp 600 tcpfin 30 udp 60\n}\n" + inst + vs("192.0.2.100 80", "  lb_kind DR\n"+real) +
			"virtual_server 192.0.2.100 53 {\n  lb_algo rr\n  protocol UDP\n  lb_kind DR\n  real_server 198.51.100.1 53 {\n  }\n}\n" +
			vs("192.0.2.100 443", "  lb_kind NAT\n"+real),
			check: func(t *testing.T, c *lbConfig) {
				want := map[uint16][2]time.Duration{80: {600 * time.Second, 30 * time.Second}, 53: {60 * time.Second, 0}, 443: {0, 0}}
				for _, s := range c.specs {
					if got := [2]time.Duration{s.FlowTimeout, s.FlowFinTimeout}; got != want[s.Port] {
						t.Errorf("port %d: flow timeouts %v, want %v", s.Port, got, want[s.Port])
					}
				}
			}},
		{name: "DR on an address no instance owns", conf: vs("192.0.2.200 80", "  lb_kind DR\n"+real),
			err: "lb_kind DR needs the interface the VIP 192.0.2.200 arrives on"},
		{name: "a group is a service per address, sharing the real servers' health",
			conf: "virtual_server_group G {\n  192.0.2.10-12 80\n}\n" + vs("group G", "  lb_kind NAT\n"+real),
			check: func(t *testing.T, c *lbConfig) {
				if len(c.specs) != 3 || c.specs[0].Inactive {
					t.Fatalf("%d specs, want 3 active: %+v", len(c.specs), c.specs)
				}
				if len(c.servers) != 1 {
					t.Fatalf("%d checked servers, want 1", len(c.servers))
				}
				if got := c.targets[c.servers[0].ID]; len(got) != 3 {
					t.Errorf("the real server's health goes to %d services, want 3", len(got))
				}
			}},
		{name: "FNAT takes its local addresses", conf: "local_address_group L {\n  203.0.113.1-2\n}\n" + vs("192.0.2.10 80", "  lb_kind FNAT\n  laddr_group_name L\n"+real),
			check: func(t *testing.T, c *lbConfig) {
				if got := c.specs[0].LocalAddrs; len(got) != 2 || got[1] != netip.MustParseAddr("203.0.113.2") {
					t.Errorf("local addresses %v", got)
				}
			}},
		{name: "alpha starts a real server down", conf: vs("192.0.2.10 80", "  lb_kind NAT\n  alpha\n"+real),
			check: func(t *testing.T, c *lbConfig) {
				for id, r := range c.reals {
					if !r.alpha {
						t.Errorf("%s starts up under alpha", id)
					}
				}
			}},
		{name: "sorry server and persistence", conf: vs("192.0.2.10 80", "  lb_kind NAT\n  persistence_timeout 60\n  persistence_granularity 255.255.255.0\n  sorry_server 198.51.100.9 8080\n"+real),
			check: func(t *testing.T, c *lbConfig) {
				s := c.specs[0]
				if s.Persistence != 60*time.Second || s.PersistenceMask != 24 || s.Sorry != netip.MustParseAddrPort("198.51.100.9:8080") {
					t.Errorf("persistence %v /%d, sorry %v", s.Persistence, s.PersistenceMask, s.Sorry)
				}
			}},
		{name: "an SMTP_CHECK host block is a checker of its own", conf: vs("192.0.2.10 25", "  lb_kind NAT\n  real_server 198.51.100.1 25 {\n    SMTP_CHECK {\n      connect_timeout 1\n      host {\n        connect_ip 198.51.100.2\n      }\n    }\n  }\n"),
			check: func(t *testing.T, c *lbConfig) {
				if n := len(c.servers[0].Checks); n != 2 {
					t.Errorf("%d checks, want 2 (the checker and its host block)", n)
				}
			}},
		{name: "DR announced over BGP forwards towards its real servers",
			conf: "bgp_instance EDGE {\n  local_as 65001\n  neighbor 198.51.100.254 {\n    remote_as 65000\n  }\n}\n" + vs("192.0.2.200 80", "  lb_kind DR\n  bgp_announce EDGE\n"+real),
			check: func(t *testing.T, c *lbConfig) {
				if s := c.specs[0]; s.Interface != "eth1" || s.Inactive {
					t.Errorf("interface %q (inactive %v), want eth1, the route to the real servers, and active", s.Interface, s.Inactive)
				}
			}},
		{name: "MISC_CHECK's user is looked up", conf: vs("192.0.2.10 80", "  lb_kind NAT\n  real_server 198.51.100.1 80 {\n    MISC_CHECK {\n      misc_path \"/bin/true\"\n      user nobody\n    }\n  }\n"),
			look: &lbLookups{credential: func(user, group string) (*check.Credential, error) {
				return nil, errors.New("no user " + user)
			}},
			err: "no user nobody"},
		{name: "TUN is refused", conf: vs("192.0.2.10 80", "  lb_kind TUN\n"+real), err: "lb_kind TUN is not supported"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := config.LoadBytes("t.conf", []byte(tt.conf), config.Env{})
			for _, d := range diags {
				if d.Severity >= config.Error && tt.err == "" {
					t.Fatalf("config: %s", d)
				}
			}
			look := testLookups
			if tt.look != nil {
				look = *tt.look
			}
			c, err := lbConfigFor(cfg, look)
			switch {
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one with %q", err, tt.err)
			case tt.err == "" && err != nil:
				t.Fatal(err)
			case tt.err == "":
				tt.check(t, c)
			}
		})
	}
}
