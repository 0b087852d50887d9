package config

import (
	"fmt"
	"sort"
	"strings"

	"vigil/internal/enum"
)

// Status is what vigil does with a keepalived keyword.
type Status int

const (
	// Supported keywords are parsed into the model and acted on.
	Supported Status = iota
	// Ignored keywords are parsed (so the file stays valid) and warned
	// about: the feature is not implemented and leaving it out is safe.
	Ignored
	// Rejected keywords are errors: running without the feature would
	// silently change behaviour in a dangerous way.
	Rejected
)

var statusNames = []string{Supported: "supported", Ignored: "warned and ignored", Rejected: "rejected"}

func (s Status) String() string { return enum.Name(statusNames, s, "status") }

// keyword is one row of a block's keyword table.
type keyword[T any] struct {
	Name   string
	Status Status
	// Doc says what the keyword does, in a line, for docs/configuration.md.
	Doc string
	// Parse reads the node into the block's value; nil for keywords that
	// are only warned about or rejected.
	Parse func(b *builder, n *Node, v *T)
}

// table is the keyword table of one kind of block.
type table[T any] struct {
	block string // how the block is written, for docs
	intro string
	rows  []keyword[T]
	index map[string]int
}

// docEntry is a keyword as the documentation lists it.
type docEntry struct {
	Name   string
	Status Status
	Doc    string
}

// docTable is the type-independent view of a table, for the generator.
type docTable interface {
	Block() string
	Intro() string
	Entries() []docEntry
}

// docTables lists every table in documentation order; tables register
// themselves with newTable.
var docTables []docTable

func newTable[T any](block, intro string, rows []keyword[T]) *table[T] {
	t := &table[T]{block: block, intro: intro, rows: rows, index: make(map[string]int, len(rows))}
	for i, r := range rows {
		if _, dup := t.index[r.Name]; dup {
			panic("config: duplicate keyword " + r.Name + " in " + block)
		}
		t.index[r.Name] = i
	}
	docTables = append(docTables, t)
	return t
}

func (t *table[T]) Block() string { return t.block }
func (t *table[T]) Intro() string { return t.intro }

func (t *table[T]) Entries() []docEntry {
	out := make([]docEntry, len(t.rows))
	for i, r := range t.rows {
		out[i] = docEntry{Name: r.Name, Status: r.Status, Doc: r.Doc}
	}
	return out
}

// lookup returns the row for a keyword.
func (t *table[T]) lookup(name string) (*keyword[T], bool) {
	i, ok := t.index[name]
	if !ok {
		return nil, false
	}
	return &t.rows[i], true
}

// run dispatches every node of a block through the table.
func (t *table[T]) run(b *builder, nodes []*Node, v *T) {
	for _, n := range nodes {
		t.one(b, n, v)
	}
}

func (t *table[T]) one(b *builder, n *Node, v *T) {
	kw, ok := t.lookup(n.Key.Text)
	if !ok {
		b.errorf(n.Key.Pos, "unknown keyword %q in %s", n.Key.Text, t.where())
		return
	}
	if r, ok := any(v).(posRecorder); ok {
		r.record(n.Key.Text, n.Key.Pos)
	}
	switch {
	case kw.Status == Rejected && kw.Parse == nil:
		b.errorf(n.Key.Pos, "%s is rejected: %s", n.Key.Text, kw.Doc)
	case kw.Status == Ignored && kw.Parse == nil:
		b.warnf(n.Key.Pos, "%s is not implemented by vigil: ignored", n.Key.Text)
	default:
		if kw.Status == Ignored {
			b.warnf(n.Key.Pos, "%s is not implemented by vigil: ignored", n.Key.Text)
		}
		kw.Parse(b, n, v)
	}
}

func (t *table[T]) where() string {
	if t.block == "top level" {
		return "the top level"
	}
	name, _, _ := strings.Cut(t.block, " ")
	return name
}

// ignored is a row for a keyword vigil parses and ignores with a warning.
func ignored[T any](name, doc string) keyword[T] {
	return keyword[T]{Name: name, Status: Ignored, Doc: doc}
}

// rejected is a row for a keyword that makes the config invalid for vigil.
func rejected[T any](name, doc string) keyword[T] {
	return keyword[T]{Name: name, Status: Rejected, Doc: doc}
}

// docOrder is the order of the sections of the generated documentation,
// by the first word of each table's block.
var docOrder = []string{"top", "global_defs", "vrrp_script", "track_file", "vrrp_track_process", "vrrp_sync_group",
	"vrrp_instance", "authentication", "virtual_server", "real_server", "CHECKER", "HTTP_GET", "url",
	"MISC_CHECK", "DNS_CHECK", "UDP_CHECK", "SMTP_CHECK", "FILE_CHECK", "SSL", "bfd_instance", "bgp_instance", "neighbor", "garp_group"}

