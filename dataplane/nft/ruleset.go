package nft

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/knftables"
)

// TableName is the name of every table vigil owns, in each family it uses.
const TableName = "vigil"

// ruleset is a rendered data plane: vigil's tables as plain values, so
// that two renders can be compared and their difference sent as one
// transaction.
type ruleset struct {
	tables map[knftables.Family]*table
}

type table struct {
	family knftables.Family
	chains map[string]*chain
	sets   map[string]*set
}

type chain struct {
	name string
	// base is set for base chains: type, hook, priority, device.
	base  *baseChain
	rules []string
}

type baseChain struct {
	typ      knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
	device   string
}

// set is an nft set or map. Dynamic sets (filled from the packet path) have
// no static elements and are never diffed element by element.
type set struct {
	name  string
	isMap bool
	// typeOf is the nft "typeof" of the set; typ, when set, its "type"
	// instead (the statistics sets, whose declaration also carries
	// "counter").
	typeOf string
	typ    string
	// counted marks a statistics set (stats.go): its elements carry
	// counters and no value, so it is changed in bulk.
	counted bool
	flags   []knftables.SetFlag
	timeout time.Duration
	size    uint64
	// elems maps an element key, as nft text, to its value (map) or "" (set).
	elems map[string]string
}

func newRuleset() *ruleset { return &ruleset{tables: map[knftables.Family]*table{}} }

func (r *ruleset) table(f knftables.Family) *table {
	t := r.tables[f]
	if t == nil {
		t = &table{family: f, chains: map[string]*chain{}, sets: map[string]*set{}}
		r.tables[f] = t
	}
	return t
}

func (t *table) chain(name string) *chain {
	c := t.chains[name]
	if c == nil {
		c = &chain{name: name}
		t.chains[name] = c
	}
	return c
}

// add appends a rule of the statements given; an empty one is left out.
func (c *chain) add(rule ...string) {
	c.rules = append(c.rules, strings.Join(slices.DeleteFunc(rule, func(s string) bool { return s == "" }), " "))
}

func (t *table) addSet(s *set) *set {
	if s.elems == nil {
		s.elems = map[string]string{}
	}
	t.sets[s.name] = s
	return s
}

func (s *set) sameDef(o *set) bool {
	return s.isMap == o.isMap && s.typeOf == o.typeOf && s.typ == o.typ && slices.Equal(s.flags, o.flags) &&
		s.timeout == o.timeout && s.size == o.size
}

func (c *chain) sameBase(o *chain) bool {
	if (c.base == nil) != (o.base == nil) {
		return false
	}
	return c.base == nil || *c.base == *o.base
}

func familyOrder(r *ruleset) []knftables.Family {
	return slices.Sorted(maps.Keys(r.tables))
}

// objects, in the order one transaction can create them: (empty) chains,
// then sets and maps, then elements (verdict maps refer to chains), then
// rules (which refer to sets, maps and chains).
func (t *table) sortedSets() []*set {
	return sortedValues(t.sets)
}

func (t *table) sortedChains() []*chain {
	return sortedValues(t.chains)
}

