package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/addr"
	"vigil/config"
	"vigil/internal/inet"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

func loadOne(t *testing.T, text string) (*config.Config, *config.Instance) {
	t.Helper()
	cfg, diags := config.LoadBytes("t.conf", []byte(text), config.Env{})
	if diags.HasErrors() {
		t.Fatalf("config: %s", diags)
	}
	if len(cfg.Instances) != 1 {
		t.Fatalf("%d instances", len(cfg.Instances))
	}
	return cfg, cfg.Instances[0]
}

func lookupFrom(addrs ...string) addrLookup {
	return func(string) ([]netip.Prefix, error) {
		var out []netip.Prefix
		for _, a := range addrs {
			out = append(out, netip.MustParsePrefix(a))
		}
		return out, nil
	}
}

func TestBuildSpecMapsKeepalivedSemantics(t *testing.T) {
	cfg, in := loadOne(t, `
vrrp_instance VI_1 {
  interface eth0
  state BACKUP
  virtual_router_id 51
  priority 150
  advert_int 2
  preempt_delay 10
  authentication {
    auth_type PASS
    auth_pass secret8c
  }
  virtual_ipaddress {
    192.0.2.100/24 dev eth1 label eth1:vip
    192.0.2.101
  }
  virtual_ipaddress_excluded {
    2001:db8::100/64
  }
  virtual_routes {
    203.0.113.0/24 via 192.0.2.254 dev eth0
  }
}
`)
	// The interface's own addresses: a leftover VIP must never be chosen as
	// the advert source.
	b, err := buildSpec(cfg, in, lookupFrom("192.0.2.100/24", "192.0.2.1/24", "fe80::1/64"))
	if err != nil {
		t.Fatal(err)
	}
	e, s := b.engine, b.spec
	if e.SrcAddr != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("source %v, want the primary address 192.0.2.1, not the VIP", e.SrcAddr)
	}
	if e.VRID != 51 || e.Priority != 150 || e.Version != 2 || e.AdvertInterval != 2*time.Second || e.NoPreempt || e.PreemptDelay != 10*time.Second {
		t.Errorf("engine config %+v", e)
	}
	if e.InitialState != vrrp.StateBackup || e.AuthType != wire.AuthPass {
		t.Errorf("state %v auth %v", e.InitialState, e.AuthType)
	}
	if len(e.VIPs) != 2 || len(e.ExcludedVIPs) != 1 {
		t.Errorf("VIPs %v excluded %v", e.VIPs, e.ExcludedVIPs)
	}
	v := s.vip(netip.MustParsePrefix("192.0.2.100/24"))
	if v.Dev != "eth1" || v.Label != "eth1:vip" {
		t.Errorf("VIP options lost: %+v", v)
	}
	if v := s.vip(netip.MustParsePrefix("192.0.2.101/32")); v.Dev != "eth0" {
		t.Errorf("VIP without dev is on %q, want the instance interface", v.Dev)
	}
	if rs := s.m().routes; len(rs) != 1 || rs[0].Via != netip.MustParseAddr("192.0.2.254") {
		t.Errorf("routes %+v", rs)
	}
	if ex := s.m().excluded; len(ex) != 1 || ex[0] != netip.MustParsePrefix("2001:db8::100/64") {
		t.Errorf("configured excluded VIPs %v", ex)
	}
	if _, err := vrrp.New(e, time.Unix(0, 0)); err != nil {
		t.Errorf("the engine refuses the mapped config: %v", err)
	}
}

func TestBuildSpecSourceAddress(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		host       []string
		want, err  string
	}{
		{"unicast_src_ip wins", `unicast_src_ip 192.0.2.7
  unicast_peer {
    192.0.2.8
  }`, []string{"192.0.2.1/24"}, "192.0.2.7", ""},
		{"mcast_src_ip", `mcast_src_ip 192.0.2.9`, []string{"192.0.2.1/24"}, "192.0.2.9", ""},
		{"no IPv4 address", ``, []string{"fe80::1/64"}, "", "has no IPv4 address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, in := loadOne(t, "vrrp_instance V {\n  interface eth0\n  virtual_router_id 9\n  "+tc.conf+"\n  virtual_ipaddress {\n    192.0.2.100\n  }\n}\n")
			b, err := buildSpec(cfg, in, lookupFrom(tc.host...))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := b.engine.SrcAddr.String(); got != tc.want {
				t.Errorf("source %s, want %s", got, tc.want)
			}
		})
	}
}

func TestBuildSpecIPv6UsesLinkLocal(t *testing.T) {
	cfg, in := loadOne(t, "vrrp_instance V6 {\n  interface eth0\n  virtual_router_id 6\n  virtual_ipaddress {\n    2001:db8::100/64\n  }\n}\n")
	b, err := buildSpec(cfg, in, lookupFrom("2001:db8::1/64", "fe80::abcd/64"))
	if err != nil {
		t.Fatal(err)
	}
	if e := b.engine; e.SrcAddr != netip.MustParseAddr("fe80::abcd") || e.Family != inet.IPv6 || e.Version != 3 {
		t.Errorf("src %v fam %v version %d", e.SrcAddr, e.Family, e.Version)
	}
	if v := b.spec.vip(netip.MustParsePrefix("2001:db8::100/64")); v.Family() != inet.IPv6 {
		t.Errorf("vip %+v", v)
	}
}

