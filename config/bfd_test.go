package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const bfdConf = `
bfd_instance fast {
  neighbor_ip 192.0.2.2
  source_ip 192.0.2.1
  min_rx 3.312
  min_tx 20
  idle_tx 500
  multiplier 3
  ttl 254
  max_hops 1
  weight -20 reverse
  vrrp
}
bfd_instance plain {
  neighbour_ip 2001:db8::2
  passive
}
vrrp_sync_group G {
  group { VI VJ }
  track_bfd { plain }
}
vrrp_instance VJ {
  interface eth0
  virtual_router_id 2
  priority 100
  virtual_ipaddress { 192.0.2.101 }
}
vrrp_instance VI {
  interface eth0
  virtual_router_id 1
  priority 100
  virtual_ipaddress { 192.0.2.100 }
  track_bfd {
    fast
    plain weight 10
  }
  bfd_takeover fast plain
}
virtual_server 192.0.2.100 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 192.0.2.10 80 {
    BFD_CHECK { name plain }
  }
}
`

func TestBFDModel(t *testing.T) {
	cfg, diags := LoadBytes("bfd.conf", []byte(bfdConf), testEnv())
	if diags.HasErrors() || diags.Count(Warning) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", diags)
	}
	ignore := cmpopts.IgnoreFields(BFDInstance{}, "Pos")
	want := []*BFDInstance{
		{Name: "fast", Neighbor: netip.MustParseAddr("192.0.2.2"), Source: netip.MustParseAddr("192.0.2.1"),
			MinRx: 3312 * time.Microsecond, MinTx: 20 * time.Millisecond, IdleTx: 500 * time.Millisecond, Multiplier: 3,
			TTL: 254, HopLimit: 255, MaxHops: 1, Weight: -20, Reverse: true, VRRP: true},
		{Name: "plain", Neighbor: netip.MustParseAddr("2001:db8::2"), MinRx: 10 * time.Millisecond, MinTx: 10 * time.Millisecond,
			IdleTx: time.Second, Multiplier: 5, TTL: 255, HopLimit: 255, Passive: true},
	}
	if diff := cmp.Diff(want, cfg.BFDInstances, ignore, cmpopts.IgnoreUnexported(BFDInstance{}), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("bfd instances (-want +got):\n%s", diff)
	}
	if !cfg.BFDInstances[0].ToVRRP() || cfg.BFDInstances[0].ToChecker() || !cfg.BFDInstances[1].ToVRRP() || !cfg.BFDInstances[1].ToChecker() {
		t.Error("vrrp/checker routing")
	}
	in := cfg.Instance("VI")
	var got []string
	for _, r := range in.TrackBFD {
		got = append(got, r.Name)
	}
	if diff := cmp.Diff([]string{"fast", "plain"}, got); diff != "" || !in.TrackBFD[1].WeightSet || in.TrackBFD[1].Weight != 10 || in.TrackBFD[0].WeightSet || in.TrackBFD[0].Weight != -20 || !in.TrackBFD[0].Reverse {
		t.Errorf("track_bfd: %v %+v", diff, in.TrackBFD)
	}
	if diff := cmp.Diff([]string{"fast", "plain"}, in.BFDTakeover); diff != "" {
		t.Errorf("bfd_takeover (-want +got):\n%s", diff)
	}
	if len(cfg.SyncGroups[0].TrackBFD) != 1 {
		t.Errorf("sync group track_bfd: %+v", cfg.SyncGroups[0].TrackBFD)
	}
	if diff := cmp.Diff([]string{"plain"}, cfg.VirtualServers[0].RealServers[0].BFDChecks); diff != "" {
		t.Errorf("BFD_CHECK (-want +got):\n%s", diff)
	}
}

func TestBFDErrors(t *testing.T) {
	for _, c := range []struct{ conf, want string }{
		{"bfd_instance A {\n min_rx 10\n}\n", "neighbor_ip is missing"},
		{"bfd_instance A {\n neighbor_ip 192.0.2.300\n}\n", "malformed neighbor address"},
		{"bfd_instance A {\n neighbor_ip 192.0.2.2\n source_ip 2001:db8::1\n}\n", "different families"},
		{"bfd_instance A {\n neighbor_ip 192.0.2.2\n}\nbfd_instance A {\n neighbor_ip 192.0.2.3\n}\n", "defined twice"},
		{"bfd_instance A {\n neighbor_ip 192.0.2.2\n}\nbfd_instance B {\n neighbor_ip 192.0.2.2\n}\n", "already bfd_instance A's"},
		{"bfd_instance A {\n neighbor_ip 192.0.2.2\n multiplier 0\n}\n", "multiplier"},
		{"vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress { 192.0.2.100 }\n track_bfd { nope }\n}\n", "bfd_instance nope is not defined"},
		{"vrrp_instance VI {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress { 192.0.2.100 }\n bfd_takeover nope\n}\n", "bfd_takeover: bfd_instance nope is not defined"},
	} {
		wantLoadError(t, c.conf, c.want)
	}
}

// wantLoadError loads conf and wants an error among its diagnostics that
// contains want.
func wantLoadError(t *testing.T, conf, want string) {
	t.Helper()
	_, diags := LoadBytes("bfd.conf", []byte(conf), testEnv())
	if !diags.HasErrors() || !strings.Contains(diags.String(), want) {
		t.Errorf("%q: want an error containing %q, got:\n%s", conf, want, diags)
	}
}

// TestBFDScheduling: keepalived's global bfd_* process keywords set BFD's
// thread scheduling, name and memory locking, without warnings, and their
// ranges are checked.
func TestBFDScheduling(t *testing.T) {
	cfg, diags := LoadBytes("bfd.conf", []byte("global_defs {\n bfd_rt_priority 40\n bfd_priority -15\n bfd_no_swap\n bfd_process_name bfd_x\n}\n"), testEnv())
	if diags.HasErrors() || diags.Count(Warning) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", diags)
	}
	g := cfg.Global
	if g.BFDRTPriority != 40 || g.BFDPriority != -15 || !g.BFDPrioritySet || !g.BFDNoSwap || g.BFDProcessName != "bfd_x" {
		t.Errorf("global: rt %d nice %d (set %v) no_swap %v name %q", g.BFDRTPriority, g.BFDPriority, g.BFDPrioritySet, g.BFDNoSwap, g.BFDProcessName)
	}
	cfg, _ = LoadBytes("bfd.conf", []byte("global_defs {\n bfd_priority 0\n}\n"), testEnv())
	if !cfg.Global.BFDPrioritySet || cfg.Global.BFDPriority != 0 || cfg.Global.BFDRTPriority != 0 {
		t.Errorf("bfd_priority 0 is a setting (nice 0), not its absence: %+v", cfg.Global)
	}
	for _, c := range []struct{ conf, want string }{
		{"global_defs {\n bfd_rt_priority 0\n}\n", "bfd_rt_priority"},
		{"global_defs {\n bfd_priority 20\n}\n", "bfd_priority"},
		{"global_defs {\n bfd_process_name\n}\n", "bfd_process_name"},
	} {
		wantLoadError(t, c.conf, c.want)
	}
}
