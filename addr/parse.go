package addr

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"vigil/internal/inet"
)

// Broadcast returns the IPv4 broadcast address of p (all host bits set), as
// `brd +` asks for; invalid for IPv6 and for /31 and /32, which have none.
func Broadcast(p netip.Prefix) netip.Addr {
	if !p.Addr().Is4() || p.Bits() >= 31 {
		return netip.Addr{}
	}
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// parsePrefix reads an address with an optional /len (none: a host prefix).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseTable reads a routing table: a number 1..2^32-1 or one of the
// standard names main, local and default. Other names from rt_tables need
// the host's file, which this package does not read.
func ParseTable(s string) (int, error) {
	switch s {
	case "main":
		return 254, nil
	case "local":
		return 255, nil
	case "default":
		return 253, nil
	}
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("table %q: expected a number 1..4294967295, main, local or default", s)
	}
	return int(n), nil
}

// words walks a keepalived route or rule line.
type words struct {
	ws   []string
	i    int
	what string // "route" or "rule", for errors
}

func (w *words) more() bool   { return w.i < len(w.ws) }
func (w *words) next() string { w.i++; return w.ws[w.i-1] }

func (w *words) value(key string) (string, error) {
	if !w.more() {
		return "", fmt.Errorf("%s %q: %s needs a value", w.what, strings.Join(w.ws, " "), key)
	}
	return w.next(), nil
}

func (w *words) errorf(format string, args ...any) error {
	return fmt.Errorf("%s %q: %s", w.what, strings.Join(w.ws, " "), fmt.Sprintf(format, args...))
}

// ParseRoute reads one line of virtual_routes (or static_routes) given as
// words, e.g. `src 192.0.2.1 to 198.51.100.0/24 via 192.0.2.254 dev eth0
// table 100`. It understands the common subset of `ip route add`: a type
// (unicast, blackhole, unreachable, prohibit, throw), [to] PREFIX or
// default, src, via/gw, dev, table, metric/priority/preference, scope,
// onlink, inet/inet6; keepalived's own no_track and track_group are
// accepted and ignored (they are not kernel properties). Anything else (or,
// nexthop, mtu, ...) is an error naming the word, rather than a route that is
// silently different from the one configured.
func ParseRoute(ws []string) (Route, error) {
	w := &words{ws: ws, what: "route"}
	var r Route
	var dst string
	v6 := false
	for w.more() {
		key := w.next()
		var val string
		var err error
		switch key {
		case "src", "via", "gw", "dev", "oif", "table", "metric", "priority", "preference", "scope", "to", "track_group":
			if val, err = w.value(key); err != nil {
				return Route{}, err
			}
		}
		switch key {
		case "src":
			if r.Src, err = netip.ParseAddr(val); err != nil {
				return Route{}, w.errorf("src %q is not an address", val)
			}
		case "via", "gw":
			if r.Via, err = netip.ParseAddr(val); err != nil {
				return Route{}, w.errorf("%s %q is not an address", key, val)
			}
		case "dev", "oif":
			r.Dev = val
		case "table":
			if r.Table, err = ParseTable(val); err != nil {
				return Route{}, w.errorf("%v", err)
			}
		case "metric", "priority", "preference":
			n, err := strconv.ParseUint(val, 0, 32)
			if err != nil {
				return Route{}, w.errorf("%s %q is not a number", key, val)
			}
			r.Metric = int(n)
		case "scope":
			if r.Scope, err = ParseScope(val); err != nil {
				return Route{}, w.errorf("%v", err)
			}
		case "onlink":
			r.OnLink = true
		case "inet6":
			v6 = true
		case "inet", "no_track", "track_group":
		case "to":
			dst = val
		default:
			if t, ok := byName(routeTypeNames, key); ok && dst == "" && r.Type == Unicast {
				r.Type = t
				continue
			}
			switch key {
			case "local", "broadcast", "anycast", "multicast", "nat":
				return Route{}, w.errorf("route type %s is not supported by vigil", key)
			}
			if dst != "" {
				return Route{}, w.errorf("%q is not supported by vigil (supported: type, to, src, via/gw, dev, table, metric, scope, onlink)", key)
			}
			dst = key
		}
	}
	switch {
	case dst == "":
		return Route{}, w.errorf("no destination")
	case dst == "default" || dst == "all":
		bits := netip.MustParsePrefix("0.0.0.0/0")
		if v6 || (r.Via.IsValid() && r.Via.Is6()) || (r.Src.IsValid() && r.Src.Is6()) {
			bits = netip.MustParsePrefix("::/0")
		}
		r.Dst = bits
	default:
		p, err := parsePrefix(dst)
		if err != nil {
			return Route{}, w.errorf("destination %q is not an address or prefix", dst)
		}
		r.Dst = p
	}
	if v6 && r.Dst.Addr().Is4() {
		return Route{}, w.errorf("inet6 with an IPv4 destination")
	}
	if err := r.Validate(); err != nil {
		return Route{}, err
	}
	return r, nil
}

