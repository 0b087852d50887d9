package config

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
	"vigil/internal/inet"
	"vigil/vrrp"

	"github.com/google/go-cmp/cmp"
)

func TestFullConfigDefaults(t *testing.T) {
	data, err := os.ReadFile("testdata/model/full.conf")
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := LoadBytes("full.conf", data, testEnv())
	if diags.HasErrors() || diags.Count(Warning) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", diags)
	}
	g := cfg.Global
	if g.RouterID != "lb1" || len(g.NotificationEmail) != 2 || g.SMTPServer != "192.0.2.25" || g.SMTPPort != 2525 || g.SMTPConnectTimeout != 15*time.Second {
		t.Errorf("global: %+v", g)
	}
	wantGarp := Garp{GARP: vrrp.GARP{MasterDelay: 2 * time.Second, MasterRepeat: 5, MasterRefresh: time.Minute, MasterRefreshRepeat: 1, LowerPrioDelay: 2 * time.Second, LowerPrioRepeat: 5}}
	if diff := cmp.Diff(wantGarp, g.Garp); diff != "" {
		t.Errorf("global garp (-want +got):\n%s", diff)
	}

	s := cfg.Script("chk_haproxy")
	if diff := cmp.Diff([]string{"/ok/check_haproxy.sh", "--quick"}, s.Script.Args); diff != "" {
		t.Errorf("script args (-want +got):\n%s", diff)
	}
	if s.Interval != 2*time.Second || s.Timeout != 3*time.Second || s.Weight != -30 || s.Fall != 3 || s.Rise != 2 {
		t.Errorf("chk_haproxy: %+v", s)
	}
	if d := cfg.Script("chk_disk"); d.Interval != time.Second || d.Timeout != time.Second || d.Rise != 1 || d.Fall != 1 || d.Weight != 0 {
		t.Errorf("chk_disk defaults: %+v", d)
	}

	pub := cfg.Instance("VI_PUBLIC")
	if pub.State != StateMaster || pub.Priority != 150 || pub.VRID != 51 || pub.Version != 2 || pub.Family != inet.IPv4 || pub.AdvertInt != time.Second {
		t.Errorf("VI_PUBLIC: %+v", pub)
	}
	if pub.Auth == nil || pub.Auth.Type != AuthPass || pub.Auth.Pass != "s3cret" {
		t.Errorf("auth: %+v", pub.Auth)
	}
	if pub.VIPs[0].Prefix != netip.MustParsePrefix("192.0.2.100/24") || pub.VIPs[0].Label != "eth0:vip" || pub.VIPs[1].Prefix != netip.MustParsePrefix("192.0.2.101/32") {
		t.Errorf("VIPs: %+v %+v", pub.VIPs[0], pub.VIPs[1])
	}
	if len(pub.ExcludedVIPs) != 1 || !pub.ExcludedVIPs[0].Addr().Is6() {
		t.Errorf("excluded: %+v", pub.ExcludedVIPs)
	}
	if !pub.Unicast() || pub.UnicastSrcIP != netip.MustParseAddr("192.0.2.11") || pub.UnicastPeers[1].MinTTL != 250 || !pub.CheckUnicastSrc {
		t.Errorf("unicast: %+v", pub)
	}
	if pub.Garp.MasterRepeat != 3 || pub.Garp.LowerPrioRepeat != 3 || pub.Garp.MasterDelay != 2*time.Second {
		t.Errorf("instance garp: %+v", pub.Garp)
	}
	if pub.SyncGroup != "FRONT" || pub.Notify.Any.User != "nobody" || pub.Notify.Any.Args[1] != "instance" {
		t.Errorf("sync/notify: %q %+v", pub.SyncGroup, pub.Notify.Any)
	}
	if !pub.Accept.Set || !pub.Accept.Value || pub.DownTimerAdverts != 3 {
		t.Errorf("accept/down timer: %+v %d", pub.Accept, pub.DownTimerAdverts)
	}
	if len(pub.Routes) != 1 || pub.Routes[0].Via != netip.MustParseAddr("192.0.2.1") || pub.Routes[0].Dev != "eth0" {
		t.Errorf("routes: %+v", pub.Routes)
	}
	if priv := cfg.Instance("VI_PRIVATE"); !priv.Nopreempt || priv.State != StateBackup || priv.Priority != 150 {
		t.Errorf("VI_PRIVATE: %+v", priv)
	}
	if v6 := cfg.Instance("VI_V6"); v6.Version != 3 || v6.Family != inet.IPv6 || v6.AdvertInt != 500*time.Millisecond || v6.PreemptDelay != 30*time.Second || v6.Priority != 100 {
		t.Errorf("VI_V6: %+v", v6)
	}

	vs := cfg.VirtualServers[0]
	if vs.Key() != "[192.0.2.100]:tcp:443" || vs.Scheduler != "wrr" || vs.Method != NAT || vs.DelayLoop != 10*time.Second || vs.PersistenceTimeout != 300*time.Second || vs.Quorum != 2 || vs.Hysteresis != 1 {
		t.Errorf("vs: %+v", vs)
	}
	if vs.SorryServer.Port != 8443 || vs.SorryServer.Method != NAT {
		t.Errorf("sorry: %+v", vs.SorryServer)
	}
	rs1, rs2 := vs.RealServers[0], vs.RealServers[1]
	if rs1.Weight != 3 || !rs1.InhibitOnFailure || rs1.Method != NAT || rs1.ConnectTimeout != 3*time.Second {
		t.Errorf("rs1: %+v", rs1)
	}
	c := rs1.Checkers[0]
	if c.Type != CheckSSL || c.ConnectIP != rs1.Addr || c.ConnectPort != 8443 || c.ConnectTimeout != 3*time.Second || c.Retry != 2 ||
		c.DelayBeforeRetry != 3*time.Second || c.DelayLoop != 10*time.Second || c.Warmup != 10*time.Second {
		t.Errorf("SSL_GET: %+v", c)
	}
	if diff := cmp.Diff([]StatusRange{{200, 200}, {204, 204}, {300, 399}}, c.HTTP.URLs[0].StatusCodes); diff != "" {
		t.Errorf("status codes (-want +got):\n%s", diff)
	}
	h, tc := rs2.Checkers[0], rs2.Checkers[1]
	if h.ConnectPort != 8080 || h.DelayLoop != 5*time.Second || h.Retry != 1 || !h.HTTP.URLs[0].MatchStatus(250) || h.HTTP.URLs[0].MatchStatus(404) {
		t.Errorf("HTTP_GET: %+v", h)
	}
	if tc.ConnectTimeout != time.Second || tc.DelayBeforeRetry != time.Second || tc.ConnectPort != 8443 {
		t.Errorf("TCP_CHECK: %+v", tc)
	}

	fw := cfg.VirtualServers[1]
	if fw.Key() != "FWM 7" || fw.Method != DR || fw.Scheduler != "mh" || fw.SchedFlags[0] != "mh-port" || fw.DelayLoop != time.Minute || fw.Quorum != 1 {
		t.Errorf("fwmark vs: %+v", fw)
	}
	m := fw.RealServers[0].Checkers[0]
	if m.Retry != 0 || m.Misc.Timeout != time.Minute || !m.Misc.Dynamic || m.Misc.Path.Args[1] != "192.0.2.31" {
		t.Errorf("MISC_CHECK: %+v %+v", m, m.Misc)
	}
	d := fw.RealServers[1].Checkers[0]
	if d.Retry != 3 || d.DelayBeforeRetry != time.Minute || d.DNS.Type != "SOA" || d.DNS.Name != "example.org" || fw.RealServers[1].Port != 0 {
		t.Errorf("DNS_CHECK: %+v %+v", d, d.DNS)
	}

	want := "3 vrrp instances (6 VIPs, 2 unicast peers), 1 sync group, 2 vrrp scripts; 2 virtual servers (4 real servers)"
	if got := cfg.Summary(); got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in          string
		first, last string
		count       int
		ok          bool
	}{
		{"198.51.100.10-20", "198.51.100.10", "198.51.100.20", 11, true},
		{"198.51.100.250-198.51.101.10", "198.51.100.250", "198.51.101.10", 17, true},
		{"198.51.100.8/29", "198.51.100.8", "198.51.100.15", 8, true},
		{"198.51.100.9/29", "198.51.100.8", "198.51.100.15", 8, true},
		{"198.51.100.7", "198.51.100.7", "198.51.100.7", 1, true},
		{"2001:db8::1-ff", "2001:db8::1", "2001:db8::ff", 255, true},
		{"198.51.100.20-10", "", "", 0, false},
		{"198.51.100.10-300", "", "", 0, false},
		{"198.51.100.10-2001:db8::1", "", "", 0, false},
		{"nonsense", "", "", 0, false},
	} {
		first, last, ok := parseRange(tc.in)
		if ok != tc.ok {
			t.Errorf("parseRange(%q) ok = %v", tc.in, ok)
			continue
		}
		if !ok {
			continue
		}
		if first.String() != tc.first || last.String() != tc.last {
			t.Errorf("parseRange(%q) = %s-%s, want %s-%s", tc.in, first, last, tc.first, tc.last)
		}
		if n := (&LocalAddress{First: first, Last: last}).Count(); n != tc.count {
			t.Errorf("count of %q = %d, want %d", tc.in, n, tc.count)
		}
	}
}

