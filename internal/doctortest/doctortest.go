// Package doctortest is what the tests of `vigil doctor` in several
// packages (doctor's own lab tests, e2e) share: running the doctor
// command in a lab host and picking findings out of its JSON report.
package doctortest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"testing"

	"vigil/doctor"
	"vigil/internal/netlab"
)

// Run runs `bin doctor args... -json` in h and returns its report and exit
// code, logging the report as text; a doctor that cannot run or prints no
// report fails the test.
func Run(t testing.TB, h *netlab.Host, bin string, args ...string) (doctor.Report, int) {
	t.Helper()
	cmd := h.Command(context.Background(), bin, append(append([]string{"doctor"}, args...), "-json")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("vigil doctor: %v\n%s", err, stderr.String())
	}
	var rep doctor.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("vigil doctor -json: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var text bytes.Buffer
	_ = doctor.WriteText(&text, rep)
	t.Logf("vigil doctor in %s (exit %d):\n%s", h.Name, code, text.String())
	return rep, code
}

// Find returns the findings of rep with code and severity.
func Find(rep doctor.Report, code string, sev doctor.Severity) []doctor.Finding {
	var out []doctor.Finding
	for _, f := range rep.Findings {
		if f.Code == code && f.Severity == sev {
			out = append(out, f)
		}
	}
	return out
}
