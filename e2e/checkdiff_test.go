package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/checkdiff/VERDICTS.md from the verdicts of the installed keepalived")

const (
	corpusDir    = "testdata/checkdiff"
	verdictsFile = "VERDICTS.md"
	dirToken     = "@DIR@" // replaced by the corpus copy's absolute directory

	minCorpus   = 60 // configs in the corpus
	minPerKind  = 20 // configs keepalived accepts, and configs it rejects
	perCmdLimit = 30 * time.Second
)

// corpusScripts are the executables the corpus refers to as
// @DIR@/scripts/...: git keeps neither group- nor world-writable bits, so
// the harness creates them with the modes the configs are about.
var corpusScripts = []struct {
	path string
	mode fs.FileMode
}{
	{"scripts/ok.sh", 0o755},
	{"scripts/world-writable.sh", 0o777},      // insecure under enable_script_security
	{"scripts/group-root-writable.sh", 0o775}, // group root: still secure
	{"scripts/open-dir/ok.sh", 0o755},         // secure file in an insecure directory
	{"scripts/not-executable.sh", 0o644},
}

// corpusDirModes are directory modes set after the scripts are written.
var corpusDirModes = []struct {
	path string
	mode fs.FileMode
}{
	{"scripts/open-dir", 0o777}, // world-writable, no sticky bit
}

// corpusSpecial are include targets git cannot keep as they are (an execute
// bit on a fragment would be lost by copyCorpus, a FIFO cannot be
// committed): the harness creates them. keepalived skips both without
// reading them, so their text is an unknown keyword that would fail the
// config if either program read it.
var corpusSpecial = []struct {
	path string
	mode fs.FileMode // fs.ModeNamedPipe: a FIFO
}{
	{"inc/special/executable.conf", 0o755},
	{"inc/special/fifo.conf", fs.ModeNamedPipe | 0o644},
}

const specialBody = "# created by e2e/checkdiff_test.go: never read\nnot_a_keyword_if_read\n"

const scriptBody = "#!/bin/sh\n# created by e2e/checkdiff_test.go\nexit 0\n"

// verdict is what one program said about one config.
type verdict struct {
	code int    // exit status; 128+N when killed by signal N
	out  string // stdout and stderr, with the corpus directory shown as @DIR@
}

func (v verdict) ok() bool { return v.code == 0 }

