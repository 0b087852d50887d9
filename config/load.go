package config

import (
	"cmp"
	"slices"
)

// Load reads, parses and validates the configuration file at path. The
// Config is usable (bad items dropped) even when the Diagnostics have
// errors, so that a caller can report everything in one run; it is nil
// only when the file could not be read at all.
func Load(path string, env Env) (*Config, Diagnostics) {
	nodes, diags := ParseTree(path, env)
	return finish(nodes, diags, env)
}

// LoadBytes is Load for an in-memory configuration called name (includes
// still go through env).
func LoadBytes(name string, data []byte, env Env) (*Config, Diagnostics) {
	nodes, diags := ParseTreeBytes(name, data, env)
	return finish(nodes, diags, env)
}

func finish(nodes []*Node, diags Diagnostics, env Env) (*Config, Diagnostics) {
	for _, d := range diags {
		if d.Severity == Fatal && len(nodes) == 0 {
			return nil, diags
		}
	}
	cfg, more := Build(nodes, env)
	return cfg, sortDiags(append(diags, more...)).compact()
}

// sortDiags puts diagnostics in file order: files in the order they were
// first mentioned, then by line and column. Validation findings about a
// block thus appear next to the parse findings of the same lines.
func sortDiags(ds Diagnostics) Diagnostics {
	rank := map[string]int{}
	for _, d := range ds {
		if _, ok := rank[d.Pos.File]; !ok {
			rank[d.Pos.File] = len(rank)
		}
	}
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		if c := cmp.Compare(rank[a.Pos.File], rank[b.Pos.File]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Pos.Line, b.Pos.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Pos.Col, b.Pos.Col)
	})
	return ds
}

// Build turns a parsed tree into a Config and validates it. The Config is
// usable even when the diagnostics have errors: bad items are dropped, so
// a caller can report everything in one run.
func Build(nodes []*Node, env Env) (*Config, Diagnostics) {
	b := &builder{env: env, cfg: newConfig()}
	topTable.run(b, nodes, b.cfg)
	b.validate()
	b.cfg.dropKeyPositions()
	b.cfg.reindex()
	return b.cfg, sortDiags(b.diags)
}
