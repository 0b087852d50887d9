// Package e2e holds vigil's end-to-end tests: whole binaries (vigil and the
// real keepalived) run against namespace labs built with internal/netlab.
// They need root and host tools; outside CI they skip with a reason.
package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"vigil/internal/labtest"
)

func TestMain(m *testing.M) { vigilBuild.Main(m) }

// vigilBuild is the vigil binary, built at most once per test run; vigil-bgp
// beside vigil: the daemon starts it for bgp_instance blocks.
var vigilBuild = labtest.Binary{Pattern: "vigil-e2e-bin-", Pkgs: []string{"vigil/cmd/vigil", "vigil/cmd/vigil-bgp", "vigil/cmd/vigil-tools"}}

// vigilBinary returns the path of a vigil binary built from this tree (or
// $VIGIL_BIN when set), building it on first use. Tests that need it call it
// only after their skip checks, so an unprivileged `go test ./...` builds
// nothing.
func vigilBinary() (string, error) {
	if p := os.Getenv("VIGIL_BIN"); p != "" {
		return filepath.Abs(p)
	}
	return vigilBuild.Path()
}

// mustVigilBinary is vigilBinary for a test that cannot go on without it.
func mustVigilBinary(t testing.TB) string {
	t.Helper()
	bin, err := vigilBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
