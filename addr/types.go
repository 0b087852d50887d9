package addr

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"vigil/internal/inet"
)

// Scope is a route or address scope (RT_SCOPE_*), as in `ip addr add ...
// scope SCOPE`. The zero value is global.
type Scope uint8

const (
	ScopeGlobal  Scope = 0
	ScopeSite    Scope = 200
	ScopeLink    Scope = 253
	ScopeHost    Scope = 254
	ScopeNowhere Scope = 255
)

var scopeNames = map[Scope]string{
	ScopeGlobal:  "global",
	ScopeSite:    "site",
	ScopeLink:    "link",
	ScopeHost:    "host",
	ScopeNowhere: "nowhere",
}

// ParseScope parses the scope names keepalived accepts (global, site, link,
// host, nowhere) or a number 0..255.
func ParseScope(s string) (Scope, error) {
	if sc, ok := byName(scopeNames, s); ok {
		return sc, nil
	}
	if s == "universe" {
		return ScopeGlobal, nil
	}
	n, err := strconv.ParseUint(s, 0, 8)
	if err != nil {
		return 0, fmt.Errorf("scope %q: expected global, site, link, host, nowhere or a number 0..255", s)
	}
	return Scope(n), nil
}

// byName is the value names maps to s.
func byName[T comparable](names map[T]string, s string) (T, bool) {
	for v, name := range names {
		if name == s {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func (s Scope) String() string {
	if n, ok := scopeNames[s]; ok {
		return n
	}
	return strconv.Itoa(int(s))
}

// Forever is the infinite address lifetime (INFINITY_LIFE_TIME), as in
// `preferred_lft forever`.
const Forever = math.MaxUint32

// VIP is one entry of virtual_ipaddress (or virtual_ipaddress_excluded) with
// the options keepalived.conf(5) documents. The zero value is invalid; a VIP
// is a comparable value and may be a map key.
type VIP struct {
	// Prefix is the address and its prefix length. A bare address in the
	// config is /32 (IPv4) or /128 (IPv6).
	Prefix netip.Prefix
	// Dev is the interface. keepalived defaults it to the instance's
	// interface (or its VMAC); the caller fills that in, Manager requires it.
	Dev string
	// Brd is the IPv4 broadcast address (brd); invalid means none.
	Brd netip.Addr
	// Scope is the address scope; zero is global.
	Scope Scope
	// Label is the IPv4 address label (label), e.g. "eth0:1".
	Label string
	// Peer is the point-to-point peer (peer); invalid means none.
	Peer netip.Prefix
	// Home, MngTmpAddr, NoPrefixRoute and AutoJoin are the IFA_F_* flags of
	// the options home, mngtmpaddr, noprefixroute and autojoin.
	Home, MngTmpAddr, NoPrefixRoute, AutoJoin bool
	// PreferredLft is the IPv6 preferred lifetime in seconds (Forever for
	// "forever"), used only when PreferredLftSet. Unset, it is 0 for a /128
	// VIP and Forever otherwise, as keepalived does.
	PreferredLft    uint32
	PreferredLftSet bool
}

// Addr returns the VIP's address.
func (v VIP) Addr() netip.Addr { return v.Prefix.Addr() }

// Family returns the VIP's address family.
func (v VIP) Family() inet.Family { return inet.Of(v.Prefix.Addr()) }

// preferredLft is the preferred lifetime the VIP is added with.
func (v VIP) preferredLft() uint32 {
	switch {
	case v.PreferredLftSet:
		return v.PreferredLft
	case v.Prefix.Addr().Is6() && v.Prefix.Bits() == 128:
		return 0
	}
	return Forever
}

// Validate reports what is wrong with v, quoting it.
func (v VIP) Validate() error {
	switch {
	case !v.Prefix.IsValid():
		return fmt.Errorf("vip %q: no address", v)
	case v.Prefix.Addr().Zone() != "":
		return fmt.Errorf("vip %q: an address with a zone cannot be a VIP", v)
	case v.Dev == "":
		return fmt.Errorf("vip %q: no interface (dev)", v)
	case len(v.Dev) > 15:
		return fmt.Errorf("vip %q: interface name %q is longer than 15 characters", v, v.Dev)
	case v.Brd.IsValid() && !(v.Brd.Is4() && v.Prefix.Addr().Is4()):
		return fmt.Errorf("vip %q: brd is only for IPv4 addresses", v)
	case v.Label != "" && !v.Prefix.Addr().Is4():
		return fmt.Errorf("vip %q: label is only for IPv4 addresses", v)
	case len(v.Label) > 15:
		return fmt.Errorf("vip %q: label %q is longer than 15 characters", v, v.Label)
	case v.Peer.IsValid() && v.Peer.Addr().Is4() != v.Prefix.Addr().Is4():
		return fmt.Errorf("vip %q: peer %s is not of the address's family", v, v.Peer)
	}
	return nil
}

// String formats v in `ip addr add` words.
func (v VIP) String() string {
	var b strings.Builder
	b.WriteString(v.Prefix.String())
	if v.Peer.IsValid() {
		fmt.Fprintf(&b, " peer %s", v.Peer)
	}
	if v.Brd.IsValid() {
		fmt.Fprintf(&b, " brd %s", v.Brd)
	}
	if v.Dev != "" {
		fmt.Fprintf(&b, " dev %s", v.Dev)
	}
	if v.Scope != ScopeGlobal {
		fmt.Fprintf(&b, " scope %s", v.Scope)
	}
	if v.Label != "" {
		fmt.Fprintf(&b, " label %s", v.Label)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{v.Home, "home"}, {v.MngTmpAddr, "mngtmpaddr"}, {v.NoPrefixRoute, "noprefixroute"}, {v.AutoJoin, "autojoin"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	if v.PreferredLftSet {
		if v.PreferredLft == Forever {
			b.WriteString(" preferred_lft forever")
		} else {
			fmt.Fprintf(&b, " preferred_lft %d", v.PreferredLft)
		}
	}
	return b.String()
}

// RouteType is the kind of a route (RTN_*). The zero value is unicast.
type RouteType uint8

const (
	Unicast     RouteType = 0
	Blackhole   RouteType = 6
	Unreachable RouteType = 7
	Prohibit    RouteType = 8
	Throw       RouteType = 9
)

// routeTypeNames are the `ip route add` words of the route types vigil
// supports, for ParseRoute and String.
var routeTypeNames = map[RouteType]string{
	Unicast: "unicast", Blackhole: "blackhole", Unreachable: "unreachable", Prohibit: "prohibit", Throw: "throw",
}

func (t RouteType) String() string {
	if n, ok := routeTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Route is one entry of virtual_routes (the common subset of `ip route add`
// that keepalived.conf users write). The zero value is invalid.
type Route struct {
	// Dst is the destination ("to"); 0.0.0.0/0 or ::/0 for default.
	Dst netip.Prefix
	// Src is the preferred source address (src); invalid means none.
	Src netip.Addr
	// Via is the gateway (via, gw); invalid means a directly connected route.
	Via netip.Addr
	// Dev is the output interface; may be empty for a route with a gateway
	// or of a type other than unicast.
	Dev string
	// Table is the routing table number; 0 means main (254).
	Table int
	// Metric is the route priority (metric, priority, preference).
	Metric int
	// Scope is the route scope. For a unicast route without a gateway, zero
	// means link, as `ip route add` chooses; otherwise zero is global.
	Scope Scope
	// Type is unicast (zero), blackhole, unreachable, prohibit or throw.
	Type RouteType
	// OnLink is the onlink flag: the gateway is on the link even if no
	// prefix says so.
	OnLink bool
}

// Family returns the route's address family.
func (r Route) Family() inet.Family { return inet.Of(r.Dst.Addr()) }

func (r Route) table() int {
	if r.Table == 0 {
		return 254
	}
	return r.Table
}

func (r Route) scope() Scope {
	if r.Scope == ScopeGlobal && r.Type == Unicast && !r.Via.IsValid() {
		return ScopeLink
	}
	return r.Scope
}

// Validate reports what is wrong with r, quoting it.
func (r Route) Validate() error {
	fam := r.Dst.Addr().Is4()
	switch {
	case !r.Dst.IsValid():
		return fmt.Errorf("route %q: no destination", r)
	case r.Src.IsValid() && r.Src.Is4() != fam:
		return fmt.Errorf("route %q: src %s is not of the destination's family", r, r.Src)
	case r.Via.IsValid() && r.Via.Is4() != fam:
		return fmt.Errorf("route %q: gateway %s is not of the destination's family", r, r.Via)
	case r.Type == Unicast && r.Dev == "" && !r.Via.IsValid():
		return fmt.Errorf("route %q: a unicast route needs a gateway (via) or an interface (dev)", r)
	case r.Table < 0 || r.Metric < 0:
		return fmt.Errorf("route %q: negative table or metric", r)
	case r.Type != Unicast && r.Via.IsValid():
		return fmt.Errorf("route %q: a %s route has no gateway", r, r.Type)
	}
	return nil
}

// String formats r in `ip route add` words.
func (r Route) String() string {
	var b strings.Builder
	if r.Type != Unicast {
		b.WriteString(r.Type.String() + " ")
	}
	b.WriteString(r.Dst.String())
	if r.Via.IsValid() {
		fmt.Fprintf(&b, " via %s", r.Via)
	}
	if r.Dev != "" {
		fmt.Fprintf(&b, " dev %s", r.Dev)
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " src %s", r.Src)
	}
	if r.Table != 0 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Scope != ScopeGlobal {
		fmt.Fprintf(&b, " scope %s", r.Scope)
	}
	if r.OnLink {
		b.WriteString(" onlink")
	}
	return b.String()
}

// Rule is one entry of virtual_rules (a policy routing rule, `ip rule add`).
// The zero value is invalid.
type Rule struct {
	// Family is needed only when neither From nor To is set (keepalived's
	// "inet6" keyword); otherwise it is taken from them. Zero means IPv4.
	Family inet.Family
	// From and To are the source and destination selectors; invalid means
	// "all".
	From, To netip.Prefix
	// Table is the table to look up; required.
	Table int
	// Priority is the rule's preference (priority, preference, order). Zero
	// lets the kernel choose (just above the last rule before main), as `ip
	// rule add` without a priority does.
	Priority int
	// IIF and OIF select the input and output interface.
	IIF, OIF string
	// FwMark selects the firewall mark, under FwMask (zero: all bits) when
	// FwMark or FwMask is non-zero.
	FwMark, FwMask uint32
}

func (r Rule) family() inet.Family {
	switch {
	case r.From.IsValid():
		return inet.Of(r.From.Addr())
	case r.To.IsValid():
		return inet.Of(r.To.Addr())
	case r.Family == inet.IPv6:
		return inet.IPv6
	}
	return inet.IPv4
}

// Validate reports what is wrong with r, quoting it.
func (r Rule) Validate() error {
	switch {
	case r.Table <= 0:
		return fmt.Errorf("rule %q: no table", r)
	case r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is4() != r.To.Addr().Is4():
		return fmt.Errorf("rule %q: from and to are of different families", r)
	case r.Family != 0 && r.Family != r.family():
		return fmt.Errorf("rule %q: family %s does not match its addresses", r, r.Family)
	case r.Priority < 0:
		return fmt.Errorf("rule %q: negative priority", r)
	}
	return nil
}

// String formats r in `ip rule add` words.
func (r Rule) String() string {
	var b strings.Builder
	if r.family() == inet.IPv6 && !r.From.IsValid() && !r.To.IsValid() {
		b.WriteString("inet6 ")
	}
	if r.Priority != 0 {
		fmt.Fprintf(&b, "priority %d ", r.Priority)
	}
	if r.From.IsValid() {
		fmt.Fprintf(&b, "from %s ", r.From)
	} else {
		b.WriteString("from all ")
	}
	if r.To.IsValid() {
		fmt.Fprintf(&b, "to %s ", r.To)
	}
	if r.IIF != "" {
		fmt.Fprintf(&b, "iif %s ", r.IIF)
	}
	if r.OIF != "" {
		fmt.Fprintf(&b, "oif %s ", r.OIF)
	}
	if r.FwMark != 0 || r.FwMask != 0 {
		fmt.Fprintf(&b, "fwmark %#x", r.FwMark)
		if r.FwMask != 0 {
			fmt.Fprintf(&b, "/%#x", r.FwMask)
		}
		b.WriteString(" ")
	}
	fmt.Fprintf(&b, "table %d", r.Table)
	return b.String()
}
