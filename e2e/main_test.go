// Package e2e holds vigil's end-to-end tests: whole binaries (vigil and the
// real keepalived) run against namespace labs built with internal/netlab.
// They need root and host tools; outside CI they skip with a reason.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if vigilBuild.dir != "" {
		_ = os.RemoveAll(vigilBuild.dir)
	}
	os.Exit(code)
}

// vigilBuild is the vigil binary, built at most once per test run.
var vigilBuild struct {
	once sync.Once
	dir  string // temporary directory holding the binary, removed by TestMain
	path string
	err  error
}

// vigilBinary returns the path of a vigil binary built from this tree (or
// $VIGIL_BIN when set), building it on first use. Tests that need it call it
// only after their skip checks, so an unprivileged `go test ./...` builds
// nothing.
func vigilBinary() (string, error) {
	vigilBuild.once.Do(func() {
		if p := os.Getenv("VIGIL_BIN"); p != "" {
			vigilBuild.path, vigilBuild.err = filepath.Abs(p)
			return
		}
		dir, err := os.MkdirTemp("", "vigil-e2e-bin-")
		if err != nil {
			vigilBuild.err = err
			return
		}
		vigilBuild.dir = dir
		bin := filepath.Join(dir, "vigil")
		// vigil-bgp beside vigil: the daemon starts it for bgp_instance blocks.
		out, err := exec.Command("go", "build", "-o", dir+"/", "vigil/cmd/vigil", "vigil/cmd/vigil-bgp").CombinedOutput()
		if err != nil {
			vigilBuild.err = fmt.Errorf("go build -o %s/ vigil/cmd/vigil vigil/cmd/vigil-bgp: %v\n%s", dir, err, out)
			return
		}
		vigilBuild.path = bin
	})
	return vigilBuild.path, vigilBuild.err
}
