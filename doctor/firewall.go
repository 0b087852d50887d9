package doctor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Firewall holds the host's packet filter as its own tools print it. A nil
// field means the tool is not installed (or printed nothing).
type Firewall struct {
	NftJSON []byte // nft -j list ruleset
	NftText []byte // nft -a list ruleset: the rules as an operator reads them, with handles
	// IptablesSave and Ip6tablesSave are iptables-save and ip6tables-save;
	// with the nft-based iptables the same rules also show in NftJSON as
	// opaque "xt" expressions, which this package cannot read.
	IptablesSave  []byte
	Ip6tablesSave []byte
}

// fwChain is a chain of either tool, normalised.
type fwChain struct {
	tool   string // "nft", "iptables" or "ip6tables"
	family string // nft family: ip, ip6, inet, netdev, arp, bridge
	table  string
	name   string
	hook   string // "" for a chain only reached by jump or goto
	prio   int
	devs   []string // netdev base chains
	policy string   // accept or drop
	rules  []fwRule
}

func (c *fwChain) key() string { return c.tool + "/" + c.family + "/" + c.table + "/" + c.name }

// where names the chain as its tool would.
func (c *fwChain) where() string {
	if c.tool == "nft" {
		return fmt.Sprintf("table %s %s chain %s", c.family, c.table, c.name)
	}
	return fmt.Sprintf("%s table %s chain %s", c.tool, c.table, c.name)
}

type fwRule struct {
	text    string
	handle  int
	conds   []cond
	verdict string // accept, drop, reject, jump, goto, return, or "" for none
	target  string // of jump and goto
}

// cond is one match of a rule, reduced to what matters for a VRRP packet.
type cond struct {
	field string // iif, oif, proto, saddr, daddr, pkttype, nfproto, ctstate, never, other
	neg   bool
	vals  []string
	fam   int // 4 or 6 when the match reads that IP header: the rule cannot match the other family
}

type ruleset struct {
	chains map[string]*fwChain
	order  []*fwChain
}

func (rs *ruleset) add(c *fwChain) {
	if rs.chains == nil {
		rs.chains = map[string]*fwChain{}
	}
	rs.chains[c.key()] = c
	rs.order = append(rs.order, c)
}

// parseNft reads `nft -j list ruleset`, quoting rules from `nft -a list
// ruleset` when it is given.
func parseNft(js, text []byte, rs *ruleset) error {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return fmt.Errorf("nft -j list ruleset: %w", err)
	}
	texts := nftRuleTexts(text)
	type chainKey struct{ family, table, name string }
	byKey := map[chainKey]*fwChain{}
	for _, o := range doc.Nftables {
		if raw, ok := o["chain"]; ok {
			var c struct {
				Family, Table, Name, Hook, Policy string
				Prio                              int
				Dev                               json.RawMessage
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				return fmt.Errorf("nft chain: %w", err)
			}
			ch := &fwChain{tool: "nft", family: c.Family, table: c.Table, name: c.Name, hook: c.Hook, prio: c.Prio, policy: c.Policy}
			if ch.policy == "" {
				ch.policy = "accept"
			}
			var one string
			var many []string
			if json.Unmarshal(c.Dev, &one) == nil && one != "" {
				ch.devs = []string{one}
			} else if json.Unmarshal(c.Dev, &many) == nil {
				ch.devs = many
			}
			if len(ch.devs) == 0 {
				ch.devs = strings.Fields(texts[c.Family+" "+c.Table+" "+c.Name])
			}
			byKey[chainKey{c.Family, c.Table, c.Name}] = ch
			rs.add(ch)
		}
		if raw, ok := o["rule"]; ok {
			var r struct {
				Family, Table, Chain string
				Handle               int
				Expr                 []map[string]json.RawMessage
			}
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("nft rule: %w", err)
			}
			ch := byKey[chainKey{r.Family, r.Table, r.Chain}]
			if ch == nil {
				continue
			}
			fr := fwRule{handle: r.Handle}
			fr.text = texts[fmt.Sprintf("%s %s %s %d", r.Family, r.Table, r.Chain, r.Handle)]
			if fr.text == "" {
				fr.text = fmt.Sprintf("rule handle %d", r.Handle)
			}
			for _, e := range r.Expr {
				nftExpr(e, &fr)
			}
			ch.rules = append(ch.rules, fr)
		}
	}
	return nil
}

