package control

import (
	"os"
	"strings"
	"testing"

	"vigil/vrrp"
)

// TestCountersDocumented: docs/operations.md's Status section lists every
// counter key the status carries.
func TestCountersDocumented(t *testing.T) {
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, status, ok := strings.Cut(doc, "\n## Status\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Status" section`)
	}
	var drops string
	for _, line := range strings.Split(status, "\n") {
		if strings.HasPrefix(line, "| `dropped_<reason>` |") {
			drops = line
		}
	}
	for _, k := range Counters() {
		if strings.HasPrefix(k, "dropped_") {
			continue
		}
		if !strings.Contains(status, "| `"+k+"` |") {
			t.Errorf("docs/operations.md: no row for the status counter %q", k)
		}
	}
	for _, r := range vrrp.DropReasons() {
		if !strings.Contains(drops, "`"+DropLabel(r)+"`") {
			t.Errorf("docs/operations.md: the dropped_<reason> row does not name %q", DropLabel(r))
		}
	}
}