// TestVIPSet: the set stays sorted, a prefix is in it once (the last put
// wins, as the config's last mention did in the map it replaced), and get
// finds every prefix put and nothing else.
func TestVIPSet(t *testing.T) {
	var s vipSet
	in := []string{"192.0.2.9/32", "2001:db8::1/64", "192.0.2.1/24", "192.0.2.1/32", "198.51.100.7/32", "192.0.2.9/32"}
	for i, p := range in {
		s.put(addr.VIP{Prefix: netip.MustParsePrefix(p), Label: fmt.Sprint(i)})
	}
	if len(s) != 5 {
		t.Fatalf("%d entries, want 5: %v", len(s), s)
	}
	for i := 1; i < len(s); i++ {
		if s[i-1].Prefix.Compare(s[i].Prefix) >= 0 {
			t.Errorf("not sorted: %v before %v", s[i-1].Prefix, s[i].Prefix)
		}
	}
	if v, ok := s.get(netip.MustParsePrefix("192.0.2.9/32")); !ok || v.Label != "5" {
		t.Errorf("192.0.2.9/32: %+v %v, want the last put (label 5)", v, ok)
	}
	for _, p := range in {
		if _, ok := s.get(netip.MustParsePrefix(p)); !ok {
			t.Errorf("%s not found", p)
		}
	}
	if _, ok := s.get(netip.MustParsePrefix("192.0.2.9/31")); ok {
		t.Error("found a prefix never put")
	}
}

// TestSpecVIPs: the spec keeps an addr.VIP only for a VIP with options;
// the others are the engine's prefixes on the instance's VIP interface
// (the use_vmac interface here). Every VIP and excluded VIP is yielded
// once, a prefix named twice with its last mention's options.
func TestSpecVIPs(t *testing.T) {
	cfg, in := loadOne(t, `
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  use_vmac
  vmac_xmit_base
  virtual_ipaddress {
    192.0.2.100/24 label vrrp.51:a
    192.0.2.101
    192.0.2.102 dev vrrp.51
    192.0.2.100/24
    192.0.2.103 label vrrp.51:b
    192.0.2.103
    192.0.2.103 scope link
  }
  virtual_ipaddress_excluded {
    2001:db8::100/64
  }
}
`)
	b, err := buildSpec(cfg, in, lookupFrom("192.0.2.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	s := b.spec
	if s.ifname != "eth0" || s.vipDev() != "vrrp.51" {
		t.Fatalf("adverts on %q, VIPs on %q; want eth0 and vrrp.51", s.ifname, s.vipDev())
	}
	want := []addr.VIP{
		{Prefix: netip.MustParsePrefix("192.0.2.100/24"), Dev: "vrrp.51"},
		{Prefix: netip.MustParsePrefix("192.0.2.101/32"), Dev: "vrrp.51"},
		{Prefix: netip.MustParsePrefix("192.0.2.102/32"), Dev: "vrrp.51"},
		{Prefix: netip.MustParsePrefix("192.0.2.103/32"), Dev: "vrrp.51", Scope: addr.ScopeLink},
		{Prefix: netip.MustParsePrefix("2001:db8::100/64"), Dev: "vrrp.51"},
	}
	got := slices.Collect(s.vipsOf(b.engine.VIPs, b.engine.ExcludedVIPs))
	slices.SortFunc(got, func(a, b addr.VIP) int { return a.Prefix.Compare(b.Prefix) })
	if !slices.Equal(got, want) {
		t.Errorf("VIPs\n%+v\nwant\n%+v", got, want)
	}
	if len(s.m().vipOpts) != 1 || s.m().vipOpts[0] != want[3] {
		t.Errorf("the spec keeps %+v, want only the VIP with options (%+v)", s.m().vipOpts, want[3])
	}
	if dev := s.vipDevOf(netip.MustParseAddr("192.0.2.101")); dev != "vrrp.51" {
		t.Errorf("192.0.2.101 is announced on %q, want vrrp.51", dev)
	}
}

// TestVIPsOfOnce: vipsOf yields each prefix of the VIPs and excluded VIPs
// once, at its first mention, in order, whether it scans (a few) or keeps
// a set (more than seenScan); and stops when told.
func TestVIPsOfOnce(t *testing.T) {
	for _, n := range []int{3, seenScan, seenScan + 1, 1000} {
		s := &instanceSpec{ifname: "eth0"}
		var vips, excluded []netip.Prefix
		var want []addr.VIP
		pfx := func(i int) netip.Prefix {
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32)
		}
		// n VIPs counting up with every third named again at once, then
		// excluded VIPs: the first VIP again and new ones.
		for i := 0; len(vips)+len(excluded) < n; i++ {
			if len(vips) < n/2 || len(vips) < 2 {
				vips = append(vips, pfx(i%250))
				if i < 250 {
					want = append(want, addr.VIP{Prefix: pfx(i % 250), Dev: "eth0"})
				}
				if i%3 == 0 {
					vips = append(vips, pfx(i%250))
				}
				continue
			}
			excluded = append(excluded, pfx(0), netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32))
			want = append(want, addr.VIP{Prefix: excluded[len(excluded)-1], Dev: "eth0"})
		}
		got := slices.Collect(s.vipsOf(vips, excluded))
		if !slices.Equal(got, want) {
			t.Errorf("%d prefixes: got %d VIPs\n%v\nwant %d\n%v", n, len(got), got, len(want), want)
		}
		k := 0
		for range s.vipsOf(vips, excluded) {
			if k++; k == 2 {
				break
			}
		}
	}
}
