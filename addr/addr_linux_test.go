package addr_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"vigil/addr"
	"vigil/internal/inet"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// rig is a lab with two hosts on one segment: a (whose namespace the
// Manager works in) and b (a neighbour to test reachability from).
type rig struct {
	lab  *netlab.Lab
	a, b *netlab.Host
	m    *addr.Manager
}

// newRig builds the lab "prefix" with a's eth0 at aAddrs and b's at bAddrs.
func newRig(t testing.TB, prefix string, aAddrs, bAddrs []string) *rig {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ip", "ping")
	l, hosts, _ := labtest.LAN(t, prefix, map[string][]string{"a": aAddrs, "b": bAddrs}, "a", "b")
	r := &rig{lab: l, a: hosts["a"], b: hosts["b"]}
	ns, err := netns.GetFromName(r.a.NS)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	r.m, err = addr.NewAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.m.Close() })
	return r
}

// ipAddr is one address as `ip -j addr show` prints it.
type ipAddr struct {
	Family        string `json:"family"`
	Local         string `json:"local"`
	Address       string `json:"address"` // the peer, for point-to-point
	Prefixlen     int    `json:"prefixlen"`
	Broadcast     string `json:"broadcast"`
	Scope         string `json:"scope"`
	Label         string `json:"label"`
	NoDAD         bool   `json:"nodad"`
	Deprecated    bool   `json:"deprecated"`
	Home          bool   `json:"home"`
	NoPrefixRoute bool   `json:"noprefixroute"`
	Tentative     bool   `json:"tentative"`
	Preferred     uint32 `json:"preferred_life_time"`
}

// ipJSON runs `ip -j ARGS` in h and decodes its output into v.
func ipJSON(t *testing.T, h *netlab.Host, v any, args ...string) {
	t.Helper()
	out, err := h.Run("ip", append([]string{"-j"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("ip -j %s: %v in %q", strings.Join(args, " "), err, out)
	}
}

// addrsOf returns the addresses of dev in h, keyed by "local/prefixlen",
// read with iproute2 (independently of netlink).
func addrsOf(t *testing.T, h *netlab.Host, dev string) map[string]ipAddr {
	t.Helper()
	var links []struct {
		AddrInfo []ipAddr `json:"addr_info"`
	}
	ipJSON(t, h, &links, "addr", "show", "dev", dev)
	m := map[string]ipAddr{}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			m[a.Local+"/"+strconv.Itoa(a.Prefixlen)] = a
		}
	}
	return m
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func vip(s, dev string) addr.VIP {
	return addr.VIP{Prefix: netip.MustParsePrefix(s), Dev: dev}
}

// twice runs op twice on each item: the second run finds the work done,
// which must be success too.
func twice[T any](t *testing.T, name string, op func(T) error, items ...T) {
	t.Helper()
	for _, it := range items {
		for range 2 {
			if err := op(it); err != nil {
				t.Fatalf("%s(%v): %v", name, it, err)
			}
		}
	}
}

// haveAll checks that has reports each item present (want) or absent.
func haveAll[T any](t *testing.T, name string, has func(T) (bool, error), want bool, items ...T) {
	t.Helper()
	for _, it := range items {
		got, err := has(it)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s(%v) = %v, want %v", name, it, got, want)
		}
	}
}