// firstLine is the first non-blank output line, the one VERDICTS.md records.
func (v verdict) firstLine() string {
	for _, l := range strings.Split(v.out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

// sameFirstLine compares two recorded first lines. An include cycle makes
// keepalived recurse until open(2) fails with EMFILE, and which of the two
// files in the cycle hits the limit depends on how many descriptors the
// process inherited (the CI runner and a shell differ by one), so for that
// message only the kind of failure is compared, not the file names.
func sameFirstLine(a, b string) bool {
	const emfile = "open problem (Too many open files)"
	if strings.Contains(a, emfile) && strings.Contains(b, emfile) {
		return true
	}
	return a == b
}

func (v verdict) String() string {
	out := strings.TrimRight(v.out, "\n")
	if out == "" {
		out = "(no output)"
	}
	return fmt.Sprintf("exit %d\n%s", v.code, out)
}

// corpusConfig is one top-level config of the corpus and the header lines
// that drive the harness.
type corpusConfig struct {
	name string // file name, e.g. "valid-minimal-vrrp.conf"
	what string // the one-line description on line 1
	id   string // "# id: X" header: run both programs with -i X
	// differs is the "# vigil-differs: WHY" header: a deliberate,
	// documented difference (docs/configuration.md) where vigil's verdict
	// must be the opposite of keepalived's.
	differs string
}

// TestCheckMatchesKeepalived runs `keepalived -t` and `vigil check` on every
// config of testdata/checkdiff inside a namespace whose interfaces are known
// (eth0, eth1), and fails when their verdicts (exit 0 or not) differ. It also
// fails when keepalived's verdict or first output line differs from
// VERDICTS.md, which catches a changed environment; -update rewrites that
// file instead.
func TestCheckMatchesKeepalived(t *testing.T) {
	testenv.RequireLab(t, "keepalived")

	configs := loadCorpus(t)
	if len(configs) < minCorpus {
		t.Errorf("corpus has %d configs, want at least %d", len(configs), minCorpus)
	}
	var recorded map[string]verdict
	if !*update {
		var err error
		if recorded, err = readVerdicts(filepath.Join(corpusDir, verdictsFile)); err != nil {
			t.Fatalf("%v (run as root with -update to create it)", err)
		}
	}

	vigil, buildErr := vigilBinary()
	if buildErr != nil {
		// keepalived's side is still checked against VERDICTS.md.
		t.Errorf("cannot compare with vigil: %v", buildErr)
	}

	dir := copyCorpus(t)
	host := checkLab(t)

	var (
		mu      sync.Mutex
		results = map[string]verdict{}
	)
	t.Run("corpus", func(t *testing.T) {
		for _, c := range configs {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(dir, c.name)
				var idArgs []string
				if c.id != "" {
					idArgs = []string{"-i", c.id}
				}
				kargs := []string{"-t", "-f", path,
					// Keep every file keepalived might write inside the copy,
					// and stay out of the host's syslog.
					"-G", "-n",
					"-p", path + ".pid", "-r", path + ".vrrp.pid", "-c", path + ".check.pid", "-b", path + ".bfd.pid"}
				// An include cycle recurses until open files run out: pin
				// the limit so that depth (and the time taken) does not
				// depend on the environment.
				shArgs := append([]string{"-c", `ulimit -n 1024 && exec keepalived "$@"`, "keepalived"}, kargs...)
				kv, err := runIn(host, dir, "sh", append(shArgs, idArgs...)...)
				if err != nil {
					t.Fatalf("keepalived: %v", err)
				}
				mu.Lock()
				results[c.name] = kv
				mu.Unlock()
				switch kv.code {
				case 0, 4, 5, 6:
				case 2: // a keyword without its parameter: keepalived stops at once
				default:
					t.Errorf("keepalived -t exited %d, not 0/2/4/5/6: the corpus must not depend on a crash\n%s", kv.code, kv)
				}
				if rv, found := recorded[c.name]; recorded != nil && !found {
					t.Errorf("%s has no line in %s: run with -update", c.name, verdictsFile)
				} else if found && (rv.code != kv.code || !sameFirstLine(rv.firstLine(), kv.firstLine())) {
					t.Errorf("keepalived's verdict changed from %s (environment change?)\nrecorded: exit %d: %s\nnow:      exit %d: %s",
						verdictsFile, rv.code, rv.firstLine(), kv.code, kv.firstLine())
				}

				if buildErr != nil {
					return
				}
				vv, err := runIn(host, dir, vigil, append([]string{"check", "-f", path}, idArgs...)...)
				if err != nil {
					t.Fatalf("vigil: %v", err)
				}
				if strings.Contains(vv.out, "panic:") || strings.Contains(vv.out, "goroutine ") {
					t.Errorf("vigil check crashed:\n%s", vv)
				}
				if vv.code == 2 {
					t.Errorf("vigil check exited 2 (usage error or crash), not a verdict:\n%s", vv)
				}
				if vv.code != 0 && strings.TrimSpace(vv.out) == "" {
					t.Errorf("vigil check exited %d without printing any diagnostic", vv.code)
				}
				switch {
				case c.differs != "" && kv.ok() == vv.ok():
					// A deliberate, documented difference must stay one: if
					// either side changed, the documentation is now wrong.
					t.Errorf("%s is marked vigil-differs (%s) but both verdicts are now %v\n--- keepalived -t: %s\n--- vigil check: %s",
						c.name, c.differs, kv.ok(), kv, vv)
				case c.differs == "" && kv.ok() != vv.ok():
					t.Errorf("verdicts differ on %s (%s)\n--- keepalived -t: %s\n--- vigil check: %s",
						c.name, c.what, kv, vv)
				}
			})
		}
	})

	if n := lingering(host); n != "" {
		t.Errorf("processes left running in %s after the checks: %s", host.NS, n)
	}

	if len(results) != len(configs) {
		return // some subtest could not run keepalived; counts would mislead
	}
	var good, bad int
	for _, v := range results {
		if v.ok() {
			good++
		} else {
			bad++
		}
	}
	t.Logf("keepalived accepts %d and rejects %d of %d configs", good, bad, len(results))
	if good < minPerKind || bad < minPerKind {
		t.Errorf("the corpus must hold at least %d configs of each verdict: keepalived accepts %d, rejects %d", minPerKind, good, bad)
	}
	if *update {
		if err := writeVerdicts(filepath.Join(corpusDir, verdictsFile), configs, results); err != nil {
			t.Fatal(err)
		}
		return
	}
	for name := range recorded {
		if _, ok := results[name]; !ok {
			t.Errorf("%s records %s, which is not in the corpus: run with -update", verdictsFile, name)
		}
	}
}