// ParseRule reads one line of virtual_rules (or static_rules) given as
// words, e.g. `from 198.51.100.0/24 table 100`. It understands from, to
// (a prefix or all), table/lookup, priority/preference/pref/order, iif/dev,
// oif, fwmark MARK[/MASK] and inet/inet6; keepalived's no_track and
// track_group are accepted and ignored. Anything else (goto, tos, uidrange,
// actions, ...) is an error naming the word.
func ParseRule(ws []string) (Rule, error) {
	w := &words{ws: ws, what: "rule"}
	var r Rule
	for w.more() {
		key := w.next()
		switch key {
		case "inet":
			r.Family = inet.IPv4
			continue
		case "inet6":
			r.Family = inet.IPv6
			continue
		case "no_track":
			continue
		}
		val, err := w.value(key)
		if err != nil {
			return Rule{}, w.errorf("%q is not supported by vigil, or needs a value", key)
		}
		switch key {
		case "from", "to":
			var p netip.Prefix
			if val != "all" {
				if p, err = parsePrefix(val); err != nil {
					return Rule{}, w.errorf("%s %q is not an address or prefix", key, val)
				}
			}
			if key == "from" {
				r.From = p
			} else {
				r.To = p
			}
		case "table", "lookup":
			if r.Table, err = ParseTable(val); err != nil {
				return Rule{}, w.errorf("%v", err)
			}
		case "priority", "preference", "pref", "order":
			n, err := strconv.ParseUint(val, 0, 32)
			if err != nil {
				return Rule{}, w.errorf("%s %q is not a number", key, val)
			}
			r.Priority = int(n)
		case "iif", "dev":
			r.IIF = val
		case "oif":
			r.OIF = val
		case "fwmark":
			mark, mask, hasMask := strings.Cut(val, "/")
			m, err := strconv.ParseUint(mark, 0, 32)
			if err != nil {
				return Rule{}, w.errorf("fwmark %q: expected MARK or MARK/MASK", val)
			}
			r.FwMark = uint32(m)
			if hasMask {
				mm, err := strconv.ParseUint(mask, 0, 32)
				if err != nil {
					return Rule{}, w.errorf("fwmark %q: expected MARK or MARK/MASK", val)
				}
				r.FwMask = uint32(mm)
			}
		case "track_group":
		default:
			return Rule{}, w.errorf("%q is not supported by vigil (supported: from, to, table, priority, iif, oif, fwmark)", key)
		}
	}
	if err := r.Validate(); err != nil {
		return Rule{}, err
	}
	r.Family = r.family() // one spelling per rule, so that equal rules compare equal
	return r, nil
}

// ParseVMACAddr reads the MAC address of `use_vmac [NAME] MAC`. As
// keepalived.conf(5) allows, five octets are completed with the VRID as the
// last one.
func ParseVMACAddr(s string, vrid uint8) (net.HardwareAddr, error) {
	if strings.Count(s, ":") == 4 {
		s += fmt.Sprintf(":%02x", vrid)
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, fmt.Errorf("vmac address %q: expected six (or five) colon-separated hex octets", s)
	}
	if mac[0]&1 != 0 {
		return nil, fmt.Errorf("vmac address %q is a multicast address", s)
	}
	return mac, nil
}