func TestVIPv4(t *testing.T) {
	r := newRig(t, "adrv4", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	vips := []addr.VIP{
		{Prefix: netip.MustParsePrefix("192.0.2.100/24"), Dev: "eth0", Brd: netip.MustParseAddr("192.0.2.255"), Label: "eth0:vip"},
		vip("192.0.2.101/32", "eth0"),
		{Prefix: netip.MustParsePrefix("198.51.100.5/32"), Dev: "eth0", Peer: netip.MustParsePrefix("198.51.100.6/32")},
	}
	twice(t, "Add", r.m.Add, vips...)
	haveAll(t, "Has", r.m.Has, true, vips...)
	got := addrsOf(t, r.a, "eth0")
	if a := got["192.0.2.100/24"]; a.Broadcast != "192.0.2.255" || a.Label != "eth0:vip" || a.Scope != "global" {
		t.Errorf("192.0.2.100/24 is %+v, want brd 192.0.2.255 label eth0:vip scope global", a)
	}
	if a, ok := got["192.0.2.101/32"]; !ok || a.Broadcast != "" {
		t.Errorf("192.0.2.101/32 is %+v (present %v), want present without broadcast", a, ok)
	}
	if a := got["198.51.100.5/32"]; a.Address != "198.51.100.6" {
		t.Errorf("198.51.100.5 is %+v, want peer 198.51.100.6", a)
	}
	if _, ok := got["192.0.2.1/24"]; !ok {
		t.Errorf("the primary address 192.0.2.1/24 is gone: %v", got)
	}
	// Has matches IPv4 addresses by prefix length too, as the kernel does.
	haveAll(t, "Has", r.m.Has, false, vip("192.0.2.100/32", "eth0"))

	twice(t, "Remove", r.m.Remove, vips...)
	haveAll(t, "Has", r.m.Has, false, vips...)
	got = addrsOf(t, r.a, "eth0")
	if len(got) != 2 { // 192.0.2.1/24 and the IPv6 link-local
		t.Errorf("after Remove, eth0 has %v; want only 192.0.2.1/24 and its link-local", got)
	}
}

func TestVIPv6Flags(t *testing.T) {
	r := newRig(t, "adrv6", []string{"2001:db8:6::1/64"}, []string{"2001:db8:6::2/64"})
	cases := []struct {
		v              addr.VIP
		key            string
		deprecated     bool
		home, noprefix bool
	}{
		{v: vip("2001:db8:6::100/64", "eth0"), key: "2001:db8:6::100/64"},
		{v: vip("2001:db8:6::101/128", "eth0"), key: "2001:db8:6::101/128", deprecated: true},
		{v: addr.VIP{Prefix: netip.MustParsePrefix("2001:db8:6::102/128"), Dev: "eth0", PreferredLftSet: true, PreferredLft: addr.Forever},
			key: "2001:db8:6::102/128"},
		{v: addr.VIP{Prefix: netip.MustParsePrefix("2001:db8:7::103/64"), Dev: "eth0", Home: true, NoPrefixRoute: true},
			key: "2001:db8:7::103/64", home: true, noprefix: true},
	}
	var vips []addr.VIP
	for _, c := range cases {
		vips = append(vips, c.v)
	}
	twice(t, "Add", r.m.Add, vips...)
	haveAll(t, "Has", r.m.Has, true, vips...)
	got := addrsOf(t, r.a, "eth0")
	for _, c := range cases {
		a, ok := got[c.key]
		switch {
		case !ok:
			t.Errorf("%s missing from eth0: %v", c.key, got)
		case !a.NoDAD || a.Tentative:
			t.Errorf("%s: %+v, want nodad and not tentative", c.key, a)
		case a.Deprecated != c.deprecated:
			t.Errorf("%s: deprecated %v, want %v (preferred_lft %d)", c.key, a.Deprecated, c.deprecated, a.Preferred)
		case a.Home != c.home || a.NoPrefixRoute != c.noprefix:
			t.Errorf("%s: home %v noprefixroute %v, want %v %v", c.key, a.Home, a.NoPrefixRoute, c.home, c.noprefix)
		}
	}
	// noprefixroute really suppresses the prefix route.
	out, err := r.a.Run("ip", "-6", "route", "show", "2001:db8:7::/64")
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("route for a noprefixroute VIP: %q, %v; want none", out, err)
	}
	twice(t, "Remove", r.m.Remove, vips...)
	haveAll(t, "Has", r.m.Has, false, vips...)
}

