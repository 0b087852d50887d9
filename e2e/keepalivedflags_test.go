package e2e

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/netlab"
)

// flagsConf is one instance that becomes master alone within a second.
const flagsConf = `global_defs {
  router_id flags
  vrrp_version 3
}
vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority 150
  advert_int 0.1
  virtual_ipaddress {
    192.0.2.61/24
  }
}
`

var flagsVIP = netip.MustParseAddr("192.0.2.61")

// kbin is one of the two binaries under a keepalived command line: the
// real keepalived 2.2.7, or vigil given the same arguments (plus its own
// --control, so that parallel runs do not share the default socket).
type kbin struct {
	kind string
	path string
}

func flagBinaries(t *testing.T) []kbin {
	t.Helper()
	requireVRRPLab(t, "keepalived")
	bin := mustVigilBinary(t)
	return []kbin{{"keepalived", "keepalived"}, {"vigil", bin}}
}

// expand fills @DIR@ and @CONF@, and gives vigil a control socket of its
// own.
func (b kbin) argv(dir string, args ...string) []string {
	r := strings.NewReplacer("@DIR@", dir, "@CONF@", filepath.Join(dir, "keepalived.conf"))
	out := []string{b.path}
	for _, a := range args {
		out = append(out, r.Replace(a))
	}
	if b.kind == "vigil" {
		out = append(out, "--control", filepath.Join(dir, "vigil.sock"))
	}
	return out
}

