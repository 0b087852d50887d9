package hostenv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/config"

	"vigil/internal/testenv"
)

const nobody = 65534 // user nobody, group nogroup on Debian

// layout makes base/dir (mode dmode, owner duid:dgid) holding check.sh
// (mode fmode, owner fuid:fgid), and returns the script's path.
func layout(t *testing.T, base, dir string, dmode os.FileMode, duid, dgid int, fmode os.FileMode, fuid, fgid int) string {
	t.Helper()
	d := filepath.Join(base, dir)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d, "check.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Chmod after Chown: chown clears the setuid bit.
	for _, step := range []func() error{
		func() error { return os.Chown(p, fuid, fgid) },
		func() error { return os.Chmod(p, fmode) },
		func() error { return os.Chown(d, duid, dgid) },
		func() error { return os.Chmod(d, dmode) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

type scriptCase struct {
	name string
	path string
	want string // "" when keepalived accepts the script; else part of vigil's error
}

// securityCases lays out scripts under base with the modes and owners that
// decide keepalived's verdict with enable_script_security and script_user
// root, each with that verdict (observed with keepalived 2.2.7 -t).
func securityCases(t *testing.T, base string) []scriptCase {
	sticky := os.ModeSticky
	cases := []scriptCase{
		{"safe", layout(t, base, "ok", 0o755, 0, 0, 0o755, 0, 0), ""},
		{"script o+w", layout(t, base, "sow", 0o755, 0, 0, 0o757, 0, 0), "is writable by others (mode 0757); with enable_script_security keepalived refuses it: chmod o-w"},
		{"script g+w, group root", layout(t, base, "sgw", 0o755, 0, 0, 0o775, 0, 0), ""},
		{"script g+w, other group", layout(t, base, "sgwng", 0o755, 0, 0, 0o775, 0, nobody), "is writable by group"},
		{"script owned by nobody", layout(t, base, "snob", 0o755, 0, 0, 0o755, nobody, nobody), "is owned by"},
		{"script only root can read", layout(t, base, "sowonly", 0o755, 0, 0, 0o700, 0, 0), ""},
		{"script setuid", layout(t, base, "setuid", 0o755, 0, 0, 0o755|os.ModeSetuid, 0, 0), ""},
		{"script o+w with sticky bit", layout(t, base, "sstickyo", 0o755, 0, 0, 0o757|sticky, 0, 0), "is writable by others"},
		{"dir o+w", layout(t, base, "dow", 0o777, 0, 0, 0o755, 0, 0), "/dow is writable by others (mode 0777)"},
		{"dir o+w sticky", layout(t, base, "dsticky", 0o777|sticky, 0, 0, 0o755, 0, 0), ""},
		{"dir 1757", layout(t, base, "dsticky757", 0o757|sticky, 0, 0, 0o755, 0, 0), ""},
		{"dir g+w, group root", layout(t, base, "dgw", 0o775, 0, 0, 0o755, 0, 0), ""},
		{"dir g+w, other group", layout(t, base, "dgwng", 0o775, 0, nobody, 0o755, 0, 0), "/dgwng is writable by group"},
		{"dir g+w sticky, other group", layout(t, base, "dstickyg", 0o775|sticky, 0, nobody, 0o755, 0, 0), ""},
		{"dir owned by nobody", layout(t, base, "dnob", 0o755, nobody, nobody, 0o755, 0, 0), "/dnob is owned by"},
		{"sticky dir owned by nobody", layout(t, base, "snobsticky", 0o777|sticky, nobody, nobody, 0o755, 0, 0), "/snobsticky is owned by"},
		{"missing", filepath.Join(base, "ok", "missing.sh"), "does not exist"},
		{"directory", filepath.Join(base, "ok"), "is a directory"},
		{"bare name in PATH", "sh", ""},
		{"bare name not in PATH", "vigil-no-such-script", "not an executable file in PATH"},
	}
	// A symlink is judged by its target: a safe link to an unsafe script is
	// refused, and (as keepalived does) a path through a world-writable
	// directory that ends at a safe script is accepted.
	link := filepath.Join(base, "ok", "link.sh")
	if err := os.Symlink(filepath.Join(base, "sow", "check.sh"), link); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, scriptCase{"link to unsafe script", link, "(resolves to " + filepath.Join(base, "sow", "check.sh") + ") is writable by others"})
	if err := os.Symlink(filepath.Join(base, "ok"), filepath.Join(base, "dow", "okl")); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, scriptCase{"safe script via a link in an unsafe dir", filepath.Join(base, "dow", "okl", "check.sh"), ""})
	return cases
}

// TestScriptSecurity checks CheckScript against keepalived's verdicts.
func TestScriptSecurity(t *testing.T) {
	testenv.RequireRoot(t)
	base := t.TempDir() // under /tmp: root-owned and sticky, which is fine
	cases := securityCases(t, base)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckScript(tc.path, true)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckScript(%s) = %v, want nil (keepalived accepts it)", tc.path, err)
			case tc.want != "" && err == nil:
				t.Errorf("CheckScript(%s) = nil, want an error containing %q (keepalived refuses it)", tc.path, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("CheckScript(%s) = %q, want it to contain %q", tc.path, err, tc.want)
			}
		})
	}

	// The exact words for the commonest case.
	p := filepath.Join(base, "sow", "check.sh")
	want := "script " + p + " is writable by others (mode 0757); with enable_script_security keepalived refuses it: chmod o-w " + p
	if err := CheckScript(p, true); err == nil || err.Error() != want {
		t.Errorf("CheckScript(%s) = %v\nwant %s", p, err, want)
	}
	// Without enable_script_security ownership and modes do not matter.
	if err := CheckScript(p, false); err != nil {
		t.Errorf("CheckScript(%s, false) = %v, want nil", p, err)
	}
}

