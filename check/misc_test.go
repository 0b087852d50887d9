package check

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"vigil/internal/labtest"
	"vigil/internal/proc"

	"vigil/internal/testenv"
)

func TestMisc(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		body    string
		dynamic bool
		up      bool
		weight  int
		detail  string
	}{
		{"exit 0", "exit 0", false, true, -1, "exited 0"},
		{"exit 1", "exit 1", false, false, -1, "exited 1"},
		{"exit 3 without misc_dynamic", "exit 3", false, false, -1, "exited 3"},
		{"exit 0 dynamic keeps the weight", "exit 0", true, true, -1, "exited 0"},
		{"exit 1 dynamic", "exit 1", true, false, -1, "exited 1"},
		{"exit 2 dynamic is weight 0", "exit 2", true, true, 0, "exited 2: weight 0"},
		{"exit 12 dynamic is weight 10", "exit 12", true, true, 10, "exited 12: weight 10"},
		{"exit 255 dynamic is weight 253", "exit 255", true, true, 253, "weight 253"},
		{"stderr excerpt", "echo 'backend says: db unreachable' >&2; exit 1", false, false, -1, "exited 1: backend says: db unreachable"},
		{"long stderr cut", "head -c 5000 /dev/zero | tr '\\0' e >&2; exit 1", false, false, -1, strings.Repeat("e", proc.StderrExcerpt) + "..."},
		{"killed by a signal", "kill -TERM $$", false, false, -1, "killed by SIGTERM"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := labtest.Script(t, dir, "s"+strconv.Itoa(i), tt.body)
			c, err := NewMisc(MiscConfig{Argv: []string{p}, Dynamic: tt.dynamic, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			r := c.Check(context.Background())
			if r.Up != tt.up || r.Weight != tt.weight || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("Check() = up %v weight %d %q, want up %v weight %d containing %q", r.Up, r.Weight, r.Detail, tt.up, tt.weight, tt.detail)
			}
		})
	}
	assertNoChildren(t)
}

// The arguments split by the caller reach the program unchanged.
func TestMiscArgv(t *testing.T) {
	p := labtest.Script(t, t.TempDir(), "args", `[ "$1" = "a b" ] && [ "$2" = "c" ] && [ $# -eq 2 ]`)
	c, err := NewMisc(MiscConfig{Argv: []string{p, "a b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Check(context.Background()); !r.Up {
		t.Errorf("Check() down: %s", r.Detail)
	}
	if got, want := c.String(), "MISC_CHECK "+p+" a b c"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// A timeout kills the script and everything in its process group, a
// background child included, and no zombie is left behind.
func TestMiscTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	p := labtest.Script(t, dir, "hang", "sleep 30 &\necho $! > "+pidFile+"\necho waiting >&2\nsleep 30\nexit 0")
	c, err := NewMisc(MiscConfig{Argv: []string{p}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := c.Check(context.Background())
	if el := time.Since(start); el > time.Second {
		t.Errorf("timed-out check took %v", el)
	}
	if r.Up || !strings.Contains(r.Detail, "timed out after 300ms and was killed: waiting") {
		t.Errorf("Check() = up %v %q, want down, timed out, with the stderr excerpt", r.Up, r.Detail)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The killed orphan belongs to init now, which reaps it when it likes:
	// dead means gone or a zombie (state Z).
	alive := func() bool {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		_, rest, _ := strings.Cut(string(st), ") ")
		return !strings.HasPrefix(rest, "Z")
	}
	labtest.WaitFor(t, 3*time.Second, "background child "+strconv.Itoa(pid)+" of the timed-out script to go", func() bool { return !alive() })
	assertNoChildren(t)
}

// A cancelled context (vigil stopping) ends a running script at once.
func TestMiscCancel(t *testing.T) {
	p := labtest.Script(t, t.TempDir(), "hang", "sleep 30")
	c, _ := NewMisc(MiscConfig{Argv: []string{p}, Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := c.Check(ctx)
	if r.Up || time.Since(start) > 2*time.Second {
		t.Errorf("Check() = up %v %q after %v", r.Up, r.Detail, time.Since(start))
	}
	assertNoChildren(t)
}

// A script that exits but leaves a child holding stderr is judged by its
// own exit code, without waiting for the child.
func TestMiscLingeringChild(t *testing.T) {
	p := labtest.Script(t, t.TempDir(), "bg", "sleep 3 >&2 &\nexit 0")
	c, _ := NewMisc(MiscConfig{Argv: []string{p}, Timeout: 10 * time.Second})
	start := time.Now()
	if r := c.Check(context.Background()); !r.Up {
		t.Errorf("Check() down: %s", r.Detail)
	}
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Errorf("check waited %v for the lingering child", el)
	}
}

func TestMiscMissingProgram(t *testing.T) {
	c, _ := NewMisc(MiscConfig{Argv: []string{"/nonexistent/check"}})
	r := c.Check(context.Background())
	if r.Up || !strings.Contains(r.Detail, "run /nonexistent/check: ") {
		t.Errorf("Check() = up %v %q", r.Up, r.Detail)
	}
}

// script_user: the program runs with the given uid and gid.
func TestMiscUser(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	// MkdirTemp makes 0700 directories; nobody must reach the script.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	p := labtest.Script(t, dir, "whoami", `echo "uid=$(id -u) gid=$(id -g)" >&2; exit 1`)
	c, err := NewMisc(MiscConfig{Argv: []string{p}, User: &Credential{UID: 65534, GID: 65533}})
	if err != nil {
		t.Fatal(err)
	}
	r := c.Check(context.Background())
	if !strings.Contains(r.Detail, "uid=65534 gid=65533") {
		t.Errorf("Check() detail %q, want the script to run as 65534:65533", r.Detail)
	}
}

func TestNewMiscErrors(t *testing.T) {
	if _, err := NewMisc(MiscConfig{}); err == nil || !strings.Contains(err.Error(), "misc_path is empty") {
		t.Errorf("empty argv: %v", err)
	}
	if _, err := NewMisc(MiscConfig{Argv: []string{"/bin/true"}, Timeout: -time.Second}); err == nil {
		t.Error("negative timeout accepted")
	}
}

// assertNoChildren fails if this process has any child left, zombies
// included: every MISC_CHECK must reap what it started.
func assertNoChildren(t *testing.T) {
	t.Helper()
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
	if !errors.Is(err, syscall.ECHILD) {
		t.Errorf("a child process is left over (wait4 = %d, %v)", pid, err)
	}
}
