package config

import (
	"io/fs"
	"path"
	"strings"
	"testing"
	"time"
)

// fakeInfo is an fs.FileInfo with a mode and a size.
type fakeInfo struct {
	name string
	mode fs.FileMode
	size int64
}

func (f fakeInfo) Name() string       { return f.name }
func (f fakeInfo) Size() int64        { return f.size }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.mode.IsDir() }
func (f fakeInfo) Sys() any           { return nil }

// statEnv is ppEnv with a Stat that gives each file a mode (0644 when not
// listed) and a ReadFile that fails the test when asked for a file Stat
// calls special: the preprocessor must never open those.
func statEnv(t *testing.T, files map[string]string, modes map[string]fs.FileMode, sizes map[string]int64) Env {
	env := ppEnv(files, "vm")
	read := env.ReadFile
	env.ReadFile = func(name string) ([]byte, error) {
		if m, ok := modes[path.Clean(name)]; ok && !m.IsRegular() {
			t.Errorf("%s (mode %v) was opened", name, m)
		}
		if _, ok := sizes[path.Clean(name)]; ok {
			t.Errorf("%s (too large) was read", name)
		}
		return read(name)
	}
	env.Stat = func(name string) (fs.FileInfo, error) {
		name = path.Clean(name)
		m, ok := modes[name]
		if !ok {
			if _, err := read(name); err != nil && !strings.Contains(err.Error(), "directory") {
				return nil, err
			}
			m = 0o644
		}
		return fakeInfo{name: path.Base(name), mode: m, size: sizes[name] + int64(len(files[name]))}, nil
	}
	return env
}

// keepalived 2.2.7 skips an include that is not a regular file without
// execute bits (a remark with include, an error with includer and the
// checks that imply readable), and vigil must not even open it: a FIFO
// blocks open(2) until a writer comes.
func TestIncludeSkipsNonRegularFiles(t *testing.T) {
	files := map[string]string{
		"/k/inc/ok.conf":   "kw_ok\n",
		"/k/inc/exec.conf": "kw_exec\n",
		"/k/inc/fifo":      "",
		"/k/big/big.conf":  "kw_big\n",
		"/dev/null":        "",
	}
	modes := map[string]fs.FileMode{
		"/k/inc/exec.conf": 0o755,
		"/k/inc/fifo":      fs.ModeNamedPipe | 0o644,
		"/dev/null":        fs.ModeDevice | fs.ModeCharDevice | 0o666,
	}
	sizes := map[string]int64{"/k/big/big.conf": MaxFileSize}
	for _, c := range []struct {
		src   string
		fails bool
		msg   string
	}{
		{"include inc/exec.conf\n", false, "executable"},
		{"include inc/fifo\n", false, "a FIFO"},
		{"include /dev/null\n", false, "a character device"},
		{"include inc\n", false, "a directory"},
		{"include inc/*\n", false, "a FIFO"}, // a glob reaches them too
		{"includer inc/exec.conf\n", true, "executable"},
		{"includer inc/fifo\n", true, "a FIFO"},
		{"includer /dev/null\n", true, "a character device"},
		{"includea /dev/null\n", true, "a character device"},
		{"global_defs {\ninclude_check\n}\ninclude /dev/null\n", true, "a character device"},
		{"include big/big.conf\n", true, "MaxFileSize"},
	} {
		nodes, diags := ParseTreeBytes("/k/main.conf", []byte(c.src+"kw_main\n"), statEnv(t, files, modes, sizes))
		if diags.HasErrors() != c.fails || !strings.Contains(diags.String(), c.msg) {
			t.Errorf("%q: fails=%v, want %v, saying %q:\n%s", c.src, diags.HasErrors(), c.fails, c.msg, diags)
		}
		got := ppFormat(nodes)
		if strings.Contains(got, "kw_exec") || strings.Contains(got, "kw_big") || !strings.Contains(got, "kw_main") {
			t.Errorf("%q: tree\n%s", c.src, got)
		}
	}
}

