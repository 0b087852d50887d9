package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"vigil/internal/logging"
)

func TestParseRunArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want runOpts
	}{
		{[]string{"-nlD"}, runOpts{dontFork: true, console: true, detail: true}},
		{[]string{"-S", "6", "-D"}, runOpts{facility: "6", detail: true}},
		{[]string{"-S6", "-PfFILE"}, runOpts{facility: "6", vrrpOnly: true, file: "FILE"}},
		{[]string{"--log-facility=local3", "--use-file", "F", "--vrrp"}, runOpts{facility: "local3", file: "F", vrrpOnly: true}},
		{[]string{"-C", "-p", "/run/a.pid", "-r", "/run/b.pid", "-c", "/run/c.pid"}, runOpts{checkOnly: true, pidFile: "/run/a.pid", vrrpPid: "/run/b.pid", checkPid: "/run/c.pid"}},
		{[]string{"--pid=/p", "--vrrp_pid=/r", "--checkers_pid=/c"}, runOpts{pidFile: "/p", vrrpPid: "/r", checkPid: "/c"}},
		{[]string{"-t"}, runOpts{test: true}},
		{[]string{"-t/tmp/log", "-f", "x"}, runOpts{test: true, testLog: "/tmp/log", file: "x"}},
		{[]string{"--config-test=/tmp/log"}, runOpts{test: true, testLog: "/tmp/log"}},
		{[]string{"-i", "node1", "-d"}, runOpts{id: "node1", dumpConf: true}},
		{[]string{"--config-id=node1"}, runOpts{id: "node1"}},
		// vigil's own flags, with one dash or two, next to keepalived's.
		{[]string{"-nlD", "--control", "/run/v.sock", "-metrics", "127.0.0.1:9650", "-log-level=warn"},
			runOpts{dontFork: true, console: true, detail: true, control: "/run/v.sock", ctlSet: true, metrics: "127.0.0.1:9650", level: "warn"}},
		{[]string{"-control="}, runOpts{ctlSet: true}},
		// getopt takes unambiguous prefixes of long names.
		{[]string{"--log-det", "--dont-f"}, runOpts{detail: true, dontFork: true}},
		{[]string{"conf", "-n"}, runOpts{dontFork: true, args: []string{"conf"}}},
		{[]string{"-n", "--", "-f"}, runOpts{dontFork: true, args: []string{"-f"}}},
		{[]string{"--signum=JSON"}, runOpts{signum: "JSON"}},
		{[]string{"-B", "--all", "-R", "-b", "/run/bfd.pid", "-m"}, runOpts{noBFD: true, dontRespawn: true, bfdPid: "/run/bfd.pid", coreDump: true}},
		{[]string{"-u", "0027"}, runOpts{umask: "0027"}},
		{[]string{"-T", "-s", "host", "-p", "80"}, runOpts{genhash: true, rest: []string{"-s", "host", "-p", "80"}}},
	} {
		got, err := parseRunArgs(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.args, *got, tc.want)
		}
	}
}

func TestParseRunArgsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-x"}, "-x/--snmp is not supported by vigil: SNMP"},
		{[]string{"--snmp-agent-socket=/x"}, "-A/--snmp-agent-socket is not supported by vigil"},
		{[]string{"-nX"}, "-X/--release-vips is not supported by vigil"},
		{[]string{"-V"}, "-V/--dont-release-vrrp is not supported by vigil"},
		{[]string{"-I"}, "-I/--dont-release-ipvs is not supported by vigil"},
		{[]string{"-a"}, "-a/--address-monitoring is not supported by vigil"},
		{[]string{"-s", "blue"}, "-s/--namespace is not supported by vigil: network namespaces; run it as `ip netns exec"},
		{[]string{"-M"}, "-M/--core-dump-pattern is not supported by vigil"},
		{[]string{"-e"}, "-e/--all-config is not supported by vigil"},
		{[]string{"-q"}, "unknown option -q"},
		{[]string{"--bogus"}, "unknown option --bogus"},
		{[]string{"--log"}, "option --log is ambiguous"},
		{[]string{"-f"}, "option -f needs a value"},
		{[]string{"--pid"}, "option --pid needs a value"},
		{[]string{"--dont-fork=yes"}, "option --dont-fork takes no value"},
	} {
		_, err := parseRunArgs(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

// Every option keepalived 2.2.7 lists in --help is in the table, either
// taken or refused with a reason: none falls through as "unknown".
func TestEveryKeepalivedOptionIsKnown(t *testing.T) {
	help := keepalivedHelp
	for _, line := range strings.Split(help, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "-") {
			continue
		}
		for _, w := range f[:min(2, len(f))] {
			w = strings.TrimSuffix(w, ",")
			if !strings.HasPrefix(w, "-") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
			name, _, _ = strings.Cut(name, "[")
			var s *optSpec
			if strings.HasPrefix(w, "--") {
				s, _ = findLong(name)
				if s != nil && s.long != name {
					s = nil
				}
			} else {
				s = findShort(name[0])
			}
			if s == nil {
				t.Errorf("keepalived's %s is not in vigil's option table", w)
			}
		}
	}
}

// keepalivedHelp is the option list of `keepalived --help` (2.2.7), the
// names only.
const keepalivedHelp = `
-f, --use-file=FILE
-P, --vrrp
-C, --check
-B, --no_bfd
--all
-l, --log-console
-D, --log-detail
-S, --log-facility=([0-7]|local[0-7]|user|daemon)
-G, --no-syslog
-u, --umask=MASK
-X, --release-vips
-V, --dont-release-vrrp
-I, --dont-release-ipvs
-R, --dont-respawn
-n, --dont-fork
-d, --dump-conf
-p, --pid=FILE
-r, --vrrp_pid=FILE
-T, --genhash
-c, --checkers_pid=FILE
-a, --address-monitoring
-b, --bfd_pid=FILE
-x, --snmp
-A, --snmp-agent-socket=FILE
-s, --namespace=NAME
-m, --core-dump
-M, --core-dump-pattern=PATN
-e, --all-config
-i, --config-id id
--signum=SIGFUNC
-t, --config-test[=LOG_FILE]
-v, --version
-h, --help
`

func TestRunPositionalConfig(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.conf")
	// The positional file is the config: -t reports it, not the default.
	code, _, errs := run(t, "run", "-t", missing)
	if code == 0 || !strings.Contains(errs, "missing.conf") {
		t.Fatalf("vigil run -t FILE: exit %d\n%s", code, errs)
	}
	if code, _, errs := run(t, "check", missing); code != exitConfigFatal || !strings.Contains(errs, "missing.conf") {
		t.Fatalf("vigil check FILE: exit %d\n%s", code, errs)
	}
	if code, _, errs := run(t, "check", "-f", "/etc/a.conf", missing); code != 2 || !strings.Contains(errs, "unexpected argument") {
		t.Fatalf("vigil check -f A B: exit %d\n%s", code, errs)
	}
	code, _, errs = run(t, "run", "-f", "/etc/a.conf", missing)
	if code != 2 || !strings.HasPrefix(errs, "vigil run: ") || !strings.Contains(errs, "two configuration files given") {
		t.Fatalf("-f and a positional: exit %d\n%s", code, errs)
	}
	code, _, errs = run(t, "run", "a.conf", "b.conf")
	if code != 2 || !strings.Contains(errs, "unexpected arguments") {
		t.Fatalf("two positionals: exit %d\n%s", code, errs)
	}
	if code, _, errs := run(t, "-x", "-f", missing); code != 2 || !strings.HasPrefix(errs, "vigil: ") || !strings.Contains(errs, "not supported by vigil") {
		t.Fatalf("keepalived style -x: exit %d\n%s", code, errs)
	}
	if code, out, _ := run(t, "--signum=JSON"); code != 0 || strings.TrimSpace(out) != "36" {
		t.Fatalf("--signum=JSON: exit %d %q", code, out)
	}
	if code, out, _ := run(t, "--help"); code != 0 || !strings.Contains(out, "--config-test") {
		t.Fatalf("--help: exit %d %q", code, out)
	}
	if code, out, _ := run(t, "-v"); code != 0 || !strings.HasPrefix(out, "vigil ") {
		t.Fatalf("-v: exit %d %q", code, out)
	}
	// --config-test=FILE writes the report into FILE.
	logf := filepath.Join(dir, "test.log")
	if code, _, _ := run(t, "--config-test="+logf, "-f", missing); code == 0 {
		t.Fatal("config test of a missing file exited 0")
	}
	if b, _ := os.ReadFile(logf); !strings.Contains(string(b), "missing.conf") {
		t.Fatalf("report file: %q", b)
	}
}

func TestClaimDaemon(t *testing.T) {
	dir := t.TempDir()
	ctl := filepath.Join(dir, "v.sock")
	pid := filepath.Join(dir, "run", "vigil.pid")
	release, err := claimDaemon(ctl, []string{pid})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(pid); strings.TrimSpace(string(b)) != itoa(os.Getpid()) {
		t.Fatalf("pid file holds %q", b)
	}
	if _, err := claimDaemon(ctl, nil); err == nil || !strings.Contains(err.Error(), "another vigil (pid") {
		t.Fatalf("second claim of the control socket: %v", err)
	}
	if _, err := claimDaemon(filepath.Join(dir, "other.sock"), []string{pid}); err == nil || !strings.Contains(err.Error(), "is held by another vigil") {
		t.Fatalf("second claim of the pid file: %v", err)
	}
	release()
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Fatalf("pid file left after release: %v", err)
	}
	// A stale pid file (a crash) does not block the next start.
	if err := os.WriteFile(pid, []byte("999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	release, err = claimDaemon(ctl, []string{pid})
	if err != nil {
		t.Fatalf("after a stale pid file: %v", err)
	}
	release()
}

func itoa(n int) string { return strconv.Itoa(n) }

// vigil(8) documents every option of the table.
func TestManPageListsEveryOption(t *testing.T) {
	b, err := os.ReadFile("../../packaging/vigil.8")
	if err != nil {
		t.Fatal(err)
	}
	page := strings.ReplaceAll(string(b), `\-`, "-")
	for _, o := range options {
		if o.long != "" && !strings.Contains(page, "--"+o.long) {
			t.Errorf("packaging/vigil.8 does not mention --%s", o.long)
		}
		if o.short != 0 && !strings.Contains(page, "-"+string(o.short)) {
			t.Errorf("packaging/vigil.8 does not mention -%c", o.short)
		}
	}
	for _, c := range commands() {
		if !strings.Contains(page, ".B "+c.name) && !strings.Contains(page, "vigil "+c.name) {
			t.Errorf("packaging/vigil.8 does not describe the command %s", c.name)
		}
	}
}

// Under systemd (stderr is the stream JOURNAL_STREAM names) every line
// carries its priority, and a fatal error is logged once, at error level.
func TestRunLogsForTheJournal(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte("vrrp_instance VI_1 {\n  virtual_router_id 51;\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, ok := logging.StreamID(f)
	if !ok {
		t.Fatal("cannot stat the stderr file")
	}
	t.Setenv("JOURNAL_STREAM", id)
	var out bytes.Buffer
	code := dispatch(context.Background(), []string{"run", "--control", "", conf}, &out, f)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	b, _ := os.ReadFile(f.Name())
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	fatal := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "<") {
			t.Errorf("line without a priority: %q", l)
		}
		if strings.Contains(l, "not starting") {
			fatal++
			if !strings.HasPrefix(l, "<3>") {
				t.Errorf("fatal line not at error priority: %q", l)
			}
		}
	}
	if fatal != 1 {
		t.Errorf("the fatal error appears %d times, want once:\n%s", fatal, b)
	}
	if !strings.Contains(string(b), "<3>") || !strings.Contains(string(b), `expected an integer`) {
		t.Errorf("no error-priority diagnostic:\n%s", b)
	}
}