// loadCorpus lists the top-level *.conf files (fragments live in
// subdirectories) and reads their headers.
func loadCorpus(t *testing.T) []corpusConfig {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	var cs []corpusConfig
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c := corpusConfig{name: filepath.Base(p)}
		lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
		if !strings.HasPrefix(lines[0], "# ") || len(strings.TrimSpace(lines[0])) < 4 {
			t.Errorf("%s: line 1 must be a \"# \" comment saying what the config exercises", p)
		}
		c.what = strings.TrimPrefix(lines[0], "# ")
		for _, l := range lines[1:] {
			if !strings.HasPrefix(l, "#") {
				break
			}
			if v, ok := strings.CutPrefix(l, "# id:"); ok {
				c.id = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(l, "# vigil-differs:"); ok {
				c.differs = strings.TrimSpace(v)
			}
		}
		cs = append(cs, c)
	}
	return cs
}

// copyCorpus copies the corpus to a fresh directory, replaces @DIR@ with
// that directory in every file, and creates the scripts with their modes.
func copyCorpus(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(corpusDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(corpusDir, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		data = bytes.ReplaceAll(data, []byte(dirToken), []byte(dst))
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return err
		}
		return os.Chmod(target, 0o644) // whatever the umask
	})
	if err != nil {
		t.Fatalf("copy corpus: %v", err)
	}
	for _, s := range corpusScripts {
		p := filepath.Join(dst, s.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(scriptBody), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, s.mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range corpusSpecial {
		p := filepath.Join(dst, s.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if s.mode&fs.ModeNamedPipe != 0 {
			if err := syscall.Mkfifo(p, uint32(s.mode.Perm())); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte(specialBody), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, s.mode.Perm()); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range corpusDirModes {
		if err := os.Chmod(filepath.Join(dst, d.path), d.mode); err != nil {
			t.Fatal(err)
		}
	}
	// keepalived's script security walks every directory up from a script:
	// the copy and its parent (t.TempDir's) must be root's and not writable
	// by others, whatever the umask.
	for _, d := range []string{dst, filepath.Dir(dst)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// checkLab builds the namespace the checks run in: one host ("node") with
// eth0 and eth1 on two segments, documentation addresses only.
func checkLab(t *testing.T) *netlab.Host {
	t.Helper()
	lab := labtest.New(t, labPrefix())
	labtest.AddSegments(t, lab, "lan0", "lan1")
	h := labtest.AddHost(t, lab, "node")
	labtest.Connect(t, lab, h, "eth0", "lan0", "192.0.2.1/24", "2001:db8:1::1/64")
	labtest.Connect(t, lab, h, "eth1", "lan1", "198.51.100.1/24", "203.0.113.1/24", "2001:db8:2::1/64")
	return h
}

// labPrefix returns this process's lab prefix: "ckd" and the pid in base 36,
// so that two runs at once (developers sharing a machine) do not delete each
// other's namespaces. Labs left by runs whose process is gone are removed.
func labPrefix() string {
	const base = "ckd"
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			prefix, _, ok := strings.Cut(f[0], "-")
			if !ok || !strings.HasPrefix(prefix, base) || len(prefix) == len(base) {
				continue
			}
			pid, err := strconv.ParseInt(prefix[len(base):], 36, 32)
			if err != nil || pid <= 0 {
				continue
			}
			if err := syscall.Kill(int(pid), 0); err == nil || errors.Is(err, syscall.EPERM) {
				continue // that run is still going (or the pid was reused)
			}
			_ = netlab.Cleanup(prefix)
		}
	}
	return base + strconv.FormatInt(int64(os.Getpid()), 36)
}

// runIn runs name in h's namespace, from dir, and returns its verdict. An
// error means the program could not be run or did not finish in time, not
// that it rejected the config.
func runIn(h *netlab.Host, dir, name string, args ...string) (verdict, error) {
	ctx, cancel := context.WithTimeout(context.Background(), perCmdLimit)
	defer cancel()
	cmd := h.Command(ctx, name, args...)
	cmd.Dir = dir
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	v := verdict{out: strings.ReplaceAll(out.String(), dir, dirToken)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return v, fmt.Errorf("%s did not finish within %v (killed): %s", strings.Join(cmd.Args, " "), perCmdLimit, v.out)
	case err == nil:
	case errors.As(err, &ee):
		v.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			v.code = 128 + int(ws.Signal())
		}
	default:
		return v, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	return v, nil
}

// lingering describes the processes still running in h's namespace.
func lingering(h *netlab.Host) string {
	pids, err := h.Pids()
	if err != nil {
		return "cannot list: " + err.Error()
	}
	var procs []string
	for _, pid := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		procs = append(procs, fmt.Sprintf("%d %s", pid, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))))
	}
	return strings.Join(procs, "; ")
}

