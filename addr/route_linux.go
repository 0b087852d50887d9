package addr

import (
	"errors"
	"fmt"
	"vigil/internal/inet"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func nlFamily(f inet.Family) int {
	if f == inet.IPv6 {
		return netlink.FAMILY_V6
	}
	return netlink.FAMILY_V4
}

// nlRoute is the netlink form of r; index is Dev's interface index (0: none).
func (r Route) nlRoute(index int) *netlink.Route {
	nr := &netlink.Route{
		LinkIndex: index,
		Dst:       ipnet(r.Dst),
		Table:     r.table(),
		Priority:  r.Metric,
		Scope:     netlink.Scope(r.scope()),
		Type:      int(r.Type),
		Family:    nlFamily(r.Family()),
	}
	if r.Type == Unicast {
		nr.Type = unix.RTN_UNICAST
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	}
	if r.OnLink {
		nr.Flags |= int(netlink.FLAG_ONLINK)
	}
	return nr
}

// routeLink resolves r.Dev, if any, to its index.
func (m *Manager) routeLink(r Route) (int, error) {
	if r.Dev == "" {
		return 0, nil
	}
	l, err := m.link(r.Dev)
	if err != nil {
		return 0, err
	}
	return l.Attrs().Index, nil
}

// AddRoute adds r (`ip route add`: prepended before matching routes, as
// keepalived does by default). The same route already present is success; a
// different route in its place (same table, destination and metric) is an
// error, since replacing it would take over someone else's route.
func (m *Manager) AddRoute(r Route) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("addr: add route: %w", err)
	}
	idx, err := m.routeLink(r)
	if err != nil {
		return fmt.Errorf("addr: add route %s: %w", r, err)
	}
	err = m.h.RouteAdd(r.nlRoute(idx))
	if errors.Is(err, unix.EEXIST) {
		has, herr := m.HasRoute(r)
		switch {
		case herr != nil:
			return fmt.Errorf("addr: add route %s: %w", r, errors.Join(err, herr))
		case !has:
			return fmt.Errorf("addr: add route %s: a different route to %s is in table %d: %w", r, r.Dst, r.table(), err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("addr: add route %s: %w", r, err)
	}
	return nil
}

// RemoveRoute deletes r. A route (or its interface) already gone is success.
func (m *Manager) RemoveRoute(r Route) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("addr: remove route: %w", err)
	}
	idx, err := m.routeLink(r)
	if errors.Is(err, ErrNoInterface) {
		// The kernel removed the interface's routes with it.
		return nil
	}
	if err != nil {
		return fmt.Errorf("addr: remove route %s: %w", r, err)
	}
	err = m.h.RouteDel(r.nlRoute(idx))
	if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("addr: remove route %s: %w", r, err)
	}
	return nil
}

// HasRoute reports whether r is present: a route in r's table to r's
// destination with r's type, metric, gateway, interface and source.
func (m *Manager) HasRoute(r Route) (bool, error) {
	if err := r.Validate(); err != nil {
		return false, fmt.Errorf("addr: has route: %w", err)
	}
	idx, err := m.routeLink(r)
	if errors.Is(err, ErrNoInterface) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("addr: look for route %s: %w", r, err)
	}
	want := r.nlRoute(idx)
	filter := &netlink.Route{Table: want.Table, Dst: want.Dst}
	rs, err := m.h.RouteListFiltered(want.Family, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
	if err != nil {
		return false, fmt.Errorf("addr: list routes to %s in table %d: %w", r.Dst, r.table(), err)
	}
	metric := want.Priority
	if metric == 0 && r.Family() == inet.IPv6 {
		metric = 1024 // the kernel's default for IPv6 routes
	}
	for _, got := range rs {
		if got.Type != want.Type || got.Priority != metric ||
			toAddr(got.Gw) != r.Via || toAddr(got.Src) != r.Src {
			continue
		}
		if idx != 0 && got.LinkIndex != idx {
			continue
		}
		return true, nil
	}
	return false, nil
}

// nlRule is the netlink form of r.
func (r Rule) nlRule() *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = nlFamily(r.family())
	nr.Table = r.Table
	if r.Priority != 0 {
		nr.Priority = r.Priority
	}
	if r.From.IsValid() {
		nr.Src = ipnet(r.From)
	}
	if r.To.IsValid() {
		nr.Dst = ipnet(r.To)
	}
	nr.IifName = r.IIF
	nr.OifName = r.OIF
	if r.FwMark != 0 || r.FwMask != 0 {
		nr.Mark = r.FwMark
		mask := r.FwMask
		if mask == 0 {
			mask = 0xffffffff
		}
		nr.Mask = &mask
	}
	return nr
}

// AddRule adds r. The same rule already present is success. The kernel's own
// duplicate check cannot be relied on when no priority is given (each add
// would get a new one), so presence is checked first.
func (m *Manager) AddRule(r Rule) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("addr: add rule: %w", err)
	}
	has, err := m.HasRule(r)
	if err != nil {
		return err
	}
	if has {
		return nil
	}
	if err := m.h.RuleAdd(r.nlRule()); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("addr: add rule %s: %w", r, err)
	}
	return nil
}

// RemoveRule deletes r. A rule already gone is success.
func (m *Manager) RemoveRule(r Rule) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("addr: remove rule: %w", err)
	}
	err := m.h.RuleDel(r.nlRule())
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("addr: remove rule %s: %w", r, err)
	}
	return nil
}

// HasRule reports whether r is present (with any priority when r's is zero).
func (m *Manager) HasRule(r Rule) (bool, error) {
	if err := r.Validate(); err != nil {
		return false, fmt.Errorf("addr: has rule: %w", err)
	}
	want := r.nlRule()
	rs, err := m.h.RuleList(want.Family)
	if err != nil {
		return false, fmt.Errorf("addr: list %s rules: %w", r.family(), err)
	}
	for _, got := range rs {
		if got.Table != want.Table || toPrefix(got.Src) != r.From || toPrefix(got.Dst) != r.To ||
			got.IifName != r.IIF || got.OifName != r.OIF || got.Mark != want.Mark ||
			(r.Priority != 0 && got.Priority != r.Priority) || got.Invert || got.Goto > 0 {
			continue
		}
		gotMask, wantMask := uint32(0), uint32(0)
		if got.Mask != nil {
			gotMask = *got.Mask
		}
		if want.Mask != nil {
			wantMask = *want.Mask
		}
		if got.Mark == 0 && want.Mark == 0 {
			// No fwmark selector: the kernel may report any mask.
			gotMask, wantMask = 0, 0
		}
		if gotMask != wantMask {
			continue
		}
		return true, nil
	}
	return false, nil
}
