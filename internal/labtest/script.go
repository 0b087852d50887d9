package labtest

import (
	"os"
	"path/filepath"
	"testing"
)

// Script writes an executable /bin/sh script called name into dir, body
// after the #! line, and returns its path: a vrrp_script, MISC_CHECK or
// notify script for a test to run.
func Script(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
