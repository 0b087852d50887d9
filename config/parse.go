package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// builder turns Nodes into the typed Config, collecting diagnostics as it
// goes; a bad value is reported and the default kept, so that one run
// reports everything.
type builder struct {
	env   Env
	cfg   *Config
	diags Diagnostics

	// bfdNames are the bfd_instance blocks seen so far: vigil ignores
	// them but BFD_CHECK and track_bfd must still name one.
	bfdNames map[string]bool
	// dynMissing are interfaces reported missing under dynamic_interfaces.
	dynMissing map[string]bool
	// trackGroups are the track_group names seen so far.
	trackGroups map[string]bool
}

func (b *builder) report(pos Pos, sev Severity, format string, args ...any) {
	b.diags = append(b.diags, Diagnostic{Pos: pos, Severity: sev, Msg: fmt.Sprintf(format, args...)})
}

// coded reports a diagnostic that programs tell apart by its code.
func (b *builder) coded(code Code, pos Pos, sev Severity, format string, args ...any) {
	b.diags = append(b.diags, Diagnostic{Pos: pos, Severity: sev, Code: code, Msg: fmt.Sprintf(format, args...)})
}

func (b *builder) errorf(pos Pos, format string, args ...any) {
	b.report(pos, Error, format, args...)
}

func (b *builder) warnf(pos Pos, format string, args ...any) {
	b.report(pos, Warning, format, args...)
}

func (b *builder) infof(pos Pos, format string, args ...any) {
	b.report(pos, Info, format, args...)
}

// fieldSet records which settings were written, for defaults that are
// inherited (virtual server → real server → checker) or derived.
type fieldSet uint64

const (
	fConnectTimeout fieldSet = 1 << iota
	fRetry
	fDelayBeforeRetry
	fWarmup
	fDelayLoop
	fAlpha
	fInhibit
	fAdvertInt
	fVersion
	fPriority
	fState
	fPreemptDelay
	fProtocol
	fScheduler
	fMethod
	fQuorum
	fPort
	fConnectIP
	fConnectPort
	fWeight
	fGarpMasterDelay
	fGarpMasterRepeat
	fGarpLowerPrioDelay
	fGarpLowerPrioRepeat
	fGarpRefresh
	fGarpRefreshRepeat
	fGarpInterval
	fGNAInterval
	fStrict
	fCheckUnicastSrc
	fSkipCheckAdv
	fLowerPrioNoAdvert
	fHigherPrioSendAdvert
	fDownTimerAdverts
	fIPFamily
	fUnicastKeyword
	fMiscTimeout
	fVirtualhost
)

// noBlock reports an unexpected block after a keyword that takes none.
func (b *builder) noBlock(n *Node) {
	if n.HasBlock {
		b.errorf(n.Key.Pos, "%s does not take a block: unexpected '{'", n.Key.Text)
	}
}

// needBlock reports a missing block; it returns false when there is none.
func (b *builder) needBlock(n *Node) bool {
	if !n.HasBlock {
		b.errorf(n.Key.Pos, "%s: expected a block in braces", n.Key.Text)
		return false
	}
	return true
}

// needListBlock is needBlock for a block of list items (virtual_ipaddress,
// unicast_peer, track_script, ...): keepalived 2.2.7 refuses words between
// such a keyword and its '{' ("virtual_ipaddress primary {"); the items are
// still read, so that they are checked too.
func (b *builder) needListBlock(n *Node) bool {
	if n.HasBlock && len(n.Args) > 0 {
		b.errorf(n.Args[0].Pos, "%s: unexpected %q before '{': this block takes no name or options (keepalived refuses them too)", n.Key.Text, n.Args[0].Text)
	}
	return b.needBlock(n)
}

// arg returns the first argument or reports that one was expected.
func (b *builder) arg(n *Node, what string) (Word, bool) {
	if len(n.Args) == 0 {
		b.errorf(n.Key.Pos, "%s: missing value: expected %s", n.Key.Text, what)
		return Word{}, false
	}
	return n.Args[0], true
}

// extra warns about words after the ones a keyword uses; keepalived
// ignores them too, but they are usually a mistake.
func (b *builder) extra(n *Node, used int) {
	if len(n.Args) > used {
		w := n.Args[used]
		b.warnf(w.Pos, "%s: unexpected %q after the value: ignored", n.Key.Text, w.Text)
	}
}

