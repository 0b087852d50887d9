package metrics

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// docRow is one line of the metrics table in docs/operations.md.
type docRow struct {
	kind   string
	labels string
}

// documented reads the metrics table of docs/operations.md's "Metrics and
// alerts" section: rows of | `name` | type | `label`, ... | meaning |.
func documented(t *testing.T) map[string]docRow {
	t.Helper()
	f, err := os.Open("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]docRow{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Metrics and alerts"
		}
		if !in || !strings.HasPrefix(line, "| `vigil_") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			t.Fatalf("docs/operations.md: metrics table row with fewer than four cells: %s", line)
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if _, dup := out[name]; dup {
			t.Errorf("docs/operations.md: %s documented twice", name)
		}
		out[name] = docRow{kind: strings.TrimSpace(cells[2]), labels: strings.ReplaceAll(strings.TrimSpace(cells[3]), "`", "")}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal(`docs/operations.md: no metrics table found in section "## Metrics and alerts"`)
	}
	return out
}

// TestEveryMetricDocumented: a metric exported but not documented, or
// documented but not exported, or documented with another type or other
// labels, fails.
func TestEveryMetricDocumented(t *testing.T) {
	docs := documented(t)
	for _, d := range Defs() {
		row, ok := docs[d.Name]
		if !ok {
			t.Errorf("%s is exported but docs/operations.md does not document it", d.Name)
			continue
		}
		delete(docs, d.Name)
		if row.kind != string(d.Kind) {
			t.Errorf("%s: documented as a %s, exported as a %s", d.Name, row.kind, d.Kind)
		}
		labels := strings.Join(d.Labels, ", ")
		if labels == "" {
			labels = "—"
		}
		if row.labels != labels {
			t.Errorf("%s: documented labels %q, exported %q", d.Name, row.labels, labels)
		}
	}
	for name := range docs {
		t.Errorf("%s is documented in docs/operations.md but vigil does not export it", name)
	}
}