// nftRuleTexts maps "family table chain handle" to the rule's line in `nft
// -a list ruleset`, without its handle comment, and "family table chain" to
// the device(s) of a netdev chain, which nft -j does not show.
func nftRuleTexts(text []byte) map[string]string {
	out := map[string]string{}
	var table, chain string
	var stack []string // kinds of the open blocks
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		body, comment, _ := strings.Cut(line, " # handle ")
		body = strings.TrimSpace(body)
		if strings.HasSuffix(body, "{") {
			f := strings.Fields(body)
			kind := f[0]
			switch {
			case kind == "table" && len(f) >= 4:
				table = f[1] + " " + f[2]
			case kind == "chain" && len(f) >= 3:
				chain = f[1]
			}
			stack = append(stack, kind)
			continue
		}
		if body == "}" {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if len(stack) == 2 && stack[0] == "table" && stack[1] == "chain" && strings.HasPrefix(body, "type ") {
			if _, dev, ok := strings.Cut(body, " device "); ok {
				out[table+" "+chain] = strings.Trim(strings.Fields(dev)[0], `"`)
			} else if _, devs, ok := strings.Cut(body, " devices = { "); ok {
				devs, _, _ = strings.Cut(devs, "}")
				out[table+" "+chain] = strings.Join(strings.Fields(strings.ReplaceAll(strings.ReplaceAll(devs, ",", " "), `"`, "")), " ")
			}
			continue
		}
		if len(stack) == 2 && stack[0] == "table" && stack[1] == "chain" && comment != "" {
			if h, err := strconv.Atoi(strings.TrimSpace(comment)); err == nil {
				out[fmt.Sprintf("%s %s %d", table, chain, h)] = body
			}
		}
	}
	return out
}

// nftExpr adds one statement of a rule to r.
func nftExpr(e map[string]json.RawMessage, r *fwRule) {
	for k, v := range e {
		switch k {
		case "match":
			var m struct {
				Op    string
				Left  map[string]json.RawMessage
				Right json.RawMessage
			}
			if json.Unmarshal(v, &m) != nil {
				r.conds = append(r.conds, cond{field: "other"})
				continue
			}
			c := nftLeft(m.Left)
			c.vals = nftValues(m.Right)
			c.neg = m.Op == "!="
			if m.Op != "==" && m.Op != "!=" && m.Op != "in" {
				c.field = "other"
			}
			r.conds = append(r.conds, c)
		case "accept", "drop", "return":
			r.verdict = k
		case "reject":
			r.verdict = "reject"
		case "jump", "goto":
			var t struct{ Target string }
			_ = json.Unmarshal(v, &t)
			r.verdict, r.target = k, t.Target
		case "limit", "quota", "xt", "lookup":
			// These decide per packet (a rate, a set lookup, an iptables
			// match nft cannot show): the rule may or may not apply.
			r.conds = append(r.conds, cond{field: "other"})
		}
	}
}

func nftLeft(l map[string]json.RawMessage) cond {
	if raw, ok := l["meta"]; ok {
		var m struct{ Key string }
		_ = json.Unmarshal(raw, &m)
		switch m.Key {
		case "iifname", "iif":
			return cond{field: "iif"}
		case "oifname", "oif":
			return cond{field: "oif"}
		case "l4proto":
			return cond{field: "proto"}
		case "nfproto", "protocol":
			return cond{field: "nfproto"}
		case "pkttype":
			return cond{field: "pkttype"}
		}
		return cond{field: "other"}
	}
	if raw, ok := l["payload"]; ok {
		var p struct{ Protocol, Field string }
		_ = json.Unmarshal(raw, &p)
		fam := map[string]int{"ip": 4, "ip6": 6}[p.Protocol]
		switch {
		case fam == 4 && p.Field == "protocol", fam == 6 && p.Field == "nexthdr":
			return cond{field: "proto", fam: fam}
		case fam != 0 && (p.Field == "saddr" || p.Field == "daddr"):
			return cond{field: p.Field, fam: fam}
		case fam != 0:
			return cond{field: "other", fam: fam}
		case slices.Contains([]string{"tcp", "udp", "udplite", "sctp", "dccp", "icmp", "icmpv6", "igmp", "th", "esp", "ah", "comp", "arp"}, p.Protocol):
			// A header VRRP does not have: the match cannot hold.
			return cond{field: "never"}
		}
		return cond{field: "other"}
	}
	if raw, ok := l["ct"]; ok {
		var c struct{ Key string }
		_ = json.Unmarshal(raw, &c)
		if c.Key == "state" {
			return cond{field: "ctstate"}
		}
	}
	return cond{field: "other"}
}

