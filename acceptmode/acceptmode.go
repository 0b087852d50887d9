// Package acceptmode enforces VRRP accept mode: a master that is not the
// address owner (priority 255) and runs with accept mode off must not
// accept packets addressed to its virtual addresses (RFC 5798 section
// 6.4.3; keepalived's no_accept, which vrrp_strict implies). It still
// answers ARP and neighbour discovery for them, so that hosts can use the
// VIPs as their gateway: routed traffic is not addressed to the VIP and
// passes, ARP is not IP, and IPv6 neighbour solicitations and
// advertisements are let through before the drop.
//
// The filter is one nftables table of its own, "inet vigil_noaccept",
// whose input chain drops what is addressed to the listed addresses,
// rewritten whole in one transaction on every change and removed when no
// address is listed or the filter closes. vigil's load-balancing rules
// are unaffected: NAT and FNAT rewrite the destination in prerouting and
// DR forwards at ingress, so that traffic never reaches input.
//
// The nft command runs only when there is something to write: a daemon
// whose instances never need the filter looks for a leftover table over
// netlink at start and at exit and starts no nft process (it ran four,
// two at start, one to clear and one at exit; knftables.New alone runs
// `nft --version` and `nft --check`).
package acceptmode

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"

	"github.com/google/nftables"
	"sigs.k8s.io/knftables"
)

// Table is the nftables table the filter owns (family inet).
const Table = "vigil_noaccept"

// Filter keeps the kernel's drop list equal to the last Set.
type Filter struct {
	mu  sync.Mutex
	nft knftables.Interface // nil until the first change to write
	cur []netip.Addr        // what the kernel holds; nil when unknown or empty
	ok  bool                // cur is known
	// present says whether the table exists, asked without nft; a
	// variable for tests.
	present func() (bool, error)
}

// New returns a filter; it changes nothing in the kernel until Set or
// Clear, and starts no nft process until it has a table to write or
// remove. It fails when the nft command is missing.
func New() (*Filter, error) {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil, fmt.Errorf("acceptmode: %w", err)
	}
	return &Filter{present: present}, nil
}

// present reports whether the kernel has the table, over netlink.
func present() (bool, error) {
	c, err := nftables.New()
	if err != nil {
		return false, err
	}
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(ts, func(t *nftables.Table) bool { return t.Name == Table }), nil
}

// Set drops packets addressed to addrs from now on, and to nothing else.
// An empty list removes the table. Unchanged lists cost nothing.
func (f *Filter) Set(ctx context.Context, addrs []netip.Addr) error {
	want := normalize(addrs)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ok && slices.Equal(f.cur, want) {
		return nil
	}
	if f.nft == nil {
		if len(want) == 0 && f.present != nil {
			if has, err := f.present(); err == nil && !has {
				f.cur, f.ok = nil, true // nothing to remove
				return nil
			}
		}
		nft, err := knftables.New(knftables.InetFamily, Table)
		if err != nil {
			return fmt.Errorf("acceptmode: %w", err)
		}
		f.nft = nft
	}
	tx := f.nft.NewTransaction()
	build(tx, want)
	if err := f.nft.Run(ctx, tx); err != nil {
		f.ok = false
		return fmt.Errorf("acceptmode: %w", err)
	}
	f.cur, f.ok = want, true
	return nil
}

// Clear removes the table, a leftover of an earlier run included.
func (f *Filter) Clear(ctx context.Context) error {
	f.mu.Lock()
	f.ok = false
	f.mu.Unlock()
	return f.Set(ctx, nil)
}

func normalize(addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if a.IsValid() {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}

// build writes the whole table into tx: deleting it first (after adding
// it, so that the delete cannot fail) makes every change one atomic
// rewrite, whatever the kernel held before.
func build(tx *knftables.Transaction, addrs []netip.Addr) {
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if len(addrs) == 0 {
		return
	}
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("vigil: VRRP no_accept (RFC 5798 6.4.3); rewritten by vigil, do not edit")})
	tx.Add(&knftables.Set{Name: "vips4", Type: "ipv4_addr"})
	tx.Add(&knftables.Set{Name: "vips6", Type: "ipv6_addr"})
	tx.Add(&knftables.Chain{Name: "input", Type: knftables.PtrTo(knftables.FilterType),
		Hook: knftables.PtrTo(knftables.InputHook), Priority: knftables.PtrTo(knftables.FilterPriority + "-1")})
	var has4, has6 bool
	for _, a := range addrs {
		set := "vips6"
		if a.Is4() {
			set, has4 = "vips4", true
		} else {
			has6 = true
		}
		tx.Add(&knftables.Element{Set: set, Key: []string{a.String()}})
	}
	if has4 {
		tx.Add(&knftables.Rule{Chain: "input", Rule: "ip daddr @vips4 counter drop"})
	}
	if has6 {
		tx.Add(&knftables.Rule{Chain: "input", Rule: "ip6 daddr @vips6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept"})
		tx.Add(&knftables.Rule{Chain: "input", Rule: "ip6 daddr @vips6 counter drop"})
	}
}

// String is the last list applied, for logs.
func (f *Filter) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for i, a := range f.cur {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(a.String())
	}
	return b.String()
}
