package acceptmode

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"vigil/internal/labtest"
	"vigil/internal/testenv"
)

// In a namespace lab with real nftables: while the filter lists a VIP,
// pings to it from a neighbour go unanswered but the neighbour still
// resolves it (ARP, and IPv6 neighbour discovery through the exception);
// the host's own address stays reachable; Clear restores the VIPs.
func TestFilterDropsVIPTraffic(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ip", "ping", "nft")
	_, hosts, _ := labtest.LAN(t, "accmode", map[string][]string{
		"a": {"192.0.2.1/24", "2001:db8:9::1/64", "192.0.2.100/32", "2001:db8:9::100/128"},
		"b": {"192.0.2.2/24", "2001:db8:9::2/64"},
	}, "a", "b")
	a, b := hosts["a"], hosts["b"]
	ping := func(dst string) bool {
		for range 3 { // a loaded machine may miss one
			if _, err := b.Run("ping", "-c", "1", "-W", "1", dst); err == nil {
				return true
			}
		}
		return false
	}
	vips := []string{"192.0.2.100", "2001:db8:9::100"}
	for _, v := range append(vips, "192.0.2.1", "2001:db8:9::1") {
		if !ping(v) {
			t.Fatalf("%s unreachable before any filter (DAD or lab trouble)", v)
		}
	}

	var f *Filter
	ctx := context.Background()
	if err := a.Do(func() error {
		var err error
		if f, err = New(); err != nil {
			return err
		}
		return f.Set(ctx, addrs(vips...))
	}); err != nil {
		t.Fatal(err)
	}
	// Forget what b knows, so that resolving the VIPs is tested too.
	b.Run("ip", "neigh", "flush", "dev", "eth0")
	for _, v := range vips {
		if _, err := b.Run("ping", "-c", "2", "-W", "1", v); err == nil {
			t.Errorf("%s answered a ping through the no_accept filter", v)
		}
		out, _ := b.Run("ip", "neigh", "show", v)
		if !strings.Contains(out, "lladdr") {
			t.Errorf("%s not resolved while filtered (ARP/ND must still work): %q", v, out)
		}
	}
	for _, v := range []string{"192.0.2.1", "2001:db8:9::1"} {
		if !ping(v) {
			t.Errorf("the host's own %s stopped answering", v)
		}
	}
	// The drops were the filter's: both drop rules counted packets.
	out, err := a.Run("nft", "list", "table", "inet", Table)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(ip6? daddr @vips[46]) counter packets (\d+)`).FindAllStringSubmatch(out, -1) {
		if m[2] == "0" {
			t.Errorf("%s dropped nothing:\n%s", m[1], out)
		}
	}
	if n := strings.Count(out, "counter packets"); n != 2 {
		t.Errorf("%d counted rules, want 2:\n%s", n, out)
	}

	// A new filter (a restarted vigil) clears what the old one left.
	if err := a.Do(func() error {
		g, err := New()
		if err != nil {
			return err
		}
		return g.Clear(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	for _, v := range vips {
		if !ping(v) {
			t.Errorf("%s still unreachable after Clear", v)
		}
	}
	if out, err := a.Run("nft", "list", "tables"); err != nil || strings.Contains(out, Table) {
		t.Errorf("table left after Clear: %q %v", out, err)
	}
}

// TestClearRunsNoNftWithoutTable: a fresh filter's Clear removes a table
// an earlier run left, and without one it asks netlink only: no nft
// process (knftables is not even opened).
func TestClearRunsNoNftWithoutTable(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ip", "nft")
	_, hosts, _ := labtest.LAN(t, "acclazy", map[string][]string{"a": {"192.0.2.1/24"}}, "a")
	a := hosts["a"]
	ctx := context.Background()
	clear := func() *Filter {
		t.Helper()
		var f *Filter
		if err := a.Do(func() error {
			var err error
			if f, err = New(); err != nil {
				return err
			}
			return f.Clear(ctx)
		}); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if f := clear(); f.nft != nil {
		t.Error("Clear without a table opened knftables (runs nft)")
	}
	if _, err := a.Run("nft", "add", "table", "inet", Table); err != nil {
		t.Fatal(err)
	}
	if f := clear(); f.nft == nil {
		t.Error("Clear with a leftover table did not run nft")
	}
	if out, _ := a.Run("nft", "list", "tables"); strings.Contains(out, Table) {
		t.Errorf("the leftover table is still there:\n%s", out)
	}
}
