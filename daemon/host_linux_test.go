package daemon

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFileAtomic: the real writeFile edge (the dump files in /tmp,
// shared with every user) replaces a symlink planted at the path instead
// of writing through it, leaves the file mode 0600, and on a failed write
// leaves the old file and no temporary file behind.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keepalived.data")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := writeFileAtomic(path, write("dump 1")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the symlink's target became %q: written through the link", b)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want a regular file 0600", path, fi.Mode())
	}
	if b, _ := os.ReadFile(path); string(b) != "dump 1" {
		t.Errorf("%s holds %q", path, b)
	}

	failed := errors.New("snapshot failed")
	if err := writeFileAtomic(path, func(w io.Writer) error { _, _ = io.WriteString(w, "half"); return failed }); !errors.Is(err, failed) {
		t.Errorf("a failed write: %v, want %v", err, failed)
	}
	if b, _ := os.ReadFile(path); string(b) != "dump 1" {
		t.Errorf("after a failed write %s holds %q, want the previous dump", path, b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d files in the directory after a failed write, want 2 (no temporary file left)", len(ents))
	}
}
