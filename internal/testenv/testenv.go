// Package testenv decides whether a test that needs privileges or host tools
// may run. Outside CI such a test skips with a reason; under CI=true a missing
// privilege or tool is a failure, because CI runs as root and must run every
// test (a silent skip there would hide a broken capability).
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool {
	v := os.Getenv("CI")
	return v == "true" || v == "1"
}

// Unavailable skips t with reason, or fails it under CI.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true but this test cannot run: %s", reason)
	}
	t.Skip(reason)
}

// RequireRoot skips (or fails under CI) unless running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root (network namespaces, raw sockets, netlink)")
	}
}

// RequireTool skips (or fails under CI) unless every named program is on PATH.
func RequireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Unavailable(t, "needs "+n+" on PATH (make deps installs it)")
		}
	}
}

// RequireLab skips (or fails under CI) unless a namespace lab can run:
// root, ip, and every other program named on PATH.
func RequireLab(t testing.TB, tools ...string) {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, append([]string{"ip"}, tools...)...)
}

// Short skips a slow test under -short, except in CI.
func Short(t testing.TB) {
	t.Helper()
	if testing.Short() && !InCI() {
		t.Skip("slow test skipped under -short")
	}
}

// MainOnPrivateLoopback is a package's whole TestMain when all it needs
// is PrivateLoopback: it runs the tests there and exits with their status.
func MainOnPrivateLoopback(m *testing.M) {
	PrivateLoopback()
	os.Exit(m.Run())
}