func nftValues(raw json.RawMessage) []string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return []string{n.String()}
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		var out []string
		for _, x := range list {
			out = append(out, nftValues(x)...)
		}
		return out
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		if set, ok := obj["set"]; ok {
			return nftValues(set)
		}
		if p, ok := obj["prefix"]; ok {
			var pf struct {
				Addr string
				Len  int
			}
			_ = json.Unmarshal(p, &pf)
			return []string{fmt.Sprintf("%s/%d", pf.Addr, pf.Len)}
		}
		if r, ok := obj["range"]; ok {
			var ends []json.RawMessage
			_ = json.Unmarshal(r, &ends)
			if len(ends) == 2 {
				a, b := nftValues(ends[0]), nftValues(ends[1])
				if len(a) == 1 && len(b) == 1 {
					return []string{a[0] + "-" + b[0]}
				}
			}
		}
		if e, ok := obj["elem"]; ok {
			var el struct{ Val json.RawMessage }
			_ = json.Unmarshal(e, &el)
			return nftValues(el.Val)
		}
	}
	return []string{"?"}
}

// iptablesHooks maps built-in chains to hooks, and tables to nft-equivalent
// priorities so that both tools' chains are walked in the kernel's order.
var iptablesHooks = map[string]string{"PREROUTING": "prerouting", "INPUT": "input", "OUTPUT": "output", "POSTROUTING": "postrouting", "FORWARD": "forward"}

func iptablesPrio(table string) int {
	switch table {
	case "raw":
		return -300
	case "mangle":
		return -150
	case "nat":
		return -100
	case "security":
		return 50
	}
	return 0
}

// parseIptablesSave reads iptables-save (tool "iptables", family ip) or
// ip6tables-save (tool "ip6tables", family ip6).
func parseIptablesSave(data []byte, tool string, rs *ruleset) error {
	family := "ip"
	if tool == "ip6tables" {
		family = "ip6"
	}
	var table string
	chains := map[string]*fwChain{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || l == "COMMIT":
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			f := strings.Fields(l[1:])
			if len(f) < 2 {
				return fmt.Errorf("%s-save line %d: %q: expected \":CHAIN POLICY\"", tool, line, l)
			}
			c := &fwChain{tool: tool, family: family, table: table, name: f[0], prio: iptablesPrio(table), policy: "accept"}
			if h, ok := iptablesHooks[f[0]]; ok && table != "nat" {
				c.hook = h
				if f[1] == "DROP" {
					c.policy = "drop"
				}
			}
			chains[f[0]] = c
			rs.add(c)
		case strings.HasPrefix(l, "-A "):
			words := shellWords(l)
			if len(words) < 2 {
				continue
			}
			c := chains[words[1]]
			if c == nil {
				return fmt.Errorf("%s-save line %d: rule for undeclared chain %s", tool, line, words[1])
			}
			c.rules = append(c.rules, iptablesRule(words[2:], l, chains))
		}
	}
	return sc.Err()
}

