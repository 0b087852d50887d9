package track

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
)

// The values keepalived 2.2.7 read from a tracked file (weight 3), seen in
// the priority it reported: "  7 junk" 7, "2.9" 2, "0x10" 16, "010" 8,
// " -5" -5, "+6" 6, "abc" 0, 99999999999 ignored.
func TestParseValue(t *testing.T) {
	tests := []struct {
		in      string
		v       int
		inRange bool
	}{
		{"0", 0, true},
		{"5\n", 5, true},
		{"  7 junk\n", 7, true},
		{"2.9", 2, true},
		{"0x10", 16, true},
		{"0X1f", 31, true},
		{"0x", 0, true},  // "0" then junk
		{"0xg", 0, true}, // likewise
		{"010", 8, true},
		{"09", 0, true}, // octal stops at 9
		{" -5", -5, true},
		{"+6", 6, true},
		{"\t\n-12abc", -12, true},
		{"abc", 0, true},
		{"", 0, true},
		{"-", 0, true},
		{"- 5", 0, true},
		{"2147483647", 2147483647, true},
		{"-2147483648", -2147483648, true},
		{"2147483648", 0, false},
		{"-2147483649", 0, false},
		{"99999999999", 0, false},
		{"99999999999999999999999999", 0, false},
	}
	for _, tt := range tests {
		v, ok := ParseValue([]byte(tt.in))
		if v != tt.v || ok != tt.inRange {
			t.Errorf("ParseValue(%q) = %d, %v; want %d, %v", tt.in, v, ok, tt.v, tt.inRange)
		}
	}
}

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{"0", "  7 junk", "0x10", "010", "-2147483648", "99999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, ok := ParseValue(b)
		if !ok && v != 0 {
			t.Errorf("out of range but value %d", v)
		}
	})
}

func TestReadValueFile(t *testing.T) {
	dir := t.TempDir()
	if v, ok, d := ReadValueFile(filepath.Join(dir, "missing")); v != 0 || ok || !strings.Contains(d, "does not exist") {
		t.Errorf("missing: %d %v %q", v, ok, d)
	}
	if v, ok, d := ReadValueFile(dir); v != 0 || ok || !strings.Contains(d, "cannot read") {
		t.Errorf("directory: %d %v %q", v, ok, d)
	}
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("42\n"), 0o644)
	if v, ok, d := ReadValueFile(p); v != 42 || !ok || d != "" {
		t.Errorf("42: %d %v %q", v, ok, d)
	}
	os.WriteFile(p, []byte("99999999999\n"), 0o644)
	if _, ok, d := ReadValueFile(p); !ok || !strings.Contains(d, "out of range") {
		t.Errorf("out of range: %v %q", ok, d)
	}
}

