package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"vigil/control"
	"vigil/internal/testenv"
)

const (
	alertRules = "../contrib/prometheus/vigil-alerts.yml"
	alertTests = "../contrib/prometheus/vigil-alerts.test.yml"
	dashboard  = "../contrib/grafana/vigil-dashboard.json"
)

func promtool(t *testing.T, args ...string) {
	t.Helper()
	testenv.RequireTool(t, "promtool")
	if out, err := exec.Command("promtool", args...).CombinedOutput(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestAlertRules: the rules load (promtool check rules) and their unit
// tests pass (promtool test rules): every alert quiet in normal operation
// and firing, with its labels and rendered annotations, when its
// condition holds.
func TestAlertRules(t *testing.T) {
	promtool(t, "check", "rules", alertRules)
	promtool(t, "test", "rules", alertTests)
}

var alertLine = regexp.MustCompile(`(?m)^\s*- alert: (\w+)\s*$`)

func alertNames(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range alertLine.FindAllStringSubmatch(string(b), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("%s: no alerts found", alertRules)
	}
	return names
}

// TestAlertsDocumentedAndTested: every alert is in docs/operations.md's
// alerts table and has a firing case in the rule tests, and the docs name
// no alert the rules do not have.
func TestAlertsDocumentedAndTested(t *testing.T) {
	docs, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(alertTests)
	if err != nil {
		t.Fatal(err)
	}
	names := alertNames(t)
	for _, n := range names {
		if !strings.Contains(string(docs), "| `"+n+"` |") {
			t.Errorf("alert %s is not in docs/operations.md's alerts table", n)
		}
		if !regexp.MustCompile(`alertname: ` + n + `\s+exp_alerts:\s+- exp_labels`).Match(tests) {
			t.Errorf("alert %s has no firing case in %s", n, alertTests)
		}
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `(Vigil\\w+)` \\|").FindAllStringSubmatch(string(docs), -1) {
		if !slices.Contains(names, m[1]) {
			t.Errorf("docs/operations.md documents alert %s, which %s does not define", m[1], alertRules)
		}
	}
}

// exported lists every metric name a vigil scrape can carry: Defs, and
// the Go and process collectors' families as the handler serves them.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, d := range Defs() {
		names[d.Name] = true
	}
	_, body := get(t, NewServer(func(context.Context) (control.Status, error) { return fullStatus(), nil }, func(context.Context) error { return nil }), "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\b(?:vigil|go|process)_[a-z0-9_]+\b`)

// dashboardExprs returns the PromQL of every target of every panel
// (rows included) of the Grafana dashboard, by panel title.
func dashboardExprs(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Title  string            `json:"title"`
		UID    string            `json:"uid"`
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: no title, uid or panels", dashboard)
	}
	out := map[string][]string{}
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: panel: %v", dashboard, err)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", dashboard, p.Title)
			}
			for _, tg := range p.Targets {
				out[p.Title] = append(out[p.Title], tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// TestDashboard: the dashboard parses, every query is valid PromQL
// (promtool checks it as a recording rule, with Grafana's variables
// filled in), and every metric it or the alert rules query exists.
func TestDashboard(t *testing.T) {
	names := exported(t)
	exprs := dashboardExprs(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	i := 0
	for title, es := range exprs {
		for _, e := range es {
			for _, m := range metricName.FindAllString(e, -1) {
				if !names[m] {
					t.Errorf("dashboard panel %q queries %s, which vigil does not export", title, m)
				}
			}
			q := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*").Replace(e)
			js, _ := json.Marshal(q)
			fmt.Fprintf(&rules, "      - record: dashboard:q%d\n        expr: %s\n", i, js)
			i++
		}
	}
	alerts, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metricName.FindAllString(string(alerts), -1) {
		if !names[m] {
			t.Errorf("%s queries %s, which vigil does not export", alertRules, m)
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "rules", path)
}