// TestCheckScript covers what is checked with or without security, for any
// user.
func TestCheckScript(t *testing.T) {
	base := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exe := write("check.sh", 0o755)
	noexec := write("noexec.sh", 0o644)
	for _, tc := range []struct {
		path, want string
	}{
		{exe, ""},
		{filepath.Join(base, "missing.sh"), "does not exist"},
		{base, "is a directory"},
		// keepalived -t accepts this; the script could never run.
		{noexec, "is not executable (mode 0644): chmod +x " + noexec},
		{"/dev/null", "is not a regular file"},
		{"", "empty path"},
	} {
		err := CheckScript(tc.path, false)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckScript(%q, false) = %v, want %q", tc.path, err, tc.want)
		}
	}
	t.Chdir(base)
	if err := CheckScript("./check.sh", false); err != nil {
		t.Errorf("relative path: %v", err)
	}
	if err := CheckScript("check.sh", false); err == nil {
		t.Error("a bare name found only in the working directory was accepted; keepalived looks only in PATH")
	}
}

func TestNew(t *testing.T) {
	env := New("lb1")
	if env.ID != "lb1" || env.ReadFile == nil || env.Glob == nil || env.CheckScript == nil || env.InterfaceExists == nil {
		t.Fatalf("New: %+v", env)
	}
	if strings.Contains(env.Hostname, ".") {
		t.Errorf("Hostname %q is not short", env.Hostname)
	}
	if !env.InterfaceExists("lo") || env.InterfaceExists("vigil-nosuch0") {
		t.Error("InterfaceExists misjudges lo or a missing interface")
	}
	dir := t.TempDir()
	for _, n := range []string{"b.conf", "a.conf", "c.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := env.Glob(filepath.Join(dir, "*.conf"))
	if err != nil || len(got) != 2 || filepath.Base(got[0]) != "a.conf" || filepath.Base(got[1]) != "b.conf" {
		t.Errorf("Glob = %v, %v; want a.conf, b.conf", got, err)
	}
	if _, err := env.Glob("[unclosed"); err == nil {
		t.Error("Glob accepted a malformed pattern")
	}
}

// ReadConfigFile never blocks (a FIFO with no writer returns at once),
// reads only regular files, and stops at config.MaxFileSize.
func TestReadConfigFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadConfigFile(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a FIFO was read as a configuration file")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadConfigFile blocked on a FIFO")
	}
	if _, err := ReadConfigFile("/dev/null"); err == nil {
		t.Error("/dev/null was read as a configuration file")
	}
	if _, err := ReadConfigFile(dir); err == nil {
		t.Error("a directory was read as a configuration file")
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, config.MaxFileSize+1); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadConfigFile(big); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Errorf("a file over MaxFileSize: %v", err)
	}
	ok := filepath.Join(dir, "ok.conf")
	if err := os.WriteFile(ok, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadConfigFile(ok); err != nil || string(b) != "x\n" {
		t.Errorf("regular file: %q %v", b, err)
	}
	// vigil run and reloads load through New's Env: the same checks apply.
	env := New("")
	if env.Stat == nil {
		t.Error("New gives no Stat: includes would be opened unchecked")
	}
	main := filepath.Join(dir, "main.conf")
	if err := os.WriteFile(main, []byte("include fifo\ninclude /dev/null\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() { _, d := config.Load(main, env); done <- errors.New(d.String()) }()
	select {
	case err := <-done:
		if !strings.Contains(err.Error(), "FIFO") || !strings.Contains(err.Error(), "character device") {
			t.Errorf("Load with New's Env: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("config.Load with New's Env blocked on an included FIFO")
	}
}