func startFileWatcher(t *testing.T, resync time.Duration, files []File) *labtest.Collector[Event] {
	t.Helper()
	c := labtest.NewCollector[Event]()
	w, err := NewFileWatcher(files, c.Add, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Resync = resync
	labtest.Run(t, w.Run)
	return c
}

// writeAtomic replaces a file by rename, as atomic writers do.
func writeAtomic(t *testing.T, p, s string) {
	t.Helper()
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func TestFileWatcherFollowsChanges(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	b := filepath.Join(dir, "b")
	os.WriteFile(a, []byte("3\n"), 0o644)
	// No resync during the test: every change must come through inotify.
	c := startFileWatcher(t, time.Hour, []File{{Name: "fa", Path: a}, {Name: "fb", Path: b}})
	first := map[string]Event{}
	for range 2 {
		e := c.Next(t, 5*time.Second)
		first[e.Name] = e
	}
	if e := first["fa"]; e.Kind != KindFile || !e.OK || e.Value != 3 {
		t.Errorf("fa first: %+v", e)
	}
	if e := first["fb"]; e.OK || e.Value != 0 || !strings.Contains(e.Detail, "does not exist") {
		t.Errorf("fb (missing) first: %+v", e)
	}
	steps := []struct {
		do   func()
		name string
		ok   bool
		v    int
	}{
		{func() { os.WriteFile(b, []byte("7\n"), 0o644) }, "fb", true, 7},        // created
		{func() { os.WriteFile(a, []byte("-4\n"), 0o644) }, "fa", true, -4},      // rewritten in place
		{func() { writeAtomic(t, a, "12") }, "fa", true, 12},                     // replaced by rename
		{func() { os.Remove(b) }, "fb", false, 0},                                // deleted
		{func() { os.WriteFile(a, []byte("0x10 junk"), 0o644) }, "fa", true, 16}, // keepalived's parsing
	}
	for i, s := range steps {
		s.do()
		e := c.Next(t, 5*time.Second)
		if e.Name != s.name || e.OK != s.ok || e.Value != s.v {
			t.Errorf("step %d: %+v, want %s ok=%v value %d", i, e, s.name, s.ok, s.v)
		}
	}
	// An out-of-range value keeps the previous one; rewriting the same value
	// reports nothing.
	os.WriteFile(a, []byte("99999999999"), 0o644)
	os.WriteFile(a, []byte("16"), 0o644)
	c.None(t, 800*time.Millisecond)
}

func TestFileWatcherDirectoryCreatedLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	p := filepath.Join(dir, "f")
	c := startFileWatcher(t, 300*time.Millisecond, []File{{Name: "f", Path: p}})
	if e := c.Next(t, 5*time.Second); e.OK || e.Value != 0 {
		t.Fatalf("first: %+v", e)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("5"), 0o644)
	if e := c.Next(t, 5*time.Second); !e.OK || e.Value != 5 {
		t.Fatalf("after the directory appeared: %+v", e)
	}
	// Once the resync has added a watch, changes are seen through inotify.
	time.Sleep(400 * time.Millisecond)
	os.WriteFile(p, []byte("6"), 0o644)
	if e := c.Next(t, 5*time.Second); e.Value != 6 {
		t.Fatalf("after a rewrite: %+v", e)
	}
}

func TestFileWatcherInitFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	kept := filepath.Join(dir, "kept")
	over := filepath.Join(dir, "over")
	os.WriteFile(kept, []byte("1\n"), 0o644)
	os.WriteFile(over, []byte("1\n"), 0o644)
	c := startFileWatcher(t, time.Hour, []File{
		{Name: "missing", Path: missing, InitFile: true, InitValue: 4},
		{Name: "kept", Path: kept, InitFile: true, InitValue: 4},
		{Name: "over", Path: over, InitFile: true, InitValue: -2, Overwrite: true},
	})
	got := map[string]int{}
	for range 3 {
		e := c.Next(t, 5*time.Second)
		got[e.Name] = e.Value
	}
	if got["missing"] != 4 || got["kept"] != 1 || got["over"] != -2 {
		t.Errorf("values after init_file: %v, want missing 4, kept 1, over -2", got)
	}
	if b, _ := os.ReadFile(missing); string(b) != "4\n" {
		t.Errorf("init_file wrote %q", b)
	}
}

func TestNewFileWatcherRejects(t *testing.T) {
	report := func(Event) {}
	for name, files := range map[string][]File{
		"no name": {{Path: "/x"}},
		"no path": {{Name: "a"}},
		"dup":     {{Name: "a", Path: "/x"}, {Name: "a", Path: "/y"}},
	} {
		if _, err := NewFileWatcher(files, report, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A directory moved away and another put in its place: the file under the
// configured path is followed, not the one that moved.
func TestFileWatcherDirectoryReplaced(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "d")
	os.Mkdir(dir, 0o755)
	p := filepath.Join(dir, "f")
	os.WriteFile(p, []byte("1"), 0o644)
	c := startFileWatcher(t, 200*time.Millisecond, []File{{Name: "f", Path: p}})
	if e := c.Next(t, 5*time.Second); e.Value != 1 {
		t.Fatalf("first: %+v", e)
	}
	if err := os.Rename(dir, filepath.Join(base, "old")); err != nil {
		t.Fatal(err)
	}
	if e := c.Next(t, 5*time.Second); e.OK || e.Value != 0 {
		t.Fatalf("after moving the directory away: %+v", e)
	}
	// Writes to the moved directory are not the tracked file.
	os.WriteFile(filepath.Join(base, "old", "f"), []byte("9"), 0o644)
	c.None(t, 500*time.Millisecond)
	os.Mkdir(dir, 0o755)
	os.WriteFile(p, []byte("3"), 0o644)
	if e := c.Next(t, 5*time.Second); !e.OK || e.Value != 3 {
		t.Fatalf("after a new directory and file: %+v", e)
	}
	time.Sleep(300 * time.Millisecond) // watched again by now
	os.WriteFile(p, []byte("4"), 0o644)
	if e := c.Next(t, 5*time.Second); e.Value != 4 {
		t.Fatalf("after a rewrite: %+v", e)
	}
}