func iptablesRule(w []string, text string, chains map[string]*fwChain) fwRule {
	r := fwRule{text: text}
	neg := false
	for i := 0; i < len(w); i++ {
		a := w[i]
		arg := func() string {
			if i+1 < len(w) {
				i++
				return w[i]
			}
			return ""
		}
		switch a {
		case "!":
			neg = true
			continue
		case "-i", "--in-interface":
			r.conds = append(r.conds, cond{field: "iif", neg: neg, vals: []string{ipt2nftIface(arg())}})
		case "-o", "--out-interface":
			r.conds = append(r.conds, cond{field: "oif", neg: neg, vals: []string{ipt2nftIface(arg())}})
		case "-p", "--protocol":
			p := arg()
			if p == "all" || p == "0" {
				break
			}
			r.conds = append(r.conds, cond{field: "proto", neg: neg, vals: []string{p}})
		case "-s", "--source":
			r.conds = append(r.conds, cond{field: "saddr", neg: neg, vals: strings.Split(arg(), ",")})
		case "-d", "--destination":
			r.conds = append(r.conds, cond{field: "daddr", neg: neg, vals: strings.Split(arg(), ",")})
		case "--pkt-type":
			r.conds = append(r.conds, cond{field: "pkttype", neg: neg, vals: []string{arg()}})
		case "--ctstate", "--state":
			r.conds = append(r.conds, cond{field: "ctstate", neg: neg, vals: strings.Split(strings.ToLower(arg()), ",")})
		case "-m", "--match":
			m := arg()
			if m == "comment" {
				i += 2 // --comment TEXT
			}
		case "-j", "--jump", "-g", "--goto":
			t := arg()
			switch t {
			case "ACCEPT":
				r.verdict = "accept"
			case "DROP":
				r.verdict = "drop"
			case "REJECT":
				r.verdict = "reject"
			case "RETURN":
				r.verdict = "return"
			default:
				if chains[t] != nil {
					r.verdict, r.target = "jump", t
					if a == "-g" || a == "--goto" {
						r.verdict = "goto"
					}
				}
				// Other targets (LOG, MARK, CT, ...) do not decide.
			}
		default:
			if strings.HasPrefix(a, "-") {
				// A match option this package does not read: the rule may
				// or may not apply. Skip its value, if any.
				r.conds = append(r.conds, cond{field: "other"})
				if i+1 < len(w) && !strings.HasPrefix(w[i+1], "-") && w[i+1] != "!" {
					i++
				}
			}
		}
		neg = false
	}
	return r
}

// ipt2nftIface turns iptables' trailing "+" wildcard into nft's "*".
func ipt2nftIface(s string) string {
	if strings.HasSuffix(s, "+") {
		return strings.TrimSuffix(s, "+") + "*"
	}
	return s
}

// shellWords splits an iptables-save line, honouring double quotes.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	inQ, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQ && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			inQ, have = !inQ, true
		case (c == ' ' || c == '\t') && !inQ:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// parseFirewall builds the ruleset of every dump present; a dump that does
// not parse is reported and skipped.
func parseFirewall(fw Firewall) (*ruleset, []error) {
	rs := &ruleset{chains: map[string]*fwChain{}}
	var errs []error
	if len(fw.NftJSON) > 0 {
		if err := parseNft(fw.NftJSON, fw.NftText, rs); err != nil {
			errs = append(errs, err)
		}
	}
	if len(fw.IptablesSave) > 0 {
		if err := parseIptablesSave(fw.IptablesSave, "iptables", rs); err != nil {
			errs = append(errs, err)
		}
	}
	if len(fw.Ip6tablesSave) > 0 {
		if err := parseIptablesSave(fw.Ip6tablesSave, "ip6tables", rs); err != nil {
			errs = append(errs, err)
		}
	}
	return rs, errs
}

// vrrpPacket is the packet a firewall is asked about.
type vrrpPacket struct {
	fam       int  // 4 or 6
	out       bool // sent by this host (output, postrouting) rather than received
	iface     string
	src, dst  netip.Addr // src may be invalid: any sender
	multicast bool
}

type tri int

const (
	no tri = iota
	maybe
	yes
)

func (c cond) eval(p vrrpPacket) tri {
	if c.fam != 0 && c.fam != p.fam {
		// nft adds a dependency on the header family: a rule reading the
		// IPv4 header never matches IPv6, negated or not.
		return no
	}
	r := c.match(p)
	if c.neg && r != maybe {
		if r == yes {
			return no
		}
		return yes
	}
	return r
}