// Every command line a keepalived user may have in DAEMON_ARGS or a script
// does the same under both binaries: the same answers for one-shot options,
// and for daemon runs the same subsystems running, the same pid files
// written and removed, and keepalived's transition lines in the log.
func TestKeepalivedCommandLines(t *testing.T) {
	t.Parallel()
	bins := flagBinaries(t)
	h := labtest.OneHost(t, "kfl")

	t.Run("oneshot", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			conf string // written to @CONF@
			ok   bool
			out  string // stdout, exactly, when set
		}{
			{args: []string{"-v"}, ok: true},
			{args: []string{"--version"}, ok: true},
			{args: []string{"--help"}, ok: true},
			{args: []string{"--signum=JSON"}, ok: true, out: "36"},
			{args: []string{"--signum=RELOAD"}, ok: true, out: "1"},
			{args: []string{"--signum=DATA"}, ok: true, out: "10"},
			{args: []string{"--signum=STATS"}, ok: true, out: "12"},
			{args: []string{"--signum=STOP"}, ok: true, out: "15"},
			{args: []string{"--signum=NOPE"}},
			{args: []string{"--bogus"}},
			{args: []string{"-t", "-f", "@CONF@"}, conf: flagsConf, ok: true},
			{args: []string{"--config-test", "--use-file=@CONF@", "-i", "a"}, conf: flagsConf, ok: true},
			{args: []string{"-t", "-f", "@CONF@"}, conf: strings.Replace(flagsConf, "61\n", "61;\n", 1)},
			{args: []string{"--config-test=@DIR@/test.log", "-f", "@CONF@"}, conf: strings.Replace(flagsConf, "61\n", "61;\n", 1)},
		} {
			for _, b := range bins {
				dir := t.TempDir()
				if tc.conf != "" {
					if err := os.WriteFile(filepath.Join(dir, "keepalived.conf"), []byte(tc.conf), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				// keepalived -t writes nothing else, but keep its pid files
				// in the test's directory all the same.
				args := append(tc.args, "-G", "-p", "@DIR@/k.pid", "-r", "@DIR@/v.pid", "-c", "@DIR@/c.pid")
				argv := b.argv(dir, args...)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				cmd := h.Command(ctx, argv[0], argv[1:]...)
				var stdout, stderr strings.Builder
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				cancel()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Fatalf("%s %q: %v", b.kind, tc.args, err)
				}
				if ok := err == nil; ok != tc.ok {
					t.Errorf("%s %q: exit ok=%v, want %v\n%s%s", b.kind, tc.args, ok, tc.ok, stdout.String(), stderr.String())
				}
				if tc.out != "" && strings.TrimSpace(stdout.String()) != tc.out {
					t.Errorf("%s %q: printed %q, want %q", b.kind, tc.args, stdout.String(), tc.out)
				}
			}
		}
	})

	// Daemon runs, one binary at a time in the host (they would fight over
	// the VIP otherwise).
	for _, tc := range []struct {
		name string
		args []string
		vrrp bool     // VRRP runs: the VIP is taken
		pids []string // pid files written while it runs
		log  string   // a line the log has, when set
	}{
		{"short clustered", []string{"-nlGD", "-P", "-f", "@CONF@", "-p", "@DIR@/k.pid", "-r", "@DIR@/v.pid"}, true, []string{"k.pid", "v.pid"}, ""},
		{"long", []string{"--dont-fork", "--log-console", "--no-syslog", "--log-detail", "--vrrp", "--use-file=@CONF@", "--pid=@DIR@/k.pid", "--vrrp_pid=@DIR@/v.pid"}, true, []string{"k.pid", "v.pid"}, ""},
		{"facility, config id, dump", []string{"-n", "-l", "-G", "-S", "6", "-P", "-i", "a", "-d", "-f", "@CONF@", "-p", "@DIR@/k.pid", "-r", "@DIR@/v.pid"}, true, []string{"k.pid", "v.pid"}, "VRRP Instance = VI_1"},
		{"checkers only", []string{"-nlG", "-C", "-f", "@CONF@", "-p", "@DIR@/k.pid"}, false, []string{"k.pid"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, b := range bins {
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "keepalived.conf"), []byte(flagsConf), 0o644); err != nil {
					t.Fatal(err)
				}
				p := startFlagged(t, h, b.argv(dir, tc.args...))
				if tc.vrrp {
					waitFor(t, 10*time.Second, b.kind+" to take the VIP", func() bool { return hostHas(h, flagsVIP) })
					waitFor(t, 5*time.Second, b.kind+"'s MASTER line", func() bool {
						return strings.Contains(p.out.String(), "(VI_1) Entering MASTER STATE")
					})
					if !regexp.MustCompile(`\(VI_1\) Entering BACKUP STATE`).MatchString(p.out.String()) {
						t.Errorf("%s: no keepalived-style BACKUP line:\n%s", b.kind, p.out.String())
					}
				} else {
					time.Sleep(1500 * time.Millisecond)
					if hostHas(h, flagsVIP) || strings.Contains(p.out.String(), "Entering MASTER STATE") {
						t.Errorf("%s %s: VRRP ran although only the checkers should\n%s", b.kind, tc.name, p.out.String())
					}
				}
				if tc.log != "" {
					waitFor(t, 5*time.Second, b.kind+"'s log line "+tc.log, func() bool { return strings.Contains(p.out.String(), tc.log) })
				}
				for _, f := range tc.pids {
					waitFor(t, 5*time.Second, b.kind+" to write "+f, func() bool {
						pid, err := readPidFile(filepath.Join(dir, f))
						return err == nil && pid > 0 && syscall.Kill(pid, 0) == nil
					})
				}
				if code := p.stop(t); code != 0 {
					t.Errorf("%s: exit %d after SIGTERM\n%s", b.kind, code, p.out.String())
				}
				for _, f := range tc.pids {
					if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
						t.Errorf("%s: %s left behind after exit (%v)", b.kind, f, err)
					}
				}
				if hostHas(h, flagsVIP) {
					t.Fatalf("%s: VIP left behind after exit", b.kind)
				}
			}
		})
	}

	// A second daemon on the same pid file does not run VRRP beside the
	// first: keepalived says "daemon is already running", vigil exits
	// non-zero naming the pid file.
	t.Run("second daemon", func(t *testing.T) {
		for _, b := range bins {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "keepalived.conf"), []byte(flagsConf), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"-nlG", "-P", "-f", "@CONF@", "-p", "@DIR@/k.pid", "-r", "@DIR@/v.pid"}
			first := startFlagged(t, h, b.argv(dir, args...))
			waitFor(t, 10*time.Second, b.kind+" to take the VIP", func() bool { return hostHas(h, flagsVIP) })
			argv := b.argv(dir, args...)
			if b.kind == "vigil" {
				argv[len(argv)-1] = filepath.Join(dir, "second.sock") // only the pid file is shared
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := h.Command(ctx, argv[0], argv[1:]...).CombinedOutput()
			cancel()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Fatalf("%s: the second daemon kept running\n%s", b.kind, out)
			}
			switch b.kind {
			case "keepalived":
				if !strings.Contains(string(out), "daemon is already running") {
					t.Errorf("keepalived's second start said:\n%s", out)
				}
			case "vigil":
				if err == nil || !strings.Contains(string(out), "pid file "+filepath.Join(dir, "k.pid")+" is held by another vigil") {
					t.Errorf("vigil's second start: err %v, said:\n%s", err, out)
				}
				// The same with only the control socket shared.
				argv = b.argv(dir, "-nlG", "-P", "-f", "@CONF@", "-p", "@DIR@/k2.pid")
				out, err = h.Command(context.Background(), argv[0], argv[1:]...).CombinedOutput()
				if err == nil || !strings.Contains(string(out), "another vigil (pid "+strconv.Itoa(first.cmd.Process.Pid)+") is running with control socket") {
					t.Errorf("vigil on a taken control socket: err %v, said:\n%s", err, out)
				}
			}
			if pid, _ := readPidFile(filepath.Join(dir, "k.pid")); pid != first.cmd.Process.Pid && b.kind == "vigil" {
				t.Errorf("%s: pid file now names %d, want the first daemon %d", b.kind, pid, first.cmd.Process.Pid)
			}
			first.stop(t)
		}
	})
}