func TestRemoveStale(t *testing.T) {
	r := newRig(t, "adrst", []string{"192.0.2.1/24", "2001:db8:5::1/64"}, []string{"192.0.2.2/24"})
	// What a crashed run left behind, plus an address someone else added to
	// the same interface in the same subnet.
	for _, a := range []string{"192.0.2.100/24", "2001:db8:5::100/64", "192.0.2.50/24", "192.0.2.103/24"} {
		if _, err := r.a.Run("ip", "addr", "add", a, "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	ours := []addr.VIP{
		vip("192.0.2.100/24", "eth0"),
		vip("192.0.2.101/24", "eth0"), // not present
		vip("2001:db8:5::100/64", "eth0"),
		vip("192.0.2.102/32", "nosuchif"), // interface gone
		// a second one on an interface already listed, after a removal
		vip("192.0.2.103/24", "eth0"),
	}
	removed, err := r.m.RemoveStale(ours)
	if err != nil {
		t.Fatal(err)
	}
	if want := []addr.VIP{ours[0], ours[2], ours[4]}; !slices.Equal(removed, want) {
		t.Errorf("RemoveStale removed %v, want %v", removed, want)
	}
	got := addrsOf(t, r.a, "eth0")
	for _, k := range []string{"192.0.2.1/24", "192.0.2.50/24", "2001:db8:5::1/64"} {
		if _, ok := got[k]; !ok {
			t.Errorf("RemoveStale removed %s, which is not ours: left %v", k, got)
		}
	}
	for _, k := range []string{"192.0.2.100/24", "2001:db8:5::100/64", "192.0.2.103/24"} {
		if _, ok := got[k]; ok {
			t.Errorf("RemoveStale left our stale %s", k)
		}
	}
}

// ping reports whether h gets an answer from dst.
func ping(h *netlab.Host, dst string) bool {
	_, err := h.Run("ping", "-c", "1", "-W", "1", dst)
	return err == nil
}

// pingEventually reports whether h gets an answer from dst within three
// tries (a loaded machine may miss the first).
func pingEventually(h *netlab.Host, dst string) bool {
	for range 3 {
		if ping(h, dst) {
			return true
		}
	}
	return false
}

func TestVIPReachable(t *testing.T) {
	t.Parallel()
	r := newRig(t, "adrping", []string{"192.0.2.1/24", "2001:db8:8::1/64"}, []string{"192.0.2.2/24", "2001:db8:8::2/64"})
	for _, v := range []addr.VIP{vip("192.0.2.100/32", "eth0"), vip("2001:db8:8::100/128", "eth0")} {
		dst := v.Addr().String()
		if ping(r.b, dst) {
			t.Fatalf("%s answers before Add", dst)
		}
		if err := r.m.Add(v); err != nil {
			t.Fatal(err)
		}
		// The failed resolution of the first ping may still be pending in
		// b's neighbour table: start afresh, and allow for a loaded machine.
		if _, err := r.b.Run("ip", "neigh", "flush", "to", dst); err != nil {
			t.Fatal(err)
		}
		if !pingEventually(r.b, dst) {
			t.Errorf("%s does not answer after Add", dst)
		}
		if err := r.m.Remove(v); err != nil {
			t.Fatal(err)
		}
		if ping(r.b, dst) {
			t.Errorf("%s still answers after Remove", dst)
		}
	}
}

// TestPromoteSecondaries shows the kernel behaviour the option exists for:
// removing the primary address of a subnet takes its secondaries with it,
// unless promote_secondaries is set.
func TestPromoteSecondaries(t *testing.T) {
	r := newRig(t, "adrps", []string{"198.51.100.1/24"}, []string{"198.51.100.2/24"})
	first, second := vip("192.0.2.100/24", "eth0"), vip("192.0.2.101/24", "eth0")
	for _, promote := range []bool{false, true} {
		if promote {
			if err := r.m.PromoteSecondaries("eth0"); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range []addr.VIP{first, second} {
			if err := r.m.Add(v); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.m.Remove(first); err != nil {
			t.Fatal(err)
		}
		has, err := r.m.Has(second)
		if err != nil {
			t.Fatal(err)
		}
		if has != promote {
			t.Errorf("promote_secondaries %v: %s survives removing %s: %v, want %v", promote, second, first, has, promote)
		}
		if err := r.m.Remove(second); err != nil {
			t.Fatal(err)
		}
	}
}

func TestErrors(t *testing.T) {
	r := newRig(t, "adrerr", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	v := vip("192.0.2.100/24", "nosuchif")
	err := r.m.Add(v)
	if !errors.Is(err, addr.ErrNoInterface) || !strings.Contains(err.Error(), "192.0.2.100/24") || !strings.Contains(err.Error(), "nosuchif") {
		t.Errorf("Add on a missing interface: %v; want ErrNoInterface naming the address and interface", err)
	}
	if err := r.m.Remove(v); err != nil {
		t.Errorf("Remove from a missing interface: %v, want success (nothing to remove)", err)
	}
	if err := r.m.Add(addr.VIP{Prefix: netip.MustParsePrefix("192.0.2.100/24")}); err == nil || !strings.Contains(err.Error(), "no interface") {
		t.Errorf("Add without dev: %v", err)
	}
}

type ipRoute struct {
	Type     string `json:"type"`
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	Metric   int    `json:"metric"`
	Scope    string `json:"scope"`
	PrefSrc  string `json:"prefsrc"`
	Protocol string `json:"protocol"`
}

func routesIn(t *testing.T, h *netlab.Host, fam, table string) []ipRoute {
	var rs []ipRoute
	ipJSON(t, h, &rs, fam, "route", "show", "table", table)
	for i := range rs {
		rs[i].Protocol = "" // the kernel's choice, not ours
	}
	return rs
}

func TestRoutes(t *testing.T) {
	r := newRig(t, "adrrt", []string{"192.0.2.1/24", "2001:db8:9::1/64"}, []string{"192.0.2.2/24"})
	routes := []addr.Route{
		{Dst: netip.MustParsePrefix("198.51.100.0/24"), Via: netip.MustParseAddr("192.0.2.254"), Dev: "eth0", Table: 100, Metric: 5},
		{Dst: netip.MustParsePrefix("203.0.113.128/25"), Dev: "eth0", Src: netip.MustParseAddr("192.0.2.1"), Table: 100},
		{Dst: netip.MustParsePrefix("203.0.113.0/25"), Type: addr.Blackhole, Table: 100},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.254"), Table: 100},
		{Dst: netip.MustParsePrefix("2001:db8:99::/48"), Via: netip.MustParseAddr("2001:db8:9::fe"), Dev: "eth0", Table: 100},
	}
	twice(t, "AddRoute", r.m.AddRoute, routes...)
	haveAll(t, "HasRoute", r.m.HasRoute, true, routes...)
	want4 := []ipRoute{
		{Dst: "default", Gateway: "192.0.2.254", Dev: "eth0"},
		{Dst: "198.51.100.0/24", Gateway: "192.0.2.254", Dev: "eth0", Metric: 5},
		{Type: "blackhole", Dst: "203.0.113.0/25"},
		{Dst: "203.0.113.128/25", Dev: "eth0", Scope: "link", PrefSrc: "192.0.2.1"},
	}
	if got := routesIn(t, r.a, "-4", "100"); !slices.Equal(got, want4) {
		t.Errorf("ip -4 route show table 100:\n got %+v\nwant %+v", got, want4)
	}
	got6 := routesIn(t, r.a, "-6", "100")
	if len(got6) != 1 || got6[0].Dst != "2001:db8:99::/48" || got6[0].Gateway != "2001:db8:9::fe" {
		t.Errorf("ip -6 route show table 100: %+v", got6)
	}

	// A different route in the same place is not ours to replace.
	other := addr.Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Via: netip.MustParseAddr("192.0.2.253"), Table: 100, Metric: 5}
	if err := r.m.AddRoute(other); err == nil || !strings.Contains(err.Error(), "different route") {
		t.Errorf("AddRoute over a different route: %v, want an error", err)
	}

	twice(t, "RemoveRoute", r.m.RemoveRoute, routes...)
	if got := routesIn(t, r.a, "-4", "100"); len(got) != 0 {
		t.Errorf("table 100 after RemoveRoute: %+v", got)
	}
	if got := routesIn(t, r.a, "-6", "100"); len(got) != 0 {
		t.Errorf("IPv6 table 100 after RemoveRoute: %+v", got)
	}
}

type ipRule struct {
	Priority int    `json:"priority"`
	Src      string `json:"src"`
	SrcLen   int    `json:"srclen"`
	Dst      string `json:"dst"`
	DstLen   int    `json:"dstlen"`
	FwMark   string `json:"fwmark"`
	FwMask   string `json:"fwmask"`
	IIF      string `json:"iif"`
	OIF      string `json:"oif"`
	Table    string `json:"table"`
}

// rulesWithTable returns the rules in h's rule list that look up table.
func rulesWithTable(t *testing.T, h *netlab.Host, fam, table string) []ipRule {
	var all, rs []ipRule
	ipJSON(t, h, &all, fam, "rule", "show")
	for _, r := range all {
		if r.Table == table {
			rs = append(rs, r)
		}
	}
	return rs
}

func TestRules(t *testing.T) {
	r := newRig(t, "adrru", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	rules := []addr.Rule{
		{From: netip.MustParsePrefix("198.51.100.0/24"), To: netip.MustParsePrefix("203.0.113.0/24"), Table: 100, Priority: 100, IIF: "eth0", FwMark: 0x10, FwMask: 0xff},
		{To: netip.MustParsePrefix("203.0.113.0/24"), Table: 101}, // no priority: the kernel picks one
		{From: netip.MustParsePrefix("2001:db8:a::/48"), Table: 102, OIF: "eth0", Priority: 200},
	}
	twice(t, "AddRule", r.m.AddRule, rules...)
	haveAll(t, "HasRule", r.m.HasRule, true, rules...)
	if got, want := rulesWithTable(t, r.a, "-4", "100"), []ipRule{{Priority: 100, Src: "198.51.100.0", SrcLen: 24, Dst: "203.0.113.0", DstLen: 24, FwMark: "0x10", FwMask: "0xff", IIF: "eth0", Table: "100"}}; !slices.Equal(got, want) {
		t.Errorf("rules for table 100:\n got %+v\nwant %+v", got, want)
	}
	if got := rulesWithTable(t, r.a, "-4", "101"); len(got) != 1 || got[0].Dst != "203.0.113.0" || got[0].Src != "all" {
		t.Errorf("rules for table 101 (added twice without priority): %+v, want exactly one", got)
	}
	if got := rulesWithTable(t, r.a, "-6", "102"); len(got) != 1 || got[0].Src != "2001:db8:a::" || got[0].OIF != "eth0" || got[0].Priority != 200 {
		t.Errorf("IPv6 rules for table 102: %+v", got)
	}
	twice(t, "RemoveRule", r.m.RemoveRule, rules...)
	for _, tc := range []struct{ fam, table string }{{"-4", "100"}, {"-4", "101"}, {"-6", "102"}} {
		if got := rulesWithTable(t, r.a, tc.fam, tc.table); len(got) != 0 {
			t.Errorf("rules for table %s after RemoveRule: %+v", tc.table, got)
		}
	}
}

type ipLink struct {
	IfName   string `json:"ifname"`
	Address  string `json:"address"`
	Link     string `json:"link"`
	Flags    []string
	LinkInfo struct {
		InfoKind string `json:"info_kind"`
		InfoData struct {
			Mode string `json:"mode"`
		} `json:"info_data"`
	} `json:"linkinfo"`
	AddrGenMode string `json:"inet6_addr_gen_mode"`
}

func linkOf(t *testing.T, h *netlab.Host, dev string) ipLink {
	var ls []ipLink
	ipJSON(t, h, &ls, "-d", "link", "show", "dev", dev)
	if len(ls) != 1 {
		t.Fatalf("ip -d link show dev %s: %d links", dev, len(ls))
	}
	return ls[0]
}

func sysctl(t *testing.T, h *netlab.Host, path string) string {
	out, err := h.Run("cat", "/proc/sys/"+path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestVMAC(t *testing.T) {
	t.Parallel()
	r := newRig(t, "adrvm", []string{"192.0.2.1/24", "2001:db8:b::1/64"}, []string{"192.0.2.2/24", "2001:db8:b::2/64"})
	// rp_filter set globally: EnsureVMAC must move it out of the way.
	if _, err := r.a.Run("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second call finds and reuses it
		name, err := r.m.EnsureVMAC("eth0", 51, inet.IPv4, "vrrp.51")
		if err != nil {
			t.Fatal(err)
		}
		if name != "vrrp.51" {
			t.Fatalf("EnsureVMAC named it %q, want vrrp.51", name)
		}
	}
	l := linkOf(t, r.a, "vrrp.51")
	if l.Address != "00:00:5e:00:01:33" || l.Link != "eth0" || l.LinkInfo.InfoKind != "macvlan" || l.LinkInfo.InfoData.Mode != "private" || !slices.Contains(l.Flags, "UP") {
		t.Errorf("vrrp.51: %+v; want macvlan private on eth0 with MAC 00:00:5e:00:01:33, up", l)
	}
	for path, want := range map[string]string{
		"net/ipv4/conf/vrrp.51/arp_ignore":   "1",
		"net/ipv4/conf/vrrp.51/accept_local": "1",
		"net/ipv4/conf/vrrp.51/rp_filter":    "0",
		"net/ipv4/conf/eth0/arp_ignore":      "1",
		"net/ipv4/conf/eth0/arp_filter":      "1",
		"net/ipv4/conf/eth0/arp_announce":    "2",
		"net/ipv4/conf/all/rp_filter":        "0",
		"net/ipv4/conf/eth0/rp_filter":       "1", // keeps its effective value
		"net/ipv4/conf/default/rp_filter":    "1",
	} {
		if got := sysctl(t, r.a, path); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}
	if got := addrsOf(t, r.a, "vrrp.51"); len(got) != 0 {
		t.Errorf("vrrp.51 has addresses %v, want none (no generated link-local)", got)
	}

	// The real effect: a VIP on the VMAC answers, and the neighbour learns
	// the virtual MAC for it, not the parent's.
	// a knows b's MAC for good, so that a never sends an ARP request of
	// its own (with the VIP as sender, from the parent's MAC) that would
	// teach b the parent's MAC: b must learn what answers its request.
	if _, err := r.a.Run("ip", "neigh", "replace", "192.0.2.2", "lladdr", linkOf(t, r.b, "eth0").Address, "dev", "eth0", "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	v := vip("192.0.2.100/24", "vrrp.51")
	if err := r.m.Add(v); err != nil {
		t.Fatal(err)
	}
	if !pingEventually(r.b, "192.0.2.100") {
		t.Fatal("VIP on the VMAC does not answer")
	}
	var neigh []struct {
		Dst    string `json:"dst"`
		LLAddr string `json:"lladdr"`
	}
	ipJSON(t, r.b, &neigh, "neigh", "show", "192.0.2.100")
	if len(neigh) != 1 || neigh[0].LLAddr != "00:00:5e:00:01:33" {
		t.Errorf("neighbour entry for the VIP: %+v, want lladdr 00:00:5e:00:01:33", neigh)
	}

	// IPv6: its own MAC, the parent's link-local, no generated one.
	name6, err := r.m.EnsureVMAC("eth0", 52, inet.IPv6, "vr6.52")
	if err != nil {
		t.Fatal(err)
	}
	if l := linkOf(t, r.a, name6); l.Address != "00:00:5e:00:02:34" || l.LinkInfo.InfoData.Mode != "private" {
		t.Errorf("%s: %+v; want MAC 00:00:5e:00:02:34, private", name6, l)
	}
	parentLL, vmacLL := "", map[string]ipAddr{}
	for k := range addrsOf(t, r.a, "eth0") {
		if strings.HasPrefix(k, "fe80:") {
			parentLL = k
		}
	}
	vmacLL = addrsOf(t, r.a, name6)
	if a, ok := vmacLL[parentLL]; parentLL == "" || len(vmacLL) != 1 || !ok || !a.NoDAD || !a.Deprecated {
		t.Errorf("%s addresses %+v; want only the parent's link-local %s, nodad and deprecated", name6, vmacLL, parentLL)
	}

	// A name taken by something else is never reused or removed.
	if _, err := r.m.EnsureVMAC("eth0", 53, inet.IPv4, "vrrp.51"); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("EnsureVMAC over a VMAC with another MAC: %v, want a refusal", err)
	}
	if err := r.m.RemoveVMAC("eth0"); err == nil {
		t.Error("RemoveVMAC(eth0) succeeded on a real interface")
	}
	if _, err := r.a.Run("ip", "link", "add", "mv0", "link", "eth0", "type", "macvlan", "mode", "bridge"); err != nil {
		t.Fatal(err)
	}
	if err := r.m.RemoveVMAC("mv0"); err == nil {
		t.Error("RemoveVMAC(mv0) removed a macvlan that is not a VMAC")
	}

	// use_vmac NAME MAC, with five octets completed by the VRID.
	mac, err := addr.ParseVMACAddr("02:00:5e:10:20", 54)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.m.EnsureVMACWithMAC("eth0", 54, inet.IPv4, "vip54", mac); err != nil {
		t.Fatal(err)
	}
	if l := linkOf(t, r.a, "vip54"); l.Address != "02:00:5e:10:20:36" || l.LinkInfo.InfoData.Mode != "private" {
		t.Errorf("vip54: %+v; want MAC 02:00:5e:10:20:36, private", l)
	}
	if err := r.m.RemoveVMAC("vip54"); err != nil {
		t.Error(err)
	}

	for _, n := range []string{"vrrp.51", name6} {
		twice(t, "RemoveVMAC", r.m.RemoveVMAC, n)
		if out, err := r.a.Run("ip", "link", "show", "dev", n); err == nil {
			t.Errorf("%s still exists: %s", n, out)
		}
	}
	if err := r.m.RestoreSysctls(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"net/ipv4/conf/all/rp_filter": "1", "net/ipv4/conf/eth0/rp_filter": "0", "net/ipv4/conf/default/rp_filter": "0"} {
		if got := sysctl(t, r.a, path); got != want {
			t.Errorf("after RestoreSysctls %s = %s, want %s", path, got, want)
		}
	}
	if _, err := os.Stat("/proc/sys/net/ipv4/conf/vrrp.51"); err == nil {
		t.Error("vrrp.51 appeared in the test's own namespace")
	}
}

// TestVIPRecreatedInterface checks the Manager's cache of interface indexes:
// a VIP added after its interface was deleted and created again (a new
// index) lands on the new interface, and after ForgetLinks a name that now
// belongs to another interface (a rename) is looked up again.
func TestVIPRecreatedInterface(t *testing.T) {
	r := newRig(t, "adrre", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	ip := func(args ...string) {
		t.Helper()
		if out, err := r.a.Run("ip", args...); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	ip("link", "add", "d0", "type", "veth", "peer", "name", "p0")
	v := vip("192.0.2.50/32", "d0")
	if err := r.m.Add(v); err != nil {
		t.Fatal(err)
	}
	if _, ok := addrsOf(t, r.a, "d0")["192.0.2.50/32"]; !ok {
		t.Fatal("192.0.2.50/32 is not on d0")
	}

	ip("link", "del", "d0")
	ip("link", "add", "d0", "type", "veth", "peer", "name", "p0")
	if err := r.m.Add(v); err != nil {
		t.Fatalf("Add after d0 was recreated: %v", err)
	}
	if _, ok := addrsOf(t, r.a, "d0")["192.0.2.50/32"]; !ok {
		t.Fatal("after d0 was recreated, 192.0.2.50/32 is not on the new d0")
	}
	if err := r.m.Remove(v); err != nil {
		t.Fatal(err)
	}
	haveAll(t, "Has", r.m.Has, false, v)

	// A rename keeps the index: only ForgetLinks (the daemon calls it on
	// every link event) makes the name resolve to the new d0.
	if err := r.m.Add(v); err != nil {
		t.Fatal(err)
	}
	ip("link", "set", "d0", "name", "d1")
	ip("link", "add", "d0", "type", "veth", "peer", "name", "p1")
	r.m.ForgetLinks()
	w := vip("192.0.2.51/32", "d0")
	if err := r.m.Add(w); err != nil {
		t.Fatal(err)
	}
	if _, ok := addrsOf(t, r.a, "d0")["192.0.2.51/32"]; !ok {
		t.Error("after the rename and ForgetLinks, 192.0.2.51/32 is not on the new d0")
	}
	if _, ok := addrsOf(t, r.a, "d1")["192.0.2.51/32"]; ok {
		t.Error("192.0.2.51/32 went to the renamed interface d1")
	}
}

// BenchmarkAddRemove measures what putting a VIP on and taking it off costs
// (the work of an instance becoming master and leaving it); B/op is the
// number the interface-index cache is for (see docs/benchmarks.md).
func BenchmarkAddRemove(b *testing.B) {
	r := newRig(b, "adrbn", []string{"192.0.2.1/24"}, []string{"192.0.2.2/24"})
	v := vip("192.0.2.60/32", "eth0")
	b.ReportAllocs()
	for b.Loop() {
		if err := r.m.Add(v); err != nil {
			b.Fatal(err)
		}
		if err := r.m.Remove(v); err != nil {
			b.Fatal(err)
		}
	}
}