func sortedValues[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

func (t *table) tableObj() *knftables.Table {
	return &knftables.Table{Family: t.family, Name: TableName, Comment: knftables.PtrTo("vigil load balancer; rewritten by vigil, do not edit")}
}

func (t *table) chainObj(c *chain) *knftables.Chain {
	o := &knftables.Chain{Family: t.family, Table: TableName, Name: c.name}
	if c.base != nil {
		o.Type = knftables.PtrTo(c.base.typ)
		o.Hook = knftables.PtrTo(c.base.hook)
		o.Priority = knftables.PtrTo(c.base.priority)
		if c.base.device != "" {
			o.Device = knftables.PtrTo(c.base.device)
		}
	}
	return o
}

func (t *table) setObj(s *set) knftables.Object {
	var timeout *time.Duration
	if s.timeout > 0 {
		timeout = knftables.PtrTo(s.timeout)
	}
	var size *uint64
	if s.size > 0 {
		size = knftables.PtrTo(s.size)
	}
	if s.isMap {
		return &knftables.Map{Family: t.family, Table: TableName, Name: s.name, TypeOf: s.typeOf, Type: s.typ, Flags: s.flags, Timeout: timeout, Size: size}
	}
	return &knftables.Set{Family: t.family, Table: TableName, Name: s.name, TypeOf: s.typeOf, Type: s.typ, Flags: s.flags, Timeout: timeout, Size: size}
}

func (t *table) elemObj(s *set, key, value string) *knftables.Element {
	e := &knftables.Element{Family: t.family, Table: TableName, Key: []string{key}}
	if s.isMap {
		e.Map = s.name
		e.Value = []string{value}
	} else {
		e.Set = s.name
	}
	return e
}

// bulkElems is how many elements of a statistics set one command adds or
// deletes: nft parses and evaluates a command line far slower than an
// element within it, and 1,000 real servers are 3,000 such elements.
const bulkElems = 256

// addElems queues the addition of keys to s: one command per element, or
// per bulkElems elements for a counted set (whose elements have no value).
func (t *table) addElems(tx *knftables.Transaction, s *set, keys []string) {
	for _, e := range t.elemObjs(s, keys) {
		tx.Add(e)
	}
}

// deleteElems queues the deletion of keys from s, as addElems.
func (t *table) deleteElems(tx *knftables.Transaction, s *set, keys []string) {
	for _, e := range t.elemObjs(s, keys) {
		tx.Delete(e)
	}
}

func (t *table) elemObjs(s *set, keys []string) []*knftables.Element {
	var out []*knftables.Element
	if !s.counted || s.isMap {
		for _, k := range keys {
			out = append(out, t.elemObj(s, k, s.elems[k]))
		}
		return out
	}
	for len(keys) > 0 {
		n := min(len(keys), bulkElems)
		// knftables writes Key as the text between the braces: a list
		// of keys is one "{ k1, k2, ... }".
		out = append(out, t.elemObj(s, strings.Join(keys[:n], ", "), ""))
		keys = keys[n:]
	}
	return out
}

func (t *table) ruleObj(c *chain, rule string) *knftables.Rule {
	return &knftables.Rule{Family: t.family, Table: TableName, Chain: c.name, Rule: rule}
}

// addTable queues the creation of all of t, from nothing.
func addTable(tx *knftables.Transaction, t *table) {
	tx.Add(t.tableObj())
	// Chains before maps: nft 1.0.6 cannot add a "goto" element to a
	// verdict map that was created before the chain it names.
	for _, c := range t.sortedChains() {
		tx.Add(t.chainObj(c))
	}
	for _, s := range t.sortedSets() {
		tx.Add(t.setObj(s))
	}
	for _, s := range t.sortedSets() {
		t.addElems(tx, s, sortedKeys(s.elems))
	}
	for _, c := range t.sortedChains() {
		for _, r := range c.rules {
			tx.Add(t.ruleObj(c, r))
		}
	}
}

// rebuild queues the replacement of whatever vigil table of t's family
// exists (left over, or in an unknown state) by t: "add" then "delete"
// removes it whether or not it existed, in the same atomic transaction.
func rebuild(tx *knftables.Transaction, t *table) {
	tx.Add(&knftables.Table{Family: t.family, Name: TableName})
	tx.Delete(&knftables.Table{Family: t.family, Name: TableName})
	addTable(tx, t)
}

// full queues the whole of r in place of vigil's tables of every family
// in families (those r has, and those to remove).
func full(tx *knftables.Transaction, r *ruleset, remove []knftables.Family) {
	for _, f := range remove {
		if r.tables[f] == nil {
			tx.Add(&knftables.Table{Family: f, Name: TableName})
			tx.Delete(&knftables.Table{Family: f, Name: TableName})
		}
	}
	for _, f := range familyOrder(r) {
		rebuild(tx, r.tables[f])
	}
}

// diff queues what turns old into new; it queues nothing when they are
// equal. Within a table the order keeps every reference valid at each
// step: new sets and chains first, then element removals (stale verdict
// map entries let go of the chains they name), element additions, the
// rules of changed chains (flushed and rewritten whole: a chain holds a
// handful of rules, the bulk of the state is in maps), then the deletion
// of sets and maps nothing refers to any more, and last of chains.
func diff(tx *knftables.Transaction, old, new *ruleset) {
	for _, f := range familyOrder(old) {
		if new.tables[f] == nil {
			tx.Delete(&knftables.Table{Family: f, Name: TableName})
		}
	}
	for _, f := range familyOrder(new) {
		nt, ot := new.tables[f], old.tables[f]
		if ot == nil {
			addTable(tx, nt)
			continue
		}
		if !compatible(ot, nt) {
			// A set changed type or a base chain its hook: rare
			// (persistence_timeout edited, for one), and simplest as a
			// fresh table. Dynamic sets restart empty.
			rebuild(tx, nt)
			continue
		}
		diffTable(tx, ot, nt)
	}
}

// compatible reports whether every set and chain in both tables has the
// same definition in each.
func compatible(ot, nt *table) bool {
	for name, s := range nt.sets {
		if o := ot.sets[name]; o != nil && !o.sameDef(s) {
			return false
		}
	}
	for name, c := range nt.chains {
		if o := ot.chains[name]; o != nil && !o.sameBase(c) {
			return false
		}
	}
	return true
}

func diffTable(tx *knftables.Transaction, ot, nt *table) {
	for _, c := range nt.sortedChains() {
		if ot.chains[c.name] == nil {
			tx.Add(nt.chainObj(c))
		}
	}
	for _, s := range nt.sortedSets() {
		if ot.sets[s.name] == nil {
			tx.Add(nt.setObj(s))
		}
	}
	flushed := map[string]bool{}
	for _, s := range ot.sortedSets() {
		n := nt.sets[s.name]
		if n == nil {
			continue // deleted whole below
		}
		var stale []string
		for _, k := range sortedKeys(s.elems) {
			if v, ok := n.elems[k]; !ok || v != s.elems[k] {
				stale = append(stale, k)
			}
		}
		if len(stale) > 16 && 2*len(stale) > len(s.elems) {
			// Most of the map changes (a whole pool replaced): one
			// flush and a fresh fill beats deleting element by
			// element, which costs the kernel far more per element
			// (1,000 interval elements: 0.7 s against 0.05 s).
			flushed[s.name] = true
			tx.Flush(ot.setObj(s))
			continue
		}
		// A map element whose value changes is deleted and added again:
		// nft refuses to overwrite a value.
		ot.deleteElems(tx, s, stale)
	}
	for _, s := range nt.sortedSets() {
		o := ot.sets[s.name]
		var add []string
		for _, k := range sortedKeys(s.elems) {
			if o != nil && !flushed[s.name] {
				if v, ok := o.elems[k]; ok && v == s.elems[k] {
					continue
				}
			}
			add = append(add, k)
		}
		nt.addElems(tx, s, add)
	}
	for _, c := range nt.sortedChains() {
		o := ot.chains[c.name]
		if o != nil && slices.Equal(o.rules, c.rules) {
			continue
		}
		if o != nil && len(o.rules) > 0 {
			tx.Flush(nt.chainObj(&chain{name: c.name}))
		}
		for _, r := range c.rules {
			tx.Add(nt.ruleObj(c, r))
		}
	}
	var gone []*chain
	for _, c := range ot.sortedChains() {
		if nt.chains[c.name] == nil {
			gone = append(gone, c)
			if len(c.rules) > 0 {
				tx.Flush(ot.chainObj(&chain{name: c.name}))
			}
		}
	}
	for _, s := range ot.sortedSets() {
		if nt.sets[s.name] == nil {
			if s.isMap {
				tx.Delete(&knftables.Map{Family: ot.family, Table: TableName, Name: s.name})
			} else {
				tx.Delete(&knftables.Set{Family: ot.family, Table: TableName, Name: s.name})
			}
		}
	}
	// Chains last: a deleted verdict map lets go of them only once it is
	// gone.
	for _, c := range gone {
		tx.Delete(ot.chainObj(&chain{name: c.name}))
	}
}

// sortedKeys orders element keys numerically where they are slot numbers
// or slot ranges, so that golden files read in table order.
func sortedKeys(m map[string]string) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		na, aok := leadingInt(a)
		nb, bok := leadingInt(b)
		if aok && bok && na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return keys
}

