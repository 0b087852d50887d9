package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDoctorAndDemoExecuteVigilTools: `vigil doctor` and `vigil demo` run
// the vigil-tools beside vigil (the daemon's binary does not link them),
// and without one say where it was looked for.
func TestDoctorAndDemoExecuteVigilTools(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	dir := t.TempDir()
	if b, err := exec.Command("go", "build", "-o", dir+"/", "vigil/cmd/vigil", "vigil/cmd/vigil-tools").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	for _, c := range []struct{ cmd, usage string }{{"doctor", "Usage of doctor"}, {"demo", "Usage of demo"}} {
		b, err := exec.Command(filepath.Join(dir, "vigil"), c.cmd, "-h").CombinedOutput()
		if code := exitCode(err); code != 2 || !strings.Contains(string(b), c.usage) {
			t.Errorf("vigil %s -h: exit %d %q, want exit 2 and %q", c.cmd, code, b, c.usage)
		}
	}
	if err := os.Remove(filepath.Join(dir, "vigil-tools")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ToolsInstalled); err == nil {
		t.Skip(ToolsInstalled + " is installed here")
	}
	b, err := exec.Command(filepath.Join(dir, "vigil"), "doctor").CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(b), "vigil-tools is neither beside") {
		t.Errorf("vigil doctor without vigil-tools: exit %d %q, want exit 1 and where it looked", code, b)
	}
}

// exitCode is a finished command's exit status (0 for a nil error).
func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
