package acceptmode

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// The table holds exactly the listed addresses, in one set per family,
// with neighbour discovery let through for IPv6; an empty list removes it.
func TestSetRendersTable(t *testing.T) {
	fake := knftables.NewFake(knftables.InetFamily, Table)
	f := &Filter{nft: fake}
	ctx := context.Background()
	if err := f.Set(ctx, addrs("192.0.2.100", "2001:db8::100", "192.0.2.100", "::ffff:192.0.2.101")); err != nil {
		t.Fatal(err)
	}
	dump := fake.Dump()
	for _, want := range []string{
		"add chain inet vigil_noaccept input { type filter hook input priority -1 ; }",
		"add element inet vigil_noaccept vips4 { 192.0.2.100 }",
		"add element inet vigil_noaccept vips4 { 192.0.2.101 }",
		"add element inet vigil_noaccept vips6 { 2001:db8::100 }",
		"add rule inet vigil_noaccept input ip daddr @vips4 counter drop",
		"add rule inet vigil_noaccept input ip6 daddr @vips6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept",
		"add rule inet vigil_noaccept input ip6 daddr @vips6 counter drop",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("table lacks %q:\n%s", want, dump)
		}
	}
	if got := f.String(); got != "192.0.2.100 192.0.2.101 2001:db8::100" {
		t.Errorf("String() = %q", got)
	}
	// IPv4 only: no IPv6 rules.
	if err := f.Set(ctx, addrs("192.0.2.100")); err != nil {
		t.Fatal(err)
	}
	if dump := fake.Dump(); strings.Contains(dump, "ip6 daddr") || strings.Contains(dump, "2001:db8::100") {
		t.Errorf("IPv6 rules or elements left after the list lost its IPv6 address:\n%s", dump)
	}
	if err := f.Set(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if tbl, _ := fake.List(ctx, "chains"); len(tbl) != 0 {
		t.Errorf("chains left after an empty Set: %v", tbl)
	}
	if fake.Table != nil {
		t.Errorf("table left after an empty Set:\n%s", fake.Dump())
	}
}

// An unchanged list is not sent again; Clear always is.
func TestSetSkipsUnchanged(t *testing.T) {
	fake := knftables.NewFake(knftables.InetFamily, Table)
	f := &Filter{nft: fake}
	ctx := context.Background()
	for range 3 {
		if err := f.Set(ctx, addrs("192.0.2.100", "192.0.2.101")); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Set(ctx, addrs("192.0.2.101", "192.0.2.100")); err != nil { // same set, other order
		t.Fatal(err)
	}
	if fake.LastTransaction == nil {
		t.Fatal("nothing sent")
	}
	first := fake.LastTransaction
	if err := f.Set(ctx, addrs("192.0.2.100", "192.0.2.101")); err != nil {
		t.Fatal(err)
	}
	if fake.LastTransaction != first {
		t.Errorf("an unchanged list was sent again")
	}
	if err := f.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if fake.LastTransaction == first || fake.Table != nil {
		t.Errorf("Clear did not remove the table")
	}
}