func leadingInt(s string) (int, bool) {
	n, i := 0, 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n, i > 0 && (i == len(s) || s[i] == '-')
}

// String renders r as the nft commands that create it, for golden files
// and debugging.
func (r *ruleset) String() string {
	var b strings.Builder
	for _, f := range familyOrder(r) {
		t := r.tables[f]
		fmt.Fprintf(&b, "table %s %s\n", f, TableName)
		for _, s := range t.sortedSets() {
			kind := "set"
			if s.isMap {
				kind = "map"
			}
			if s.typ != "" {
				fmt.Fprintf(&b, "  %s %s { type %s", kind, s.name, s.typ)
			} else {
				fmt.Fprintf(&b, "  %s %s { typeof %s", kind, s.name, s.typeOf)
			}
			if len(s.flags) > 0 {
				fl := make([]string, len(s.flags))
				for i, x := range s.flags {
					fl[i] = string(x)
				}
				fmt.Fprintf(&b, "; flags %s", strings.Join(fl, ","))
			}
			if s.timeout > 0 {
				fmt.Fprintf(&b, "; timeout %s", s.timeout)
			}
			if s.size > 0 {
				fmt.Fprintf(&b, "; size %d", s.size)
			}
			b.WriteString(" }\n")
			for _, k := range sortedKeys(s.elems) {
				if s.isMap {
					fmt.Fprintf(&b, "    %s : %s\n", k, s.elems[k])
				} else {
					fmt.Fprintf(&b, "    %s\n", k)
				}
			}
		}
		for _, c := range t.sortedChains() {
			fmt.Fprintf(&b, "  chain %s", c.name)
			if c.base != nil {
				fmt.Fprintf(&b, " { type %s hook %s", c.base.typ, c.base.hook)
				if c.base.device != "" {
					fmt.Fprintf(&b, " device %q", c.base.device)
				}
				fmt.Fprintf(&b, " priority %s }", c.base.priority)
			}
			b.WriteString("\n")
			for _, r := range c.rules {
				fmt.Fprintf(&b, "    %s\n", r)
			}
		}
	}
	return b.String()
}