func parseInt(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// intWord parses w as an integer in [min, max].
func (b *builder) intWord(key string, w Word, min, max int64) (int64, bool) {
	v, ok := parseInt(w.Text)
	if min >= 0 && strings.HasPrefix(w.Text, "-") {
		ok = false // keepalived reads these unsigned: even -0 is refused
	}
	if !ok || v < min || v > max {
		b.errorf(w.Pos, "%s %q: expected an integer %d..%d", key, w.Text, min, max)
		return 0, false
	}
	return v, true
}

// intArg parses the single argument of n as an integer in [min, max].
func (b *builder) intArg(n *Node, min, max int64) (int, bool) {
	if len(n.Args) == 0 {
		b.arg(n, fmt.Sprintf("an integer %d..%d", min, max))
		return 0, false
	}
	w := n.Args[0]
	v, ok := b.intWord(n.Key.Text, w, min, max)
	if ok {
		b.extra(n, 1)
	}
	return int(v), ok
}

// parseSeconds reads a decimal number of seconds, with microsecond
// resolution.
func parseSeconds(s string) (time.Duration, bool) {
	if s == "" || strings.ContainsAny(s, "eExXpP_") {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f > 1e9 || f < -1e9 {
		return 0, false
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, true
}

func fmtSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// durWord parses w as seconds in [min, max].
func (b *builder) durWord(key string, w Word, min, max time.Duration) (time.Duration, bool) {
	d, ok := parseSeconds(w.Text)
	if min >= 0 && strings.HasPrefix(w.Text, "-") {
		ok = false
	}
	if !ok || d < min || d > max {
		b.errorf(w.Pos, "%s %q: expected seconds %s..%s", key, w.Text, fmtSeconds(min), fmtSeconds(max))
		return 0, false
	}
	return d, true
}

// durArg parses the single argument of n as seconds in [min, max].
func (b *builder) durArg(n *Node, min, max time.Duration) (time.Duration, bool) {
	if len(n.Args) == 0 {
		b.arg(n, fmt.Sprintf("seconds %s..%s", fmtSeconds(min), fmtSeconds(max)))
		return 0, false
	}
	w := n.Args[0]
	d, ok := b.durWord(n.Key.Text, w, min, max)
	if ok {
		b.extra(n, 1)
	}
	return d, ok
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	return false, false
}

// boolArg reads an optional <BOOL>; a bare keyword is true.
func (b *builder) boolArg(n *Node) (bool, bool) {
	if len(n.Args) == 0 {
		return true, true
	}
	v, ok := parseBool(n.Args[0].Text)
	if !ok {
		b.errorf(n.Args[0].Pos, "%s %q: expected on|off|true|false|yes|no", n.Key.Text, n.Args[0].Text)
		return false, false
	}
	b.extra(n, 1)
	return v, true
}

// flag is a keyword without value; keepalived ignores words after it.
func (b *builder) flag(n *Node) bool {
	b.noBlock(n)
	return true
}

// strArg returns the single string argument.
func (b *builder) strArg(n *Node, what string) (string, bool) {
	w, ok := b.arg(n, what)
	if !ok {
		return "", false
	}
	return w.Text, true
}

func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// addrWord parses w as an IPv4 or IPv6 address.
func (b *builder) addrWord(key string, w Word) (netip.Addr, bool) {
	a, ok := parseAddr(w.Text)
	if !ok {
		b.errorf(w.Pos, "%s %q: expected an IPv4 or IPv6 address", key, w.Text)
	}
	return a, ok
}

func (b *builder) addrArg(n *Node) (netip.Addr, bool) {
	w, ok := b.arg(n, "an IP address")
	if !ok {
		return netip.Addr{}, false
	}
	a, ok := b.addrWord(n.Key.Text, w)
	if ok {
		b.extra(n, 1)
	}
	return a, ok
}

// parsePrefix reads ADDR or ADDR/LEN; a missing length is a host prefix.
func parsePrefix(s string) (netip.Prefix, bool) {
	addr, bits, found := strings.Cut(s, "/")
	a, ok := parseAddr(addr)
	if !ok {
		return netip.Prefix{}, false
	}
	if !found {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	n, err := strconv.Atoi(bits)
	if err != nil || n < 0 || n > a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, n), true
}

// portWord parses w as a port 1..65535.
func (b *builder) portWord(key string, w Word) (uint16, bool) {
	v, ok := b.intWord(key, w, 1, 65535)
	return uint16(v), ok
}

// commandArg reads `SCRIPT [username [groupname]]`: the first field is the
// command (a quoted field may hold arguments), the next ones the user and
// group.
func (b *builder) commandArg(n *Node) *Command {
	w, ok := b.arg(n, "a script path")
	if !ok {
		return nil
	}
	fields, args, err := commandFields(n)
	if err != nil || len(args) == 0 {
		b.errorf(w.Pos, "%s %q: expected a command: %v", n.Key.Text, w.Text, err)
		return nil
	}
	c := &Command{Pos: n.Key.Pos, Raw: fields[0], Args: args}
	if len(fields) > 1 {
		c.User = fields[1]
	}
	if len(fields) > 2 {
		c.Group = fields[2]
	}
	if len(fields) > 3 {
		b.warnf(w.Pos, "%s: unexpected %q after the user and group: ignored", n.Key.Text, fields[3])
	}
	return c
}

// commandFields splits a script keyword's value into fields (command,
// user, group) and the command into its argv, using the lexer's shell-like
// rules on Raw; nodes built without Raw (tests) use their words.
func commandFields(n *Node) (fields, args []string, err error) {
	if raw := strings.TrimSpace(n.Raw); raw != "" {
		if fields, err = ScriptFields(raw); err != nil {
			return nil, nil, err
		}
		if args, err = SplitCommand(raw); err != nil {
			return nil, nil, err
		}
		return fields, args, nil
	}
	for _, w := range n.Args {
		fields = append(fields, w.Text)
	}
	if len(fields) == 0 {
		return nil, nil, nil
	}
	args, err = shellFields(fields[0])
	return fields, args, err
}

// wholeCommand reads a command whose further words are arguments, not a
// user (vrrp_script's script, MISC_CHECK's misc_path): keepalived runs
// `script /bin/check --flag value` with two arguments.
func (b *builder) wholeCommand(n *Node) *Command {
	if len(n.Args) == 0 {
		b.errorf(n.Key.Pos, "%s: missing value: expected a command", n.Key.Text)
		return nil
	}
	fields, args, err := commandFields(n)
	if err != nil || len(args) == 0 {
		b.errorf(n.Args[0].Pos, "%s %q: expected a command: %v", n.Key.Text, joinWords(n.Args), err)
		return nil
	}
	args = append(args, fields[1:]...)
	return &Command{Pos: n.Key.Pos, Raw: strings.TrimSpace(joinWords(n.Args)), Args: args}
}

func joinWords(ws []Word) string {
	var s strings.Builder
	for i, w := range ws {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(w.Text)
	}
	return s.String()
}

// words returns the texts of the key and args of an item line.
func itemWords(n *Node) []Word {
	out := make([]Word, 0, 1+len(n.Args))
	out = append(out, n.Key)
	return append(out, n.Args...)
}

// stringList reads a block of one-word items (notification_email, group).
func (b *builder) stringList(n *Node) ([]string, []Pos) {
	if !b.needListBlock(n) {
		return nil, nil
	}
	var out []string
	var pos []Pos
	for _, it := range n.Block {
		for _, w := range itemWords(it) {
			out = append(out, keep(w.Text))
			pos = append(pos, w.Pos)
		}
		if it.HasBlock {
			b.errorf(it.Key.Pos, "%s: unexpected block inside %s", it.Key.Text, n.Key.Text)
		}
	}
	return out, pos
}

var scopes = map[string]bool{"site": true, "link": true, "host": true, "nowhere": true, "global": true}

// vipValued are the virtual_ipaddress options that take a value.
var vipValued = map[string]bool{"brd": true, "broadcast": true, "dev": true, "scope": true, "label": true,
	"peer": true, "preferred_lft": true, "track_group": true}

// optionValue returns the value of option ws[*i] (the next word) and steps
// *i over it; when the line ends first, it reports the missing value under
// where (the block and item) and returns false.
func (b *builder) optionValue(where string, ws []Word, i *int) (Word, bool) {
	if *i+1 >= len(ws) {
		b.errorf(ws[*i].Pos, "%s: missing value after %q", where, ws[*i].Text)
		return Word{}, false
	}
	*i++
	return ws[*i], true
}

// vipList parses a virtual_ipaddress-like block.
func (b *builder) vipList(n *Node, static bool) []*VIP {
	if !b.needListBlock(n) {
		return nil
	}
	out := make([]*VIP, 0, len(n.Block))
	for _, it := range n.Block {
		if v := b.vip(n.Key.Text, it, static); v != nil {
			out = append(out, v)
		}
	}
	return out
}

// vrrpVIPs and staticVIPs parse the addresses of a vrrp_instance and of
// static_ipaddress (where track_group applies).
func (b *builder) vrrpVIPs(n *Node) []*VIP   { return b.vipList(n, false) }
func (b *builder) staticVIPs(n *Node) []*VIP { return b.vipList(n, true) }

func (b *builder) vip(block string, it *Node, static bool) *VIP {
	p, ok := parsePrefix(it.Key.Text)
	if !ok {
		b.errorf(it.Key.Pos, "%s: invalid address %q: expected IP[/LEN]", block, it.Key.Text)
		return nil
	}
	v := &VIP{Pos: it.Key.Pos, Prefix: p}
	args := it.Args
	for i := 0; i < len(args); i++ {
		w := args[i]
		var x Word // the option's value, for those that take one
		if vipValued[w.Text] {
			if x, ok = b.optionValue(block+" "+it.Key.Text, args, &i); !ok {
				return v
			}
		}
		switch w.Text {
		case "brd", "broadcast":
			switch x.Text {
			case "+":
				v.BrdSet = true
			case "-":
				v.BrdClear = true
			default:
				a, ok := parseAddr(x.Text)
				if !ok || a.Is4() != p.Addr().Is4() {
					b.errorf(x.Pos, "%s %s: invalid broadcast address %q: expected an address of the same family, + or -", block, it.Key.Text, x.Text)
					continue
				}
				v.Brd = a
			}
		case "dev":
			v.Dev = keep(x.Text)
		case "scope":
			if _, isNum := parseInt(x.Text); !scopes[x.Text] && !isNum {
				b.errorf(x.Pos, "%s %s: invalid scope %q: expected site|link|host|nowhere|global", block, it.Key.Text, x.Text)
				continue
			}
			v.Scope = keep(x.Text)
		case "label":
			if len(x.Text) > 15 {
				b.errorf(x.Pos, "%s %s: label %q is longer than 15 characters: address dropped", block, it.Key.Text, x.Text)
				return nil
			}
			v.Label = keep(x.Text)
		case "peer":
			pa, ok := parseAddr(x.Text)
			if !ok || pa.Is4() != p.Addr().Is4() {
				b.errorf(x.Pos, "%s %s: invalid peer address %q: expected an address of the same family (no prefix length)", block, it.Key.Text, x.Text)
				return nil
			}
			v.Peer = netip.PrefixFrom(pa, pa.BitLen())
		case "preferred_lft":
			if _, isNum := parseInt(x.Text); x.Text != "forever" && !isNum {
				b.errorf(x.Pos, "%s %s: invalid preferred_lft %q: expected seconds or forever", block, it.Key.Text, x.Text)
				continue
			}
			v.PreferredLft = keep(x.Text)
		case "track_group":
			if !static {
				b.warnf(w.Pos, "%s: track_group only applies to static addresses: ignored", block)
			}
			v.TrackGroup = keep(x.Text)
		case "home":
			v.Home = true
		case "-nodad", "nodad":
			v.NoDAD = true
		case "mngtmpaddr":
			v.MngTmpAddr = true
		case "noprefixroute":
			v.NoPrefixRt = true
		case "autojoin":
			v.AutoJoin = true
		case "no_track":
			v.NoTrack = true
		case "use_vmac":
			v.UseVMAC = true
		default:
			b.errorf(w.Pos, "%s %s: unknown option %q", block, it.Key.Text, w.Text)
		}
	}
	if v.Peer.IsValid() && (v.Brd.IsValid() || v.BrdSet || v.BrdClear) {
		b.errorf(it.Key.Pos, "%s %s: cannot specify both broadcast and peer addresses: broadcast ignored", block, it.Key.Text)
		v.Brd, v.BrdSet, v.BrdClear = netip.Addr{}, false, false
	}
	if it.HasBlock {
		b.errorf(it.Key.Pos, "%s: unexpected block after %s", block, it.Key.Text)
	}
	return v
}

var routeTypes = map[string]bool{"blackhole": true, "unreachable": true, "prohibit": true, "throw": true, "local": true, "broadcast": true, "anycast": true, "multicast": true, "unicast": true, "nat": true}

// routeList parses virtual_routes / static_routes. Options keepalived
// passes to netlink are kept as words; the common ones are typed.
func (b *builder) routeList(n *Node) []*Route {
	if !b.needListBlock(n) {
		return nil
	}
	var out []*Route
	for _, it := range n.Block {
		ws := itemWords(it)
		r := &Route{Pos: it.Key.Pos}
		for _, w := range ws {
			r.Words = append(r.Words, keep(w.Text))
		}
		ok := true
		for i := 0; i < len(ws) && ok; i++ {
			w := ws[i]
			next := func() (x Word, good bool) {
				x, good = b.optionValue(n.Key.Text, ws, &i)
				ok = ok && good
				return x, good
			}
			switch w.Text {
			case "src":
				if x, good := next(); good {
					if r.Src, good = parseAddr(x.Text); !good {
						b.errorf(x.Pos, "%s: invalid src address %q", n.Key.Text, x.Text)
						ok = false
					}
				}
			case "via", "gw", "or":
				if x, good := next(); good {
					a, good := parseAddr(strings.TrimPrefix(strings.TrimPrefix(x.Text, "inet6 "), "inet "))
					if !good {
						b.errorf(x.Pos, "%s: invalid gateway address %q", n.Key.Text, x.Text)
						ok = false
					} else if w.Text != "or" {
						r.Via = a
					}
				}
			case "dev", "oif":
				if x, good := next(); good {
					r.Dev = keep(x.Text)
				}
			case "table":
				if x, good := next(); good {
					r.Table = x.Text
				}
			case "to":
				if x, good := next(); good {
					if r.Dest, good = parsePrefix(x.Text); !good {
						b.errorf(x.Pos, "%s: invalid destination %q: expected IP[/LEN]", n.Key.Text, x.Text)
						ok = false
					}
				}
			case "no_track":
				r.NoTrack = true
			case "inet6", "append", "onlink", "lock", "fastopen_no_cookie", "ecn", "add", "nexthop":
			case "metric", "priority", "preference", "tos", "dsfield", "protocol", "proto", "scope", "mtu", "advmss",
				"rtt", "rttvar", "reordering", "window", "cwnd", "ssthresh", "realms", "rto_min", "initcwnd", "initrwnd",
				"features", "quickack", "congctl", "pref", "hoplimit", "weight", "vrf", "track_group", "encap", "expires", "ttl-propagate":
				next()
			default:
				if routeTypes[w.Text] && !r.Dest.IsValid() && r.Type == "" {
					r.Type = w.Text
					continue
				}
				if !r.Dest.IsValid() {
					d, good := parsePrefix(w.Text)
					if w.Text == "default" {
						d, good = netip.MustParsePrefix("0.0.0.0/0"), true
					}
					if !good {
						b.errorf(w.Pos, "%s: invalid destination %q: expected IP[/LEN]", n.Key.Text, w.Text)
						ok = false
						continue
					}
					r.Dest = d
					continue
				}
				b.errorf(w.Pos, "%s: unknown route option %q", n.Key.Text, w.Text)
				ok = false
			}
		}
		if ok && !r.Dest.IsValid() {
			b.errorf(it.Key.Pos, "%s: route without destination", n.Key.Text)
			ok = false
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// ruleList parses virtual_rules / static_rules.
func (b *builder) ruleList(n *Node) []*Rule {
	if !b.needListBlock(n) {
		return nil
	}
	var out []*Rule
	for _, it := range n.Block {
		ws := itemWords(it)
		r := &Rule{Pos: it.Key.Pos}
		ok := true
		for i := 0; i < len(ws); i++ {
			w := ws[i]
			r.Words = append(r.Words, keep(w.Text))
			switch w.Text {
			case "no_track":
				r.NoTrack = true
				continue
			case "inet", "inet6", "not", "l3mdev":
				continue
			}
			x, good := b.optionValue(n.Key.Text, ws, &i)
			if !good {
				ok = false
				break
			}
			r.Words = append(r.Words, keep(x.Text))
			switch w.Text {
			case "from", "to":
				p, good := parsePrefix(x.Text)
				if x.Text == "all" {
					continue
				}
				if !good {
					b.errorf(x.Pos, "%s: invalid %s address %q: expected IP[/LEN]", n.Key.Text, w.Text, x.Text)
					ok = false
				} else if w.Text == "from" {
					r.From = p
				} else {
					r.To = p
				}
			case "table", "lookup":
				r.Table = x.Text
			case "iif":
				r.IIf = x.Text
			case "oif":
				r.OIf = x.Text
			case "preference", "priority", "pref", "fwmark", "tos", "dsfield", "realms", "goto",
				"suppress_prefixlength", "suppress_ifgroup", "uidrange", "protocol", "ip_proto", "sport", "dport", "track_group":
			default:
				b.errorf(w.Pos, "%s: unknown rule option %q", n.Key.Text, w.Text)
				ok = false
				i--
			}
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// trackList parses a track_* block: NAME [weight N] [reverse|noreverse].
func (b *builder) trackList(n *Node, min, max int64) []*TrackRef {
	if !b.needListBlock(n) {
		return nil
	}
	out := make([]*TrackRef, 0, len(n.Block))
	for _, it := range n.Block {
		r := &TrackRef{Pos: it.Key.Pos, Name: keep(it.Key.Text)}
		ok := true
		for i := 0; i < len(it.Args); i++ {
			w := it.Args[i]
			switch w.Text {
			case "weight":
				if i+1 >= len(it.Args) {
					b.errorf(w.Pos, "%s %s: missing value after weight: expected an integer %d..%d", n.Key.Text, r.Name, min, max)
					ok = false
					continue
				}
				i++
				v, good := b.intWord(n.Key.Text+" "+r.Name+" weight", it.Args[i], min, max)
				if !good {
					ok = false
					continue
				}
				r.Weight, r.WeightSet = int(v), true
			case "reverse":
				r.Reverse = true
			case "noreverse", "no_reverse":
				if n.Key.Text == "track_interface" {
					// keepalived knows only `reverse` for interfaces.
					b.errorf(w.Pos, "%s %s: unknown weight option %q: expected reverse", n.Key.Text, r.Name, w.Text)
					ok = false
					continue
				}
				r.Reverse = false
			default:
				b.errorf(w.Pos, "%s %s: unexpected %q: expected weight N [reverse]", n.Key.Text, r.Name, w.Text)
				ok = false
			}
		}
		if it.HasBlock {
			b.errorf(it.Key.Pos, "%s: unexpected block after %s", n.Key.Text, r.Name)
		}
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// parseRange reads "A-B" (B a full address or the last octet/hextet),
// "A/len" or a plain address, for virtual_server_group and
// local_address_group entries.
func parseRange(s string) (first, last netip.Addr, ok bool) {
	if strings.Contains(s, "/") {
		p, ok := parsePrefix(s)
		if !ok {
			return first, last, false
		}
		p = p.Masked()
		return p.Addr(), lastOf(p), true
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, ok = parseAddr(lo)
	if !ok {
		return first, last, false
	}
	if !isRange {
		return first, first, true
	}
	if a, good := parseAddr(hi); good {
		last = a
	} else {
		// Only the last part is given: 192.0.2.10-20, 2001:db8::1-ff.
		b := first.AsSlice()
		if first.Is4() {
			v, err := strconv.ParseUint(hi, 10, 8)
			if err != nil {
				return first, last, false
			}
			b[3] = byte(v)
		} else {
			v, err := strconv.ParseUint(hi, 16, 16)
			if err != nil {
				return first, last, false
			}
			b[14], b[15] = byte(v>>8), byte(v)
		}
		last, _ = netip.AddrFromSlice(b)
	}
	if last.Is4() != first.Is4() || last.Less(first) {
		return first, last, false
	}
	return first, last, true
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// rangeCount is the number of addresses in [first, last], saturating.
func rangeCount(first, last netip.Addr) int {
	if !first.IsValid() || !last.IsValid() {
		return 0
	}
	fb, lb := first.AsSlice(), last.AsSlice()
	n := 0
	for i := range fb {
		if n > 1<<24 {
			return math.MaxInt32
		}
		n = n<<8 + int(lb[i]) - int(fb[i])
	}
	if n > math.MaxInt32-1 {
		return math.MaxInt32
	}
	return n + 1
}

func itoa(i int) string { return strconv.Itoa(i) }

func lower(s string) string { return strings.ToLower(s) }
