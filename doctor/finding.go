package doctor

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"vigil/internal/enum"
)

// Severity grades a Finding. Ok records a check that ran and found nothing,
// so a report shows what was looked at; Warn and Crit make `vigil doctor`
// exit non-zero.
type Severity int

// The severities, in increasing order.
const (
	Ok Severity = iota
	Info
	Warn
	Crit
)

var severityNames = [...]string{"ok", "info", "warn", "crit"}

// String returns "ok", "info", "warn" or "crit".
func (s Severity) String() string { return enum.Name(severityNames[:], s, "Severity") }

// MarshalText makes JSON show the name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText accepts the names String returns.
func (s *Severity) UnmarshalText(b []byte) error {
	i := slices.Index(severityNames[:], string(b))
	if i < 0 {
		return fmt.Errorf("severity %q: expected ok, info, warn or crit", b)
	}
	*s = Severity(i)
	return nil
}

// Finding is one diagnosis.
type Finding struct {
	// Code is stable across releases ("VD101"); docs/doctor.md has a
	// section per code.
	Code      string   `json:"code"`
	Severity  Severity `json:"severity"`
	Instance  string   `json:"instance,omitempty"`
	Interface string   `json:"interface,omitempty"`
	// Summary is one plain sentence naming the cause.
	Summary string `json:"summary"`
	// Evidence is what was observed, quoted: a firewall rule, counters,
	// addresses heard.
	Evidence []string `json:"evidence,omitempty"`
	// Fix says what to do.
	Fix string `json:"fix,omitempty"`
}

// Problem reports whether f should make doctor fail.
func (f Finding) Problem() bool { return f.Severity >= Warn }

// Sort orders findings by severity (worst first), then code, instance and
// interface, so reports and tests are stable.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(b.Severity, a.Severity), cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Instance, b.Instance), cmp.Compare(a.Interface, b.Interface))
	})
}

// Problems counts findings of severity Warn or worse.
func Problems(fs []Finding) int {
	n := 0
	for _, f := range fs {
		if f.Problem() {
			n++
		}
	}
	return n
}

// Report is what `vigil doctor -json` prints.
type Report struct {
	// Notes say what the diagnosis was based on ("no daemon answered ...").
	Notes    []string  `json:"notes,omitempty"`
	Findings []Finding `json:"findings"`
}

// WriteJSON prints r as indented JSON.
func WriteJSON(w io.Writer, r Report) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// WriteText prints r for a person: problems first, each with its evidence
// and fix; checks that passed are listed last, one line each.
func WriteText(w io.Writer, r Report) error {
	var b strings.Builder
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	fs := slices.Clone(r.Findings)
	Sort(fs)
	heads := map[Severity]string{Crit: "CRITICAL", Warn: "WARNINGS", Info: "FOR INFORMATION", Ok: "CHECKED, NOTHING WRONG"}
	for _, sev := range []Severity{Crit, Warn, Info, Ok} {
		var group []Finding
		for _, f := range fs {
			if f.Severity == sev {
				group = append(group, f)
			}
		}
		if len(group) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s\n", heads[sev])
		for _, f := range group {
			where := where(f)
			if sev == Ok {
				fmt.Fprintf(&b, "  %s %s%s\n", f.Code, where, f.Summary)
				continue
			}
			fmt.Fprintf(&b, "  %s %s%s\n", f.Code, where, f.Summary)
			for _, e := range f.Evidence {
				fmt.Fprintf(&b, "      seen: %s\n", e)
			}
			if f.Fix != "" {
				fmt.Fprintf(&b, "      fix:  %s\n", f.Fix)
			}
		}
		b.WriteString("\n")
	}
	if n := Problems(fs); n == 0 {
		b.WriteString("No problem found.\n")
	} else {
		fmt.Fprintf(&b, "%d problem(s) found.\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func where(f Finding) string {
	switch {
	case f.Instance != "" && f.Interface != "":
		return fmt.Sprintf("[%s on %s] ", f.Instance, f.Interface)
	case f.Instance != "":
		return fmt.Sprintf("[%s] ", f.Instance)
	case f.Interface != "":
		return fmt.Sprintf("[%s] ", f.Interface)
	}
	return ""
}