// TestUnusableItemsDropped checks that the Config stays usable: items the
// daemon could not run are reported and left out, the rest kept.
func TestUnusableItemsDropped(t *testing.T) {
	conf := vi("") + strings.Replace(vi(""), "VI_1", "VI_2", 1) + // VRID clash: VI_2 dropped
		"vrrp_instance VI_3 {\n interface eth0\n virtual_ipaddress {\n  192.0.2.3\n }\n}\n" + // no VRID
		vs(" real_server 2001:db8::1 80 {\n }") + // second real server dropped
		"virtual_server 192.0.2.11 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n}\n" // no real servers
	cfg, diags := LoadBytes("-", []byte(conf), testEnv())
	if !diags.HasErrors() {
		t.Fatal("expected errors")
	}
	if len(cfg.Instances) != 1 || cfg.Instances[0].Name != "VI_1" || cfg.Instance("VI_2") != nil {
		t.Errorf("instances: %s", cfg.Summary())
	}
	if len(cfg.VirtualServers) != 1 || len(cfg.VirtualServers[0].RealServers) != 1 {
		t.Errorf("virtual servers: %s", cfg.Summary())
	}
}

// TestEveryCheckerTypeIsAKeyword: each checker type has its name and is a
// block keyword of real_server (keywords_lvs.go), which also documents it;
// with TestEveryCheckerTypeIsMapped (daemon) a new checker type fails a
// test until config parses it and the daemon runs it.
func TestEveryCheckerTypeIsAKeyword(t *testing.T) {
	seen := map[string]bool{}
	for _, ct := range CheckerTypes() {
		name := ct.String()
		switch {
		case name == "":
			t.Errorf("checker type %d has no name in checkerNames", int(ct))
		case seen[name]:
			t.Errorf("two checker types are named %s", name)
		}
		seen[name] = true
		if _, ok := rsTable.lookup(name); !ok {
			t.Errorf("%s is not a real_server keyword: add its block to keywords_lvs.go", name)
		}
	}
}
