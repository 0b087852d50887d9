package e2e

import (
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
)

const confVMACRoutes = `
vrrp_instance VI_M {
  interface eth0
  use_vmac
  state BACKUP
  virtual_router_id 51
  version 3
  priority @PRIO@
  advert_int 0.1
  virtual_ipaddress {
    192.0.2.100/24
  }
  virtual_routes {
    203.0.113.0/24 via 192.0.2.254 dev eth0
  }
}
`

// TestVMACAndVirtualRoutes runs two vigil nodes with use_vmac and
// virtual_routes: the master holds the VIP on vrrp.51 with the virtual MAC
// 00:00:5e:00:01:33 (so the client's neighbour entry does not change on
// failover) and the virtual route; the backup holds neither.
func TestVMACAndVirtualRoutes(t *testing.T) {
	requireVRRPLab(t, "ping")
	t.Parallel()
	lab, hosts, ports := labtest.LAN(t, "vmc", map[string][]string{
		"a": {"192.0.2.1/24"}, "b": {"192.0.2.2/24"}, "c": {"192.0.2.10/24"},
	}, "a", "b", "c")
	a, b := vigilPair(t, confVMACRoutes, hosts["a"], hosts["b"], 500*time.Millisecond)
	vip := pairVIP

	hasRoute := func(n *node) bool {
		out, _ := n.Host.Run("ip", "route", "show", "203.0.113.0/24")
		return strings.Contains(out, "via 192.0.2.254")
	}
	vmacOf := func(n *node) string {
		out, _ := n.Host.Run("ip", "-br", "link", "show", "vrrp.51")
		return out
	}
	if !hasRoute(a) || hasRoute(b) {
		t.Fatalf("virtual route: master has it %v, backup has it %v; want only the master", hasRoute(a), hasRoute(b))
	}
	for _, n := range []*node{a, b} {
		if out := vmacOf(n); !strings.Contains(out, "00:00:5e:00:01:33") {
			t.Fatalf("%s: vrrp.51 is %q, want a macvlan with 00:00:5e:00:01:33", n.Host.Name, out)
		}
	}
	neigh := func() string {
		_, _ = hosts["c"].Run("ping", "-c1", "-W1", vip.String())
		out, _ := hosts["c"].Run("ip", "neigh", "show", vip.String())
		return out
	}
	if out := neigh(); !strings.Contains(out, "00:00:5e:00:01:33") {
		la, _ := hosts["a"].Run("ip", "-br", "link")
		lb, _ := hosts["b"].Run("ip", "-br", "link")
		t.Fatalf("client resolves the VIP to %q, want the virtual MAC\na: %s\nb: %s", out, la, lb)
	}
	if err := lab.Cut(ports["a"]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the backup to take the VIP", func() bool { return b.hasAddr(vip) })
	waitFor(t, 2*time.Second, "the virtual route to follow the VIP", func() bool { return hasRoute(b) && !hasRoute(a) })
	if out := neigh(); !strings.Contains(out, "00:00:5e:00:01:33") || !strings.Contains(out, "REACHABLE") {
		t.Fatalf("after failover the client resolves the VIP to %q, want the same virtual MAC, reachable", out)
	}
	b.Stop()
	a.Stop()
	for _, n := range []*node{a, b} {
		if out, _ := n.Host.Run("ip", "-br", "link"); strings.Contains(out, "vrrp.51") {
			t.Errorf("%s: vrrp.51 left after shutdown: %q", n.Host.Name, out)
		}
	}
}