func (c cond) match(p vrrpPacket) tri {
	oneOf := func(f func(string) bool) tri {
		for _, v := range c.vals {
			if f(v) {
				return yes
			}
		}
		return no
	}
	switch c.field {
	case "never":
		return no
	case "iif", "oif":
		if (c.field == "iif") == p.out {
			// No input interface on output, no output interface on input:
			// the kernel compares with the empty name.
			return oneOf(func(v string) bool { return v == "" })
		}
		return oneOf(func(v string) bool { return ifaceMatch(v, p.iface) })
	case "proto":
		return oneOf(func(v string) bool { return v == "vrrp" || v == "112" })
	case "nfproto":
		want := map[int][]string{4: {"ipv4", "ip", "2", "0x0800"}, 6: {"ipv6", "ip6", "10", "0x86dd"}}[p.fam]
		return oneOf(func(v string) bool { return slices.Contains(want, v) })
	case "saddr", "daddr":
		a := p.src
		if c.field == "daddr" {
			a = p.dst
		}
		if !a.IsValid() {
			return maybe
		}
		return oneOf(func(v string) bool { return addrIn(v, a) })
	case "pkttype":
		want := "host"
		if p.multicast {
			want = "multicast"
		}
		return oneOf(func(v string) bool { return v == want })
	case "ctstate":
		if !p.multicast {
			// Two unicast peers' adverts look like a conversation to
			// conntrack: new or established depending on timing.
			return maybe
		}
		// A multicast advert never gets a reply: conntrack sees it as new.
		return oneOf(func(v string) bool { return v == "new" })
	}
	return maybe
}

