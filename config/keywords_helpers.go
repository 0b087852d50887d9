package config

import (
	"net/netip"
	"strings"
	"time"
)

// The row makers below keep the tables declarative: a keyword, its
// status, a line of doc, and where the value goes. A value is stored, and
// its fieldSet bit set, only when it parsed.

type hasFields interface{ fields() *fieldSet }

func (i *Instance) fields() *fieldSet      { return &i.has }
func (v *VirtualServer) fields() *fieldSet { return &v.has }
func (r *RealServer) fields() *fieldSet    { return &r.has }
func (c *Checker) fields() *fieldSet       { return &c.has }

// orDefault sets *field to def unless the block set it itself (bit in
// has): the outer block's or the global value fills what it left out.
func orDefault[T any](has, bit fieldSet, field *T, def T) {
	if has&bit == 0 {
		*field = def
	}
}

func markSet(v any, bit fieldSet) {
	if bit == 0 {
		return
	}
	if h, ok := v.(hasFields); ok {
		*h.fields() |= bit
	}
}

func durKW[T any](name, doc string, min, max time.Duration, field func(*T) *time.Duration, bit fieldSet) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if d, ok := b.durArg(n, min, max); ok {
			*field(v) = d
			markSet(v, bit)
		}
	}}
}

func intKW[T any](name, doc string, min, max int64, field func(*T) *int, bit fieldSet) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if i, ok := b.intArg(n, min, max); ok {
			*field(v) = i
			markSet(v, bit)
		}
	}}
}

func strKW[T any](name, doc, what string, field func(*T) *string, bit fieldSet) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if s, ok := b.strArg(n, what); ok {
			*field(v) = keep(s)
			markSet(v, bit)
		}
	}}
}

// keep copies a word the loaded Config keeps. Words are slices of the
// file's text, and one kept word keeps the whole text alive: 168 bytes per
// instance of bench/footprint.sh's 1,000-instance file (issue #7), for
// the block names and string values (interface, ...) that outlive the
// load.
func keep(s string) string { return strings.Clone(s) }

// flagKW is a keyword without a value.
func flagKW[T any](name, doc string, field func(*T) *bool, bit fieldSet) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		*field(v) = b.flag(n)
		markSet(v, bit)
	}}
}

// boolKW is a keyword with an optional <BOOL> (bare means on).
func boolKW[T any](name, doc string, field func(*T) *bool, bit fieldSet) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if x, ok := b.boolArg(n); ok {
			*field(v) = x
			markSet(v, bit)
		}
	}}
}

func optBoolKW[T any](name, doc string, field func(*T) *OptBool) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if x, ok := b.boolArg(n); ok {
			*field(v) = OptBool{Set: true, Value: x}
		}
	}}
}

func addrKW[T any](name, doc string, field func(*T) *netip.Addr, bit fieldSet) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if a, ok := b.addrArg(n); ok {
			*field(v) = a
			markSet(v, bit)
		}
	}}
}

// listKW is a block keyword whose lines parse into items added to a list
// (virtual_ipaddress, static_routes...).
func listKW[T, I any](name, doc string, parse func(*builder, *Node) []I, field func(*T) *[]I) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		*field(v) = append(*field(v), parse(b, n)...)
	}}
}

// cmdKW is a `SCRIPT [username [groupname]]` keyword.
func cmdKW[T any](name, doc string, field func(*T) **Command) keyword[T] {
	return keyword[T]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *T) {
		b.noBlock(n)
		if c := b.commandArg(n); c != nil {
			*field(v) = c
		}
	}}
}

// ignoredWith is an ignored keyword whose value is still checked:
// keepalived rejects bad values even for features vigil leaves out, and
// the verdicts must agree.
func ignoredWith[T any](name, doc string, check func(b *builder, n *Node)) keyword[T] {
	return keyword[T]{Name: name, Status: Ignored, Doc: doc, Parse: func(b *builder, n *Node, _ *T) { check(b, n) }}
}

// choiceArg reads n's value as one of the words of choices (in any case
// when fold is set: keepalived upper-cases some keywords' values and not
// others), reporting any other word as `KEY "WORD": expected EXPECTED`.
func choiceArg[V any](b *builder, n *Node, expected string, fold bool, choices map[string]V) (V, bool) {
	var v V
	w, ok := b.arg(n, expected)
	if !ok {
		return v, false
	}
	key := w.Text
	if fold {
		key = strings.ToUpper(key)
	}
	if v, ok = choices[key]; !ok {
		b.errorf(w.Pos, "%s %q: expected %s", n.Key.Text, w.Text, expected)
	}
	return v, ok
}

