package config

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// corpusEnv is the host of e2e/testdata/checkdiff as a pure Env: eth0 and
// eth1 exist, and the scripts the e2e harness creates behave as there.
func corpusEnv(dir, id string) Env {
	return Env{
		ReadFile: func(name string) ([]byte, error) {
			data, err := os.ReadFile(name)
			return bytes.ReplaceAll(data, []byte("@DIR@"), []byte(dir)), err
		},
		Glob: func(p string) ([]string, error) {
			if strings.Contains(p, "/inc/special/") {
				return []string{p}, nil
			}
			return filepath.Glob(p)
		},
		// The e2e harness creates inc/special/ (corpusSpecial there).
		Stat: func(name string) (fs.FileInfo, error) {
			switch {
			case strings.HasSuffix(name, "/inc/special/executable.conf"):
				return fakeInfo{name: "executable.conf", mode: 0o755}, nil
			case strings.HasSuffix(name, "/inc/special/fifo.conf"):
				return fakeInfo{name: "fifo.conf", mode: fs.ModeNamedPipe | 0o644}, nil
			}
			return os.Stat(name)
		},
		ID: id, Hostname: "corpus",
		InterfaceExists: func(n string) bool { return n == "eth0" || n == "eth1" || n == "lo" },
		UserExists:      func(n string) bool { return n == "root" || n == "nobody" },
		GroupExists:     func(n string) bool { return n == "root" || n == "nogroup" },
		CheckScript: func(path string, security bool) error {
			switch {
			case strings.Contains(path, "world-writable"), strings.Contains(path, "open-dir"):
				if security {
					return errors.New("writable by a non-root user")
				}
			case path == dir+"/scripts/ok.sh", path == dir+"/scripts/group-root-writable.sh", path == dir+"/scripts/not-executable.sh",
				strings.HasPrefix(path, "/bin/"), strings.HasPrefix(path, "/usr/bin/"):
			default:
				return errors.New("not found")
			}
			return nil
		},
	}
}

// TestCorpusVerdicts runs the differential corpus through Load and
// compares the verdict with keepalived's recorded exit codes, without
// root or keepalived (e2e does the live comparison).
func TestCorpusVerdicts(t *testing.T) {
	dir, _ := filepath.Abs("../e2e/testdata/checkdiff")
	verdicts, err := os.ReadFile(filepath.Join(dir, "VERDICTS.md"))
	if err != nil {
		t.Fatalf("the differential corpus is part of the repository: %v", err)
	}
	want := map[string]bool{} // file -> keepalived fails
	for _, line := range strings.Split(string(verdicts), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 4 || !strings.HasPrefix(strings.TrimSpace(f[1]), "`") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(f[1]), "`")
		want[name] = strings.TrimSpace(f[2]) != "0"
	}
	for name, fails := range want {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			// "# vigil-differs: WHY" marks a deliberate divergence (the
			// same header e2e's live comparison reads): vigil refuses
			// what it would otherwise run wrongly, or reads a vigil
			// extension keepalived lacks (docs/configuration.md).
			id, differs := "", ""
			if f, err := os.Open(path); err == nil {
				s := bufio.NewScanner(f)
				for s.Scan() {
					if v, ok := strings.CutPrefix(s.Text(), "# id: "); ok {
						id = strings.TrimSpace(v)
					}
					if v, ok := strings.CutPrefix(s.Text(), "# vigil-differs:"); ok {
						differs = strings.TrimSpace(v)
					}
				}
				f.Close()
			}
			_, diags := Load(path, corpusEnv(dir, id))
			got := diags.HasErrors()
			switch {
			case differs != "" && got == fails:
				t.Errorf("marked vigil-differs (%s), but vigil and keepalived now agree (fails=%v): remove the mark\n%s", differs, got, diags)
			case differs != "":
				t.Logf("deliberate divergence (%s): vigil fails=%v, keepalived fails=%v", differs, got, fails)
			case got != fails:
				t.Errorf("vigil fails=%v, keepalived fails=%v\n%s", got, fails, diags)
			}
		})
	}
}
