package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const bgpEdge = `bgp_instance EDGE {
 local_as 65001
 router_id 192.0.2.11
 drain_time 1.5
 neighbor 192.0.2.1 {
  remote_as 65000
  hold_time 9
  password s3cret
 }
 neighbor 2001:db8::1 {
  remote_as 65000
  port 1179
 }
}
`

func drVS(announce string) string {
	return "virtual_server 192.0.2.100 80 {\n " + announce + "\n lb_algo mh\n lb_kind DR\n protocol TCP\n real_server 192.0.2.20 80 {\n  TCP_CHECK {\n  }\n }\n}\n"
}

// bgpSummary is what TestBGPParse compares of a parsed bgp_instance and
// its announcements.
type bgpSummary struct {
	AS       uint32
	ID       netip.Addr
	Drain    time.Duration
	Hold     time.Duration
	Nbrs     []BGPNeighbor
	VSAnn    BGPAnnounce
	InstName string
}

func TestBGPParse(t *testing.T) {
	conf := strings.Replace(bgpEdge, " drain_time 1.5\n", " drain_time 1.5\n announce_delay 0.5\n", 1) + drVS("bgp_announce EDGE community 65000:100 community 1:2 med 50") +
		"vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n bgp_announce EDGE\n virtual_ipaddress {\n  192.0.2.200/32\n }\n}\n"
	cfg, diags := LoadBytes("k.conf", []byte(conf), testEnv())
	if diags.HasErrors() {
		t.Fatalf("diagnostics:\n%s", diags)
	}
	if len(cfg.BGPInstances) != 1 {
		t.Fatalf("got %d bgp_instances, want 1", len(cfg.BGPInstances))
	}
	bi := cfg.BGPInstances[0]
	got := bgpSummary{bi.LocalAS, bi.RouterID, bi.DrainTime, bi.AnnounceDelay, nil, *cfg.VirtualServers[0].BGPAnnounce[0], cfg.Instances[0].BGPAnnounce[0].Instance}
	for _, n := range bi.Neighbors {
		c := *n
		c.Pos, c.hasRemoteAS = Pos{}, false
		got.Nbrs = append(got.Nbrs, c)
	}
	got.VSAnn.Pos = Pos{}
	want := bgpSummary{65001, netip.MustParseAddr("192.0.2.11"), 1500 * time.Millisecond, 500 * time.Millisecond, []BGPNeighbor{
		{Addr: netip.MustParseAddr("192.0.2.1"), RemoteAS: 65000, HoldTime: 9 * time.Second, Password: "s3cret", Port: 179, BFDHolddown: time.Second, BFDHolddownMax: time.Minute},
		{Addr: netip.MustParseAddr("2001:db8::1"), RemoteAS: 65000, HoldTime: 90 * time.Second, Port: 1179, BFDHolddown: time.Second, BFDHolddownMax: time.Minute},
	}, BGPAnnounce{Instance: "EDGE", Communities: []uint32{65000<<16 | 100, 1<<16 | 2}, MED: 50, HasMED: true}, "EDGE"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(BGPNeighbor{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

const bfdB = "bfd_instance B {\n neighbor_ip 192.0.2.1\n}\n"

// TestBGPHolddown: a neighbor's bfd_holddown and bfd_holddown_max, in
// fractions of a second, and their defaults beside them.
func TestBGPHolddown(t *testing.T) {
	conf := bfdB + "bgp_instance E {\n local_as 1\n neighbor 192.0.2.1 {\n  remote_as 1\n  bfd_instance B\n  bfd_holddown 0.25\n  bfd_holddown_max 30\n }\n" +
		" neighbor 192.0.2.2 {\n  remote_as 1\n  bfd_instance B\n  bfd_holddown 0\n }\n neighbor 192.0.2.3 {\n  remote_as 1\n  bfd_instance B\n }\n}\n"
	cfg, diags := LoadBytes("k.conf", []byte(conf), testEnv())
	if len(diags) > 0 {
		t.Fatalf("diagnostics:\n%s", diags)
	}
	want := [][2]time.Duration{{250 * time.Millisecond, 30 * time.Second}, {0, time.Minute}, {time.Second, time.Minute}}
	for i, n := range cfg.BGPInstances[0].Neighbors {
		if got := [2]time.Duration{n.BFDHolddown, n.BFDHolddownMax}; got != want[i] || n.BFD != "B" {
			t.Errorf("neighbor %v: bfd %q, holddown %v, want B, %v", n.Addr, n.BFD, got, want[i])
		}
	}
}

// TestBGPDiagnostics: every mistake is reported at its line.
func TestBGPDiagnostics(t *testing.T) {
	cases := []struct {
		name string
		conf string
		line int
		sev  Severity
		sub  string
	}{
		{"no local_as", "bgp_instance E {\n neighbor 192.0.2.1 {\n  remote_as 1\n }\n}\n", 1, Error, "local_as is missing"},
		{"no remote_as", "bgp_instance E {\n local_as 1\n neighbor 192.0.2.1 {\n }\n}\n", 3, Error, "remote_as is missing"},
		{"as 0", "bgp_instance E {\n local_as 0\n}\n", 2, Error, "local_as"},
		{"as too big", "bgp_instance E {\n local_as 4294967296\n}\n", 2, Error, "local_as"},
		{"no neighbor", "bgp_instance E {\n local_as 1\n}\n", 1, Warning, "no neighbor"},
		{"bad neighbor", "bgp_instance E {\n local_as 1\n neighbor 192.0.2.300 {\n  remote_as 1\n }\n}\n", 3, Error, "192.0.2.300"},
		{"dup neighbor", "bgp_instance E {\n local_as 1\n neighbor 192.0.2.1 {\n  remote_as 1\n }\n neighbor 192.0.2.1 {\n  remote_as 2\n }\n}\n", 6, Error, "already defined"},
		{"hold 2", "bgp_instance E {\n local_as 1\n neighbor 192.0.2.1 {\n  remote_as 1\n  hold_time 2\n }\n}\n", 5, Error, "RFC 4271"},
		{"router_id v6", "bgp_instance E {\n local_as 1\n router_id 2001:db8::1\n}\n", 3, Error, "IPv4"},
		{"unknown keyword", "bgp_instance E {\n local_as 1\n neighbour 192.0.2.1 {\n }\n}\n", 3, Error, "unknown keyword"},
		{"undefined instance", drVS("bgp_announce NOPE"), 2, Error, "bgp_instance NOPE is not defined"},
		{"bad community", bgpEdge + drVS("bgp_announce EDGE community 70000:1"), 16, Error, "community"},
		{"bad option", bgpEdge + drVS("bgp_announce EDGE localpref 5"), 16, Error, "expected community A:B or med N"},
		{"dup announce", bgpEdge + "virtual_server 192.0.2.100 80 {\n bgp_announce EDGE\n bgp_announce EDGE\n lb_algo mh\n lb_kind DR\n protocol TCP\n real_server 192.0.2.20 80 {\n  TCP_CHECK {\n  }\n }\n}\n", 17, Error, "already given"},
		{"NAT warns", bgpEdge + strings.Replace(drVS("bgp_announce EDGE"), "lb_kind DR", "lb_kind NAT", 1), 16, Warning, "lb_kind NAT: a flow the router moves"},
		{"fwmark", bgpEdge + "virtual_server fwmark 5 {\n bgp_announce EDGE\n lb_algo mh\n lb_kind NAT\n real_server 192.0.2.20 {\n  TCP_CHECK {\n   connect_port 80\n  }\n }\n}\n", 16, Error, "fwmark"},
		{"vrrp options", bgpEdge + vi(" bgp_announce EDGE med 5"), 17, Error, "expected nothing after the name"},
		{"vrrp undefined", vi(" bgp_announce EDGE"), 3, Error, "bgp_instance EDGE is not defined"},
		{"holddown without bfd", "bgp_instance E {\n local_as 1\n neighbor 192.0.2.1 {\n  remote_as 1\n  bfd_holddown 2\n }\n}\n", 5, Warning, "bfd_holddown has no effect without bfd_instance"},
		{"holddown max below", bfdB + "bgp_instance E {\n local_as 1\n neighbor 192.0.2.1 {\n  remote_as 1\n  bfd_instance B\n  bfd_holddown_max 2\n  bfd_holddown 5\n }\n}\n", 9, Error, "bfd_holddown_max 2 is below bfd_holddown 5"},
		{"holddown negative", bfdB + "bgp_instance E {\n local_as 1\n neighbor 192.0.2.1 {\n  remote_as 1\n  bfd_instance B\n  bfd_holddown -1\n }\n}\n", 9, Error, `bfd_holddown "-1": expected seconds 0..3600`},
		{"holddown max too long", bfdB + "bgp_instance E {\n local_as 1\n neighbor 192.0.2.1 {\n  remote_as 1\n  bfd_instance B\n  bfd_holddown_max 90000\n }\n}\n", 9, Error, "bfd_holddown_max"},
		{"bfd undefined", "bgp_instance E {\n local_as 1\n neighbor 192.0.2.1 {\n  remote_as 1\n  bfd_instance B\n }\n}\n", 5, Error, "bfd_instance B is not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := LoadBytes("k.conf", []byte(tc.conf), testEnv())
			for _, d := range diags {
				if d.Pos.Line == tc.line && d.Severity == tc.sev && strings.Contains(d.Msg, tc.sub) {
					if d.Pos.File != "k.conf" || d.Pos.Col == 0 {
						t.Errorf("diagnostic without file and column: %s", d)
					}
					return
				}
			}
			t.Errorf("want line %d %s %q, got:\n%s", tc.line, tc.sev, tc.sub, diags)
		})
	}
}

// TestBGPNotAnnouncedWithoutBlock: a file without BGP has no BGP model.
func TestBGPNotAnnouncedWithoutBlock(t *testing.T) {
	cfg, diags := LoadBytes("k.conf", []byte(vi("")), testEnv())
	if diags.HasErrors() || len(cfg.BGPInstances) != 0 {
		t.Fatalf("bgp instances %v, diags %s", cfg.BGPInstances, diags)
	}
}