func ifaceMatch(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok && !strings.HasSuffix(p, `\`) {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}

func addrIn(v string, a netip.Addr) bool {
	if lo, hi, ok := strings.Cut(v, "-"); ok {
		l, e1 := netip.ParseAddr(lo)
		h, e2 := netip.ParseAddr(hi)
		return e1 == nil && e2 == nil && l.Compare(a) <= 0 && a.Compare(h) <= 0
	}
	if strings.Contains(v, "/") {
		if p, err := netip.ParsePrefix(v); err == nil {
			return p.Masked().Contains(a)
		}
		// iptables prints a netmask form, 224.0.0.18/255.255.255.255.
		if addr, mask, ok := strings.Cut(v, "/"); ok {
			ad, e1 := netip.ParseAddr(addr)
			m, e2 := netip.ParseAddr(mask)
			if e1 == nil && e2 == nil {
				bits := 0
				for _, b := range m.AsSlice() {
					for ; b&0x80 != 0; b <<= 1 {
						bits++
					}
				}
				pf, err := ad.Prefix(bits)
				return err == nil && pf.Contains(a)
			}
		}
		return false
	}
	b, err := netip.ParseAddr(v)
	return err == nil && b == a
}

// vrrpSpecific reports whether a rule names VRRP itself (its protocol or
// group), as opposed to catching it in a general rule.
func (r *fwRule) vrrpSpecific(p vrrpPacket) bool {
	for _, c := range r.conds {
		if c.neg {
			continue
		}
		if c.field == "proto" && c.match(p) == yes {
			return true
		}
		if c.field == "daddr" && p.multicast && c.match(p) == yes {
			return true
		}
	}
	return false
}

// block is a firewall verdict against a VRRP packet.
type block struct {
	chain  *fwChain
	rule   *fwRule // nil: the chain's policy
	sure   bool    // false: it depends on something the dump does not show
	parent *fwChain
}

// quote is the evidence line for b.
func (b block) quote() string {
	if b.rule == nil {
		return fmt.Sprintf("%s: %s has policy drop and no earlier rule accepts VRRP", b.chain.tool, b.chain.where())
	}
	return fmt.Sprintf("%s: %s: %s", b.chain.tool, b.chain.where(), b.rule.text)
}

// hooks returns the base chains a packet traverses, in kernel order.
func (rs *ruleset) hooks(p vrrpPacket) []*fwChain {
	var hooks []string
	if p.out {
		hooks = []string{"output", "postrouting"}
	} else {
		hooks = []string{"ingress", "prerouting", "input"}
	}
	fams := []string{"inet", "ip"}
	if p.fam == 6 {
		fams = []string{"inet", "ip6"}
	}
	var out []*fwChain
	for _, h := range hooks {
		var at []*fwChain
		for _, c := range rs.order {
			if c.hook != h {
				continue
			}
			switch {
			case h == "ingress" && (c.family == "netdev" || c.family == "inet"):
				// Without the text dump the device is unknown: the chain
				// is walked, its verdicts unsure.
				if len(c.devs) > 0 && !slices.ContainsFunc(c.devs, func(d string) bool { return ifaceMatch(d, p.iface) }) {
					continue
				}
			case !slices.Contains(fams, c.family):
				continue
			}
			at = append(at, c)
		}
		slices.SortStableFunc(at, func(a, b *fwChain) int { return a.prio - b.prio })
		out = append(out, at...)
	}
	return out
}

// blocks returns the verdicts that drop p: definite ones (sure) and, for
// rules that name VRRP but depend on something unknown, possible ones.
func (rs *ruleset) blocks(p vrrpPacket) []block {
	var out []block
	for _, c := range rs.hooks(p) {
		res, _ := rs.walk(c, p, 0, c.hook != "ingress" || len(c.devs) > 0)
		out = append(out, res...)
	}
	return out
}

// walk evaluates chain c for p. It returns the drops found and whether the
// chain certainly ended with a verdict (accept or drop) for p. sure is
// false once an earlier rule may have accepted the packet.
func (rs *ruleset) walk(c *fwChain, p vrrpPacket, depth int, sure bool) ([]block, bool) {
	if depth > 16 {
		return nil, false
	}
	var out []block
	for i := range c.rules {
		r := &c.rules[i]
		m := yes
		for _, cd := range r.conds {
			if e := cd.eval(p); e < m {
				m = e
			}
		}
		if m == no {
			continue
		}
		switch r.verdict {
		case "drop", "reject":
			if m == yes && sure {
				return append(out, block{chain: c, rule: r, sure: true}), true
			}
			// Whether it applies depends on something unknown: report it
			// only when it is aimed at VRRP, so that a general blocklist
			// does not raise an alarm.
			if r.vrrpSpecific(p) {
				out = append(out, block{chain: c, rule: r, sure: false})
			}
			if m == yes {
				return out, true
			}
		case "accept":
			if m == yes {
				return out, true
			}
			sure = false
		case "return":
			if m == yes {
				return out, false
			}
			sure = false
		case "jump", "goto":
			t := rs.chains[c.tool+"/"+c.family+"/"+c.table+"/"+r.target]
			if t == nil {
				continue
			}
			res, ended := rs.walk(t, p, depth+1, sure && m == yes)
			for j := range res {
				res[j].parent = c
			}
			out = append(out, res...)
			if m == yes && (ended || r.verdict == "goto") {
				return out, ended
			}
			if m != yes {
				sure = false
			}
		}
	}
	if c.hook != "" && c.policy == "drop" {
		return append(out, block{chain: c, sure: sure}), true
	}
	return out, false
}

// droppingRules returns the host's firewall rules, as "tool: rule", that
// drop or reject and that mentions says are about the protocol (it gets the
// rule and the rule in lower case): a textual look, not the rule analysis
// above (which is VRRP's), good enough to point at the line for BFD and BGP.
func droppingRules(in *Input, mentions func(rule, lower string) bool) []string {
	if in.Facts == nil {
		return nil
	}
	fw, err := in.Facts.Firewall()
	if err != nil {
		return nil
	}
	var out []string
	for _, dump := range []struct {
		tool string
		b    []byte
	}{{"nft", fw.NftText}, {"iptables", fw.IptablesSave}, {"ip6tables", fw.Ip6tablesSave}} {
		sc := bufio.NewScanner(bytes.NewReader(dump.b))
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			lo := strings.ToLower(l)
			if mentions(l, lo) && (strings.Contains(lo, "drop") || strings.Contains(lo, "reject")) {
				out = append(out, dump.tool+": "+l)
			}
		}
	}
	return out
}
