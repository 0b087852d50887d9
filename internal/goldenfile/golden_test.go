package goldenfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing; a
// fatal one ends Check, as t.Fatal would, by a panic that run recovers.
type recorder struct {
	testing.TB
	failed []string
}

type fatal struct{}

func (r *recorder) Helper()               { r.TB.Helper() }
func (r *recorder) Errorf(string, ...any) { r.failed = append(r.failed, "error") }
func (r *recorder) Fatalf(string, ...any) { r.failed = append(r.failed, "fatal"); panic(fatal{}) }
func (r *recorder) Fatal(...any)          { r.failed = append(r.failed, "fatal"); panic(fatal{}) }

// run runs Check and returns the failures it reported.
func run(t *testing.T, path, got string, update bool) (failed []string) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != (fatal{}) {
			panic(p)
		}
		failed = r.failed
	}()
	Check(r, path, got, update, "go test -update")
	return nil
}

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.golden")
	if f := run(t, path, "a\n", false); !slices.Equal(f, []string{"fatal"}) {
		t.Errorf("no file: %v, want one fatal failure", f)
	}
	if f := run(t, path, "a\n", true); f != nil {
		t.Errorf("update: %v", f)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "a\n" {
		t.Fatalf("update wrote %q, %v", b, err)
	}
	if f := run(t, path, "a\n", false); f != nil {
		t.Errorf("same output: %v", f)
	}
	if f := run(t, path, "b\n", false); !slices.Equal(f, []string{"error"}) {
		t.Errorf("other output: %v, want one error", f)
	}
}
