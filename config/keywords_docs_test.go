package config

import (
	"flag"
	"os"
	"strings"
	"testing"

	"vigil/internal/goldenfile"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the keyword tables")

const docsPath = "../docs/configuration.md"

// TestDocs fails when docs/configuration.md is not what the keyword tables
// generate; `go test ./config -run TestDocs -update` rewrites it.
func TestDocs(t *testing.T) {
	goldenfile.Check(t, docsPath, GenerateDocs(), *update, "go test ./config -run TestDocs -update")
}

// tableByName finds a documented table by the first word of its block.
func tableByName(name string) docTable {
	for _, t := range docTables {
		first, _, _ := strings.Cut(t.Block(), " ")
		if t.Block() == "top level" && name == "top" || first == name {
			return t
		}
	}
	return nil
}

// TestManPageKeywords checks that every keyword keepalived.conf(5)
// documents has a row, so that none is an "unknown keyword" by accident.
func TestManPageKeywords(t *testing.T) {
	data, err := os.ReadFile("testdata/model/manpage_keywords.txt")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		block, kws, _ := strings.Cut(line, ":")
		tb := tableByName(block)
		if tb == nil {
			t.Errorf("no keyword table for block %q", block)
			continue
		}
		have := map[string]bool{}
		for _, e := range tb.Entries() {
			have[e.Name] = true
		}
		for _, kw := range strings.Fields(kws) {
			n++
			if !have[kw] {
				t.Errorf("%s: keyword %q documented by keepalived.conf(5) has no row", block, kw)
			}
		}
	}
	if n < 300 {
		t.Errorf("only %d man page keywords checked", n)
	}
}
