package labtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Binary is vigil built from this tree once per test binary, on first use:
// tests ask for it only after their skip checks, so an unprivileged
// `go test ./...` builds nothing. It lives in a temporary directory, not a
// test's TempDir (which would vanish before the next test); the package's
// TestMain calls Remove after m.Run.
type Binary struct {
	Pattern string   // os.MkdirTemp pattern of the directory
	Pkgs    []string // packages built into it; Path returns the first's binary
	Flags   []string // more go build flags (e.g. -trimpath)
	Env     []string // more environment for go build (e.g. CGO_ENABLED=0)

	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds the binaries the first time and returns the first one's path.
func (b *Binary) Path() (string, error) {
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", b.Pattern)
		if err != nil {
			b.err = err
			return
		}
		b.dir = dir
		args := append(append([]string{"build"}, b.Flags...), "-o", dir+"/")
		args = append(args, b.Pkgs...)
		cmd := exec.Command("go", args...)
		if len(b.Env) > 0 {
			cmd.Env = append(os.Environ(), b.Env...)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		b.path = filepath.Join(dir, filepath.Base(b.Pkgs[0]))
	})
	return b.path, b.err
}

// MustPath is Path for a test: a failed build fails it.
func (b *Binary) MustPath(t testing.TB) string {
	t.Helper()
	p, err := b.Path()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Remove deletes the directory, if Path made one.
func (b *Binary) Remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}