// VERDICTS.md: a markdown table, one row per config.

var verdictRow = regexp.MustCompile("^\\| `([^`]+)` \\| (-?\\d+) \\| (.*) \\|$")

func readVerdicts(path string) (map[string]verdict, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vs := map[string]verdict{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := verdictRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		code, err := strconv.Atoi(m[2])
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %v", path, sc.Text(), err)
		}
		line := strings.TrimSpace(m[3])
		switch {
		case line == "—":
			line = ""
		case strings.HasPrefix(line, "`") && strings.HasSuffix(line, "`"):
			line = strings.ReplaceAll(strings.Trim(line, "`"), `\|`, "|")
		}
		vs[m[1]] = verdict{code: code, out: line}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("%s: no verdict rows", path)
	}
	return vs, nil
}

func writeVerdicts(path string, configs []corpusConfig, results map[string]verdict) error {
	var b strings.Builder
	version := "unknown"
	if out, err := exec.Command("keepalived", "--version").CombinedOutput(); err == nil {
		version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	fmt.Fprintf(&b, "# What `keepalived -t` says about each config of the corpus\n\n")
	fmt.Fprintf(&b, "Generated by `go test ./e2e/ -run TestCheckMatchesKeepalived -update` (as root) with %s,\n", version)
	fmt.Fprintf(&b, "in a namespace with eth0 (192.0.2.1/24, 2001:db8:1::1/64) and eth1 (198.51.100.1/24,\n")
	fmt.Fprintf(&b, "203.0.113.1/24, 2001:db8:2::1/64). Do not edit by hand: the test fails when keepalived's exit\n")
	fmt.Fprintf(&b, "code or first output line differs from this table, and `vigil check` must exit 0 exactly where\n")
	fmt.Fprintf(&b, "keepalived does. `@DIR@` stands for the directory of the corpus copy.\n\n")
	var good, bad int
	for _, c := range configs {
		if results[c.name].ok() {
			good++
		} else {
			bad++
		}
	}
	fmt.Fprintf(&b, "%d configs: keepalived accepts %d and rejects %d.\n\n", len(configs), good, bad)
	fmt.Fprintf(&b, "| file | exit | first line of keepalived's output |\n|---|---|---|\n")
	for _, c := range configs {
		v := results[c.name]
		line := "—"
		if l := v.firstLine(); l != "" {
			line = "`" + strings.ReplaceAll(l, "|", `\|`) + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %d | %s |\n", c.name, v.code, line)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// The include-cycle verdicts flip between the two files of the cycle with
// the number of inherited descriptors (seen in CI); the comparison must not.
func TestSameFirstLine(t *testing.T) {
	a := "(../../c.conf: Line 3) Configuration file 'inc/b.conf' open problem (Too many open files) - skipping"
	b := "(inc/b.conf: Line 2) Configuration file '../../c.conf' open problem (Too many open files) - skipping"
	if !sameFirstLine(a, b) {
		t.Errorf("EMFILE lines naming the other file of the cycle must compare equal")
	}
	if sameFirstLine("(x.conf: Line 1) unknown keyword 'foo'", "(x.conf: Line 2) unknown keyword 'foo'") {
		t.Errorf("other lines must compare exactly")
	}
}