func checkInt(min, max int64) func(*builder, *Node) {
	return func(b *builder, n *Node) {
		b.noBlock(n)
		b.intArg(n, min, max)
	}
}

// checkInts checks a list of integers (CPU numbers).
func checkInts(min, max int64) func(*builder, *Node) {
	return func(b *builder, n *Node) {
		b.noBlock(n)
		if len(n.Args) == 0 {
			b.errorf(n.Key.Pos, "%s: missing value: expected integers %d..%d", n.Key.Text, min, max)
		}
		for _, w := range n.Args {
			b.intWord(n.Key.Text, w, min, max)
		}
	}
}

func checkBool(b *builder, n *Node) {
	b.noBlock(n)
	b.boolArg(n)
}

func checkFlag(b *builder, n *Node) { b.noBlock(n) }

func checkAny(b *builder, n *Node) {}

func checkArg(what string) func(*builder, *Node) {
	return func(b *builder, n *Node) {
		b.noBlock(n)
		b.arg(n, what)
	}
}

func checkDur(min, max time.Duration) func(*builder, *Node) {
	return func(b *builder, n *Node) {
		b.noBlock(n)
		b.durArg(n, min, max)
	}
}

// posRecorder remembers where some keywords were written, so that
// findings of validation point at the line that caused them rather than
// at the block.
type posRecorder interface{ record(name string, pos Pos) }

type keyPos struct {
	name string
	pos  Pos
}

// keyPositions is a short list (a handful of entries per block), kept
// inline so that recording costs one allocation per block. A block holds
// it by pointer only while Build validates: it is 320 bytes, a third of an
// Instance, and nothing reads it once the diagnostics are written, so Build
// drops it (dropKeyPositions) rather than keep it for the daemon's life
// (issue #7: 0.3 MB of live heap with 1,000 instances).
type keyPositions struct {
	n     int
	fixed [6]keyPos
	more  []keyPos
}

func (k *keyPositions) add(name string, pos Pos) {
	if k.n < len(k.fixed) {
		k.fixed[k.n] = keyPos{name, pos}
		k.n++
		return
	}
	k.more = append(k.more, keyPos{name, pos})
}

// at returns where the last of names was written, or def.
func (k *keyPositions) at(def Pos, names ...string) Pos {
	if k == nil {
		return def
	}
	for j := len(k.more) - 1; j >= 0; j-- {
		for _, n := range names {
			if k.more[j].name == n {
				return k.more[j].pos
			}
		}
	}
	for j := k.n - 1; j >= 0; j-- {
		for _, n := range names {
			if k.fixed[j].name == n {
				return k.fixed[j].pos
			}
		}
	}
	return def
}

func (i *Instance) record(name string, pos Pos) {
	switch name {
	case "advert_int", "version", "state", "priority", "nopreempt", "preempt_delay", "accept", "no_accept",
		"unicast_src_ip", "mcast_src_ip", "mcast_dst_ip", "unicast_peer", "unicast_ttl", "use_vmac", "vmac_xmit_base",
		"use_ipvlan", "interface", "virtual_router_id", "virtual_ipaddress":
		if i.kw == nil {
			i.kw = new(keyPositions)
		}
		i.kw.add(name, pos)
	}
}

func (vs *VirtualServer) record(name string, pos Pos) {
	switch name {
	case "protocol", "ops", "sh-port", "sh-fallback", "mh-port", "mh-fallback", "quorum", "hysteresis",
		"persistence_granularity", "laddr_group_name", "lb_kind", "lvs_method", "lb_algo", "lvs_sched":
		if vs.kw == nil {
			vs.kw = new(keyPositions)
		}
		vs.kw.add(name, pos)
	}
}

// dropKeyPositions lets go of the keyword positions once validation has
// used them (see keyPositions).
func (c *Config) dropKeyPositions() {
	for _, i := range c.Instances {
		i.kw = nil
	}
	for _, vs := range c.VirtualServers {
		vs.kw = nil
	}
}
