// Package packaging holds the Debian package of vigil (nfpm.yaml, the
// systemd unit, /etc/default/vigil, the man pages, bash completion, a
// sample keepalived.conf); `make deb` builds it. This test builds it the
// same way and checks what an operator gets.
package packaging

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"vigil/internal/testenv"
)

func TestDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package with nfpm (slow): not in -short")
	}
	testenv.RequireRoot(t) // chroot
	testenv.RequireTool(t, "make", "dpkg", "dpkg-deb", "gzip", "chroot", "go")
	dir := t.TempDir()
	stage, out := filepath.Join(dir, "stage"), filepath.Join(dir, "out")
	const version = "1.2.3~test"
	cmd := exec.Command("make", "-C", "..", "deb", "VERSION="+version, "DEB_STAGE="+stage, "DEB_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, b)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb wrote %v, want one .deb", debs)
	}
	deb := debs[0]

	field := func(name string) string {
		b, err := exec.Command("dpkg-deb", "-f", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", name, err)
		}
		return strings.TrimSpace(string(b))
	}
	if v := field("Version"); v != version {
		t.Errorf("Version %q, want %q", v, version)
	}
	if p := field("Package"); p != "vigil" {
		t.Errorf("Package %q", p)
	}

	// Unpack into a throwaway root: dpkg's own database there, nothing on
	// this host touched (no maintainer script runs on --unpack).
	root := filepath.Join(dir, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("dpkg", "--root="+root, "--unpack", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg --root --unpack: %v\n%s", err, b)
	}
	for _, f := range []struct {
		path, has string
		mode      os.FileMode
	}{
		{"usr/sbin/vigil", "", 0o755},
		{"usr/lib/vigil/vigil-bgp", "", 0o755},
		{"usr/lib/vigil/vigil-tools", "", 0o755},
		{"usr/lib/systemd/system/vigil.service", "Type=notify", 0o644},
		{"etc/default/vigil", `DAEMON_ARGS=""`, 0o644},
		{"usr/share/man/man8/vigil.8.gz", "vigil " + version, 0o644},
		{"usr/share/man/man5/vigil.conf.5.gz", "local_address_group", 0o644},
		{"usr/share/doc/vigil/examples/keepalived.conf", "vrrp_instance VI_1", 0o644},
		{"usr/share/bash-completion/completions/vigil", "complete -F _vigil vigil", 0o644},
		{"usr/share/doc/vigil/copyright", "Apache License", 0o644},
	} {
		p := filepath.Join(root, f.path)
		if _, err := os.Stat(p + ".dpkg-new"); err == nil {
			p += ".dpkg-new" // a conffile waits for configure under this name
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", f.path, err)
			continue
		}
		if st.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, st.Mode().Perm(), f.mode)
		}
		if f.has != "" && !strings.Contains(readMaybeGzip(t, p), f.has) {
			t.Errorf("%s does not contain %q", f.path, f.has)
		}
	}
	unit := readMaybeGzip(t, filepath.Join(root, "usr/lib/systemd/system/vigil.service"))
	for _, line := range []string{"Type=notify", "ExecStart=/usr/sbin/vigil run $DAEMON_ARGS",
		"ExecReload=/usr/sbin/vigil reload $DAEMON_ARGS", "Restart=on-failure", "EnvironmentFile=-/etc/default/vigil"} {
		if !strings.Contains(unit, line+"\n") {
			t.Errorf("unit has no line %q", line)
		}
	}
	if b, _ := exec.Command("dpkg-deb", "--ctrl-tarfile", deb).Output(); !bytes.Contains(b, []byte("/etc/default/vigil")) {
		t.Error("/etc/default/vigil is not a conffile: an upgrade would overwrite the operator's DAEMON_ARGS")
	}

	// The completion script is valid bash and completes the commands
	// (bash-completion's _init_completion stubbed: it fills these in).
	if _, err := exec.LookPath("bash"); err == nil {
		script := filepath.Join(root, "usr/share/bash-completion/completions/vigil")
		b, err := exec.Command("bash", "-c", `_init_completion() { words=(vigil re); cword=1; cur=re; prev=vigil; }; source "$1" && _vigil && echo "${COMPREPLY[*]}"`, "bash", script).CombinedOutput()
		if err != nil || strings.TrimSpace(string(b)) != "reload" {
			t.Errorf("bash completion of \"vigil re\": %v %q, want reload", err, b)
		}
	}

	// The static binary runs from inside the root.
	b, err := exec.Command("chroot", root, "/usr/sbin/vigil", "--version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(b)) != "vigil "+version {
		t.Fatalf("chroot ... vigil --version: %v: %q, want %q", err, b, "vigil "+version)
	}

	// vigil-bgp (the BGP speaker the daemon starts from /usr/lib/vigil) is
	// static too and runs there; by hand it only says what it is.
	b, err = exec.Command("chroot", root, "/usr/lib/vigil/vigil-bgp", "--help").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(b), "not run by hand") {
		t.Errorf("chroot ... vigil-bgp --help: exit %d %q, want exit 2 and its usage", code, b)
	}

	// `vigil doctor` executes the installed vigil-tools (there is none
	// beside /usr/sbin/vigil): its usage, not an error about a missing
	// binary.
	b, err = exec.Command("chroot", root, "/usr/sbin/vigil", "doctor", "-h").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(b), "Usage of doctor") {
		t.Errorf("chroot ... vigil doctor -h: exit %d %q, want exit 2 and doctor's usage", code, b)
	}

	// systemd-analyze verify the unit, pointed at the unpacked binary (the
	// host's units supply the targets it refers to). It exits 0 on
	// warnings, so any output fails too.
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed: the unit is not verified")
	}
	verify := filepath.Join(dir, "verify")
	if err := os.MkdirAll(verify, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(verify, "vigil.service"), []byte(strings.ReplaceAll(unit, "/usr/sbin/vigil", filepath.Join(root, "usr/sbin/vigil"))), 0o644); err != nil {
		t.Fatal(err)
	}
	vout, err := exec.Command("systemd-analyze", "verify", "--man=no", filepath.Join(verify, "vigil.service")).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(vout)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, vout)
	}
}

func readMaybeGzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = z
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