type flagged struct {
	cmd  *exec.Cmd
	out  *labtest.Buffer
	done chan struct{}
	err  error
}

func startFlagged(t *testing.T, h *netlab.Host, argv []string) *flagged {
	t.Helper()
	p := &flagged{out: &labtest.Buffer{}, done: make(chan struct{})}
	p.cmd = h.Command(context.Background(), argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := h.Start(p.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("--- %s ---\n%s", strings.Join(argv, " "), p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and returns the exit code (-1 if it had to be killed).
func (p *flagged) stop(t *testing.T) int {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			return -1
		}
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	return 0
}

func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func hostHas(h *netlab.Host, a netip.Addr) bool {
	out, err := h.Run("ip", "-o", "addr", "show")
	return err == nil && strings.Contains(out, " "+a.String()+"/")
}

// `vigil reload` (the unit's ExecReload) waits for the outcome: exit 0 with
// the changes for a good configuration, non-zero with the diagnostics when
// the daemon rejected the new one and kept running the old.
func TestReloadCommand(t *testing.T) {
	t.Parallel()
	requireVRRPLab(t)
	bin := mustVigilBinary(t)
	h := labtest.OneHost(t, "krl")
	n := startNode(t, "vigil", h, flagsConf)
	waitFor(t, 10*time.Second, "vigil to take the VIP", func() bool { return hostHas(h, flagsVIP) })
	reload := func() (int, string, string) {
		cmd := exec.Command(bin, "reload", "-nlD", "--control", n.Ctl)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stdout.String(), stderr.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, stdout.String(), stderr.String()
	}
	n.Write(t, strings.Replace(flagsConf, "priority 150", "priority 160", 1))
	if code, out, errs := reload(); code != 0 || !strings.Contains(out, "updated VI_1") {
		t.Fatalf("good reload: exit %d\n%s%s", code, out, errs)
	}
	n.Write(t, strings.Replace(flagsConf, "61\n", "61;\n", 1))
	code, out, errs := reload()
	if code != 1 || !strings.Contains(errs, "keepalived.conf:8:21: error: virtual_router_id") || !strings.Contains(errs, "rejected") {
		t.Fatalf("bad reload: exit %d, want 1 with the diagnostic\n%s%s", code, out, errs)
	}
	if s, err := n.Status(); err != nil || len(s.Instances) != 1 || s.Instances[0].Priority != 160 || s.Instances[0].State != "MASTER" {
		t.Fatalf("after the rejected reload: %+v, %v", s, err)
	}
	n.Stop()
	if code, _, errs := reload(); code != 1 || !strings.Contains(errs, "no vigil is running") {
		t.Fatalf("reload with no daemon: exit %d: %s", code, errs)
	}
}

// -P runs VRRP without the virtual servers; -C the virtual servers (their
// nftables table, active whatever VRRP does) without VRRP.
func TestVigilHalves(t *testing.T) {
	t.Parallel()
	requireVRRPLab(t, "nft")
	bin := mustVigilBinary(t)
	h := labtest.OneHost(t, "khv")
	conf := flagsConf + `virtual_server 192.0.2.61 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.10 80 {
    weight 1
  }
}
`
	tables := func() string { out, _ := h.Run("nft", "list", "tables"); return out }
	for _, tc := range []struct {
		flag      string
		vrrp, lvs bool
	}{{"-P", true, false}, {"-C", false, true}} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "keepalived.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p := startFlagged(t, h, kbin{"vigil", bin}.argv(dir, "-nlG", tc.flag, "-f", "@CONF@", "-p", "@DIR@/k.pid", "-r", "@DIR@/r.pid", "-c", "@DIR@/c.pid"))
		if tc.lvs {
			waitFor(t, 10*time.Second, "the virtual server's table", func() bool { return strings.Contains(tables(), "table inet vigil\n") })
			if s := tables(); !strings.Contains(s, "table inet vigil") {
				t.Errorf("%s: no table inet vigil:\n%s", tc.flag, s)
			}
		}
		if tc.vrrp {
			waitFor(t, 10*time.Second, "the VIP", func() bool { return hostHas(h, flagsVIP) })
		} else {
			time.Sleep(1500 * time.Millisecond)
			if hostHas(h, flagsVIP) {
				t.Errorf("%s: VRRP took the VIP", tc.flag)
			}
		}
		// The VRRP and checker pid files exist for the half that runs.
		for f, want := range map[string]bool{"r.pid": tc.vrrp, "c.pid": tc.lvs} {
			if want {
				waitFor(t, 5*time.Second, f, func() bool { _, err := readPidFile(filepath.Join(dir, f)); return err == nil })
			} else if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
				t.Errorf("%s: %s written though that half does not run (%v)", tc.flag, f, err)
			}
		}
		if !tc.lvs && strings.Contains(tables(), "table inet vigil\n") {
			t.Errorf("%s: the virtual servers' table exists:\n%s", tc.flag, tables())
		}
		if code := p.stop(t); code != 0 {
			t.Errorf("%s: exit %d\n%s", tc.flag, code, p.out.String())
		}
	}
}

// -b is written once BFD runs (a bfd_instance is configured), --metrics
// serves from the keepalived-style command line; -B refuses a
// configuration that has one rather than run its tracking half blind.
func TestBFDFlags(t *testing.T) {
	t.Parallel()
	requireVRRPLab(t)
	bin := mustVigilBinary(t)
	h := labtest.OneHost(t, "kbf")
	dir := t.TempDir()
	conf := flagsConf + "bfd_instance peer {\n  neighbor_ip 192.0.2.2\n  source_ip 192.0.2.1\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "keepalived.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	vb := kbin{"vigil", bin}
	p := startFlagged(t, h, vb.argv(dir, "-nlG", "-P", "-f", "@CONF@", "-p", "@DIR@/k.pid", "-b", "@DIR@/b.pid", "--metrics", metricsAddr, "-log-level=warn"))
	waitFor(t, 10*time.Second, "the BFD pid file", func() bool {
		pid, err := readPidFile(filepath.Join(dir, "b.pid"))
		return err == nil && pid == p.cmd.Process.Pid
	})
	// vigil's own --metrics and --log-level work in keepalived's command
	// line too (here with -b and -P), so DAEMON_ARGS can turn metrics on.
	waitFor(t, 10*time.Second, "metrics from the keepalived-style invocation", func() bool {
		code, body := scrape(t, h, "/metrics")
		return code == 200 && strings.Contains(body, `vigil_vrrp_state{iname="VI_1"`)
	})
	if code := p.stop(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, p.out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "b.pid")); !os.IsNotExist(err) {
		t.Errorf("b.pid left after exit: %v", err)
	}
	argv := vb.argv(dir, "-nlG", "-B", "-P", "-f", "@CONF@", "-p", "@DIR@/k.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Command(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "-B/--no_bfd, but the configuration has 1 bfd_instance blocks (peer at") {
		t.Fatalf("-B with a bfd_instance: err %v\n%s", err, out)
	}
	if hostHas(h, flagsVIP) {
		t.Fatal("-B with a bfd_instance took the VIP")
	}
}
