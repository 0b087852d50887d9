package config

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// hostileSmall are short configurations (at most 73 bytes) that make an
// unbounded preprocessor hang or exhaust memory: parameters defined in
// terms of themselves, on one line or over several, alone or under a
// ~SEQ. Each must end quickly, allocate little and say so once.
var hostileSmall = []string{
	"$A=$A $A\n$A\n",
	"$A=$A \\\n$A\n$A\n",
	"$A=x \\\n$A \\\n$A\n$A\n",
	"$A=a\\\n$A\\\n$A\n$A\n",
	"$A=~SEQ(i,1,1000) $A\n$A\n",
	"$A=$A$A$A$A$A$A$A$A\n$A\n",
	"~SEQ(i,1,100000) ~SEQ(j,1,100000) $A\n$A=$A \\\n$A \\\n$A\n$A\n",
	"$B=$A \\\n$A\n$A=$B \\\n$B\n$A\n",
	"$A=${A}${A}${A}${A}\n${A}${A}${A}${A}${A}${A}${A}${A}${A}${A}${A}${A}${A}\n",
}

// TestHostileExpansionBounded checks the budget that spans nesting: the
// first limit one branch of a line's expansion runs into stops the whole
// line, and identical findings are reported once with a count.
func TestHostileExpansionBounded(t *testing.T) {
	for _, src := range hostileSmall {
		if len(src) > 73 {
			t.Fatalf("%q is %d bytes: the cases are at most 73", src, len(src))
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		_, diags := LoadBytes("/k/hostile.conf", []byte(src), testEnv())
		took := time.Since(start)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		// Generous bounds (the machine may be busy): the benchmark
		// BenchmarkHostileExpansion measures the real cost.
		if took > 5*time.Second {
			t.Errorf("%q took %v", src, took)
		}
		if alloc > 50<<20 {
			t.Errorf("%q allocated %d MB in all, want under 50", src, alloc>>20)
		}
		if !diags.HasErrors() {
			t.Errorf("%q: no error:\n%s", src, diags)
		}
		if len(diags) > 3 {
			t.Errorf("%q: %d diagnostics, want the limit said once (and its fallout counted):\n%s", src, len(diags), diags)
		}
		for _, d := range diags {
			if strings.Count(diags.String(), d.Msg) > 1 {
				t.Errorf("%q: %q reported more than once", src, d.Msg)
			}
		}
	}
}

func BenchmarkHostileExpansion(b *testing.B) {
	for i, src := range hostileSmall {
		b.Run(string(rune('a'+i)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				LoadBytes("/k/hostile.conf", []byte(src), testEnv())
			}
		})
	}
}

// Identical findings are merged with a count, in the order first found.
func TestDiagnosticsCompact(t *testing.T) {
	p := Pos{File: "f", Line: 1, Col: 1}
	ds := Diagnostics{{Pos: p, Severity: Error, Msg: "a"}, {Pos: p, Severity: Error, Msg: "b"}, {Pos: p, Severity: Error, Msg: "a", Repeats: 2}, {Pos: p, Severity: Warning, Msg: "a"}}.compact()
	if len(ds) != 3 || ds[0].Repeats != 3 || ds[1].Msg != "b" || ds[2].Severity != Warning {
		t.Fatalf("compact: %#v", ds)
	}
	if s := ds[0].String(); !strings.HasSuffix(s, "(found 4 times)") {
		t.Errorf("String: %q", s)
	}
}