// The main file: a FIFO or device is refused before it is read; an
// executable one is read (keepalived 2.2.7 runs with nothing instead) with
// a warning; a file over MaxFileSize is refused.
func TestMainFileKinds(t *testing.T) {
	files := map[string]string{"/k/fifo.conf": "", "/k/exec.conf": "kw\n", "/k/big.conf": "kw\n"}
	modes := map[string]fs.FileMode{"/k/fifo.conf": fs.ModeNamedPipe | 0o644, "/k/exec.conf": 0o700}
	sizes := map[string]int64{"/k/big.conf": MaxFileSize}
	env := statEnv(t, files, modes, sizes)
	if _, d := ParseTree("/k/fifo.conf", env); len(d) != 1 || d[0].Severity != Fatal || !strings.Contains(d[0].Msg, "FIFO") {
		t.Errorf("FIFO main file: %s", d)
	}
	if _, d := ParseTree("/k/big.conf", env); len(d) != 1 || d[0].Severity != Fatal || !strings.Contains(d[0].Msg, "MaxFileSize") {
		t.Errorf("large main file: %s", d)
	}
	if n, d := ParseTree("/k/exec.conf", env); len(n) != 1 || d.HasErrors() || !strings.Contains(d.String(), "executable") {
		t.Errorf("executable main file: %s %s", ppFormat(n), d)
	}
	// An Env whose ReadFile ignores the limit is still held to it.
	env = ppEnv(map[string]string{"/k/main.conf": "include huge.conf\n", "/k/huge.conf": strings.Repeat("#\n", MaxFileSize/2+1)}, "vm")
	if _, d := ParseTree("/k/main.conf", env); !d.HasErrors() || !strings.Contains(d.String(), "MaxFileSize") {
		t.Errorf("oversized include from a lax ReadFile: %s", d)
	}
}

// keepalived checks quotes with '\' escaping the next character, though
// its words do not: `"x\" y` is two words (x\ and y) with a quote left
// open, an error; `\"w x\"` is balanced. Observed with keepalived -t 2.2.7.
func TestEscapedQuotes(t *testing.T) {
	for _, c := range []struct {
		line  string
		fails bool
	}{
		{`kw "x\" y`, true},
		{`kw "x\"y" "`, true},
		{`kw "a\"b\"c"`, false},
		{`kw \"w x\" y`, false},
		{`kw "q\\"`, false},
		{`kw "ke\\"y" rest`, true},
		{`kw "plain" word`, false},
		{`kw "x\" y {`, true},
	} {
		_, diags := ParseTreeBytes("/k/main.conf", []byte(c.line+"\n"), Env{})
		if diags.HasErrors() != c.fails {
			t.Errorf("%s: fails=%v, keepalived fails=%v\n%s", c.line, diags.HasErrors(), c.fails, diags)
		}
		if n := strings.Count(diags.String(), "unterminated"); c.fails && n != 1 {
			t.Errorf("%s: want one report of the open quote:\n%s", c.line, diags)
		}
	}
}

// The pieces keepalived reads a long line as keep their real columns.
func TestLongLineColumns(t *testing.T) {
	src := "kw " + strings.Repeat("x", 1020) + "abc def\n"
	nodes, _ := ParseTreeBytes("/k/main.conf", []byte(src), Env{})
	if len(nodes) != 2 || nodes[1].Key.Text != "abc" || nodes[1].Key.Pos.Col != 1024 || nodes[1].Args[0].Pos.Col != 1028 {
		t.Fatalf("second piece:\n%s %+v", ppFormat(nodes), nodes[len(nodes)-1])
	}
}

// A NUL byte ends the line, as it ends keepalived's C string, and is
// named in the diagnostic at its place.
func TestNULByte(t *testing.T) {
	src := "kw1 5\x001\n\x00 kw2\nkw3 " + strings.Repeat("y", 1030) + "\x00z\n"
	nodes, diags := ParseTreeBytes("/k/main.conf", []byte(src), Env{})
	if got := ppFormat(nodes); got != "kw1 5\nkw3 "+strings.Repeat("y", 1019)+"\n"+strings.Repeat("y", 11)+"\n" {
		t.Errorf("tree:\n%q", got)
	}
	want := "/k/main.conf:1:6 warning\n/k/main.conf:2:1 warning\n/k/main.conf:3:1024 warning\n/k/main.conf:3:1035 warning\n"
	if ppDiags(diags) != want || !strings.Contains(diags[0].Msg, "NUL byte") {
		t.Errorf("diagnostics:\n%s", diags)
	}
}