func orderedTables() []docTable {
	rank := map[string]int{}
	for i, n := range docOrder {
		rank[n] = i + 1
	}
	key := func(t docTable) int {
		first, _, _ := strings.Cut(t.Block(), " ")
		if t.Block() == "top level" {
			first = "top"
		}
		if r, ok := rank[first]; ok {
			return r
		}
		return len(docOrder) + 1
	}
	out := append([]docTable(nil), docTables...)
	sort.SliceStable(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}

// GenerateDocs renders docs/configuration.md from the keyword tables.
func GenerateDocs() string {
	var s strings.Builder
	s.WriteString("<!-- Generated from config/keywords*.go by `go test ./config -run TestDocs -update`. Do not edit. -->\n\n")
	s.WriteString("# keepalived.conf keywords in vigil\n\n")
	s.WriteString("vigil reads keepalived.conf as it is. Every keyword documented by keepalived.conf(5) (2.2.7) is\n")
	s.WriteString("listed here with what vigil does with it:\n\n")
	s.WriteString("- **supported**: parsed into the typed model and acted on;\n")
	s.WriteString("- **warned and ignored**: accepted so the file stays valid, with a warning that the feature is not implemented;\n")
	s.WriteString("- **rejected**: an error, because running without the feature would silently change behaviour.\n\n")
	s.WriteString("Unknown keywords are errors, as in keepalived. `vigil check` fails exactly when `keepalived -t` does,\n")
	s.WriteString("except for the rejected values (`auth_type AH`, `lb_kind TUN`), which keepalived accepts, and the DPVS\n")
	s.WriteString("extensions (`lb_kind FNAT`, `laddr_group_name`, `local_address_group`) and vigil's own `DR_PATH_CHECK`, which keepalived does not know,\n")
	s.WriteString("and a cycle of plain `include`s, which keepalived follows until it runs out of file descriptors and then\n")
	s.WriteString("accepts, while vigil reports the cycle as an error naming the chain. The e2e differential test runs a corpus\n")
	s.WriteString("of 200+ configs through both programs and holds both the agreement and these differences\n")
	s.WriteString("(`e2e/testdata/checkdiff`, files marked `# vigil-differs:`).\n")
	s.WriteString("`bgp_instance` (with its `neighbor` blocks) and `bgp_announce` are vigil extensions for active-active\n")
	s.WriteString("directors behind a router's ECMP: keepalived has no BGP and rejects them. Each bgp_instance runs in a\n")
	s.WriteString("`vigil-bgp` process the daemon starts (installed as /usr/lib/vigil/vigil-bgp; `vigil check` warns when\n")
	s.WriteString("it is missing), so a configuration without one carries no BGP code at all.\n")
	s.WriteString("`lvs_sync_auth_key` and `lvs_sync_auth_key_file` are vigil extensions that authenticate `lvs_sync_daemon`'s\n")
	s.WriteString("connection sync packets (HMAC-SHA256); keepalived does not know them. keepalived -t accepts an\n")
	s.WriteString("`lvs_sync_daemon` without an instance, or naming one that does not exist; `vigil check` accepts it too,\n")
	s.WriteString("with a warning, and runs without connection sync.\n")
	s.WriteString("Diagnostics about AH and TUN are marked so that callers can tell them apart (`config.IsUnsupported`).\n")
	s.WriteString("Checks that depend on the host (interfaces, scripts, users and groups, host names) go through `config.Env`;\n")
	s.WriteString("with a nil function the check is skipped, as for `vigil check -no-host-checks`.\n\n")
	total := map[Status]int{}
	for _, t := range orderedTables() {
		fmt.Fprintf(&s, "## `%s`\n\n", t.Block())
		if t.Intro() != "" {
			s.WriteString(t.Intro())
			s.WriteString("\n\n")
		}
		s.WriteString("| keyword | status | meaning |\n|---|---|---|\n")
		es := t.Entries()
		sort.SliceStable(es, func(i, j int) bool { return es[i].Name < es[j].Name })
		for _, e := range es {
			total[e.Status]++
			doc := strings.ReplaceAll(e.Doc, "|", "\\|")
			if doc != "" {
				doc = strings.ToUpper(doc[:1]) + doc[1:]
			}
			fmt.Fprintf(&s, "| `%s` | %s | %s |\n", e.Name, e.Status, doc)
		}
		s.WriteString("\n")
	}
	fmt.Fprintf(&s, "In all: %d supported, %d warned and ignored, %d rejected.\n",
		total[Supported], total[Ignored], total[Rejected])
	s.WriteString("\n## Semantic checks\n\n")
	s.WriteString("After parsing, the whole configuration is checked as keepalived 2.2.7 checks it; all findings are reported\n")
	s.WriteString("in one run, each with file:line:column.\n\n")
	for _, r := range Rules {
		fmt.Fprintf(&s, "- **%s**: %s\n", r.Severity, r.Rule)
	}
	s.WriteString(readingDocs())
	return s.String()
}
