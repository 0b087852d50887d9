package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
	"vigil/internal/version"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"

	"vigil/config"
	"vigil/control"
	"vigil/daemon"
	"vigil/internal/hostenv"
	"vigil/internal/logging"
	"vigil/metrics"
)

// defaultConfig is keepalived's default configuration file.
const defaultConfig = "/etc/keepalived/keepalived.conf"

// defaultPidFile is the pid file of the keepalived-style invocation, as
// /run/keepalived.pid is keepalived's. `vigil run` writes one only with -p:
// its control socket already keeps a second daemon out.
const defaultPidFile = "/run/vigil.pid"

// detachedEnv marks the background child of a keepalived-style start
// without -n.
const detachedEnv = "VIGIL_DETACHED"

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runMain(ctx, false, args, stdout, stderr)
}

// keepalivedCompat runs keepalived's command line (no subcommand), so that
// vigil can replace the binary under an unchanged unit file or init
// script.
func keepalivedCompat(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runMain(ctx, true, args, stdout, stderr)
}

// runMain is `vigil run` (kstyle false) and the keepalived-style
// invocation (kstyle true). They differ only in defaults that keepalived
// users rely on: keepalived style logs to syslog unless -l, writes
// /run/vigil.pid and goes to the background unless -n; `vigil run` stays
// in the foreground and logs to stderr (the journal under systemd).
func runMain(ctx context.Context, kstyle bool, args []string, stdout, stderr io.Writer) int {
	name := "vigil run"
	if kstyle {
		name = "vigil"
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, name+": "+format+"\n", a...)
		return code
	}
	o, err := parseRunArgs(args)
	if err != nil {
		return fail(2, "%v", err)
	}
	switch {
	case o.help:
		usage(stdout)
		fmt.Fprint(stdout, "\n"+optionsHelp)
		return 0
	case o.version:
		return cmdVersion(ctx, nil, stdout, stderr)
	case o.signum != "":
		if strings.EqualFold(o.signum, "STATS_CLEAR") {
			return fail(1, "--signum=STATS_CLEAR is not supported by vigil: its counters are never cleared (rates come from differences, as Prometheus takes them)")
		}
		n, ok := signums[strings.ToUpper(o.signum)]
		if !ok {
			return fail(1, "unknown signal function %q (expected STOP, RELOAD, DATA, STATS or JSON)", o.signum)
		}
		fmt.Fprintln(stdout, n)
		return 0
	case o.genhash:
		return cmdGenhash(ctx, o.rest, stdout, stderr)
	}
	file := o.file
	switch {
	case len(o.args) > 1:
		return fail(2, "unexpected arguments %q: give one configuration file", o.args)
	case len(o.args) == 1 && file != "" && file != o.args[0]:
		return fail(2, "two configuration files given, -f %s and %s: give one", file, o.args[0])
	case len(o.args) == 1:
		file = o.args[0]
	case file == "":
		file = defaultConfig
	}
	if o.test {
		return configTest(ctx, o, file, stdout, stderr)
	}
	level := slog.LevelInfo
	if o.detail {
		level = slog.LevelDebug
	}
	if o.level != "" {
		if err := level.UnmarshalText([]byte(o.level)); err != nil {
			return fail(2, "--log-level %q: expected debug, info, warn or error", o.level)
		}
	}
	lopts := logging.Options{Level: level, Ident: "vigil"}
	switch {
	case o.console && kstyle && !o.noSyslog:
		lopts.Dest = logging.Both // keepalived: -l adds the console to syslog
	case o.console:
		lopts.Dest = logging.Console
	case kstyle && o.noSyslog:
		lopts.Dest = logging.None
	case kstyle || (o.facility != "" && !o.noSyslog):
		lopts.Dest = logging.Syslog
	}
	if o.facility != "" {
		fac, err := logging.ParseFacility(o.facility)
		if err != nil {
			return fail(2, "-S: %v", err)
		}
		lopts.Facility = fac
	}
	umask := -1
	if o.umask != "" {
		m, err := parseUmask(o.umask)
		if err != nil {
			return fail(2, "-u: %v", err)
		}
		umask = m
	}
	if kstyle && !o.dontFork && os.Getenv(detachedEnv) == "" {
		return detach(args, stderr)
	}
	errFile, _ := stderr.(*os.File)
	toConsole := lopts.Dest == logging.Console || lopts.Dest == logging.Both
	lopts.Journal = toConsole && logging.UnderJournal(errFile)
	log, closeLog, err := logging.New(lopts, stderr)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer closeLog()
	// A fatal error is logged once at error level; when the log does not go
	// to this stderr (syslog, or nothing), it is printed there too so the
	// person who started vigil sees it.
	toStderr := !toConsole && !logging.UnderJournal(errFile)
	fatal := func(code int, msg string, attrs ...any) int {
		log.Error(msg, attrs...)
		if toStderr {
			fmt.Fprintln(stderr, append([]any{name + ": " + msg}, attrs...)...)
		}
		return code
	}
	if umask >= 0 {
		syscall.Umask(umask)
	}
	stopTuner, err := setMemoryLimit(o.memoryLimit, log)
	if err != nil {
		return fatal(2, "--memory-limit: "+err.Error())
	}
	defer stopTuner()
	if o.coreDump {
		enableCoreDumps(log)
	}
	if abs, err := filepath.Abs(file); err == nil {
		file = abs
	}
	ctl := control.DefaultPath
	if o.ctlSet {
		ctl = o.control
	}
	pid := o.pidFile
	if pid == "" && kstyle {
		pid = defaultPidFile
	}
	var pids []string
	for _, p := range []struct {
		path string
		runs bool
	}{{pid, true}, {o.vrrpPid, !o.checkOnly || o.vrrpOnly}} {
		if p.path != "" && p.runs && !slices.Contains(pids, p.path) {
			pids = append(pids, p.path)
		}
	}
	release, err := claimDaemon(ctl, pids)
	if err != nil {
		return fatal(1, "not starting: "+err.Error())
	}
	defer release()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var d *daemon.Daemon
	var releaseLate func()
	defer func() {
		if releaseLate != nil {
			releaseLate()
		}
	}()
	var free releaser
	defer free.stop()
	ready := func() {
		_, _ = sdaemon.SdNotify(false, sdaemon.SdNotifyReady)
		free.schedule()
		// -c and -b are written once the health checks and BFD run, as
		// keepalived's checker and BFD children write theirs: only when
		// the configuration has virtual servers or bfd_instance blocks.
		// OnReady runs on the loop, which owns both.
		var late []string
		if o.checkPid != "" && d.Checking() && !slices.Contains(pids, o.checkPid) {
			late = append(late, o.checkPid)
		}
		if o.bfdPid != "" && d.RunsBFD() && !slices.Contains(pids, o.bfdPid) {
			late = append(late, o.bfdPid)
		}
		if len(late) > 0 {
			rel, err := claimDaemon("", late)
			if err != nil {
				log.Error("pid file", "err", err)
			} else {
				releaseLate = rel
			}
		}
		if o.dumpConf {
			// -d: the configuration as running, in the log (keepalived
			// logs its data dump at startup). OnReady runs on the loop,
			// which the dump needs: take it from another goroutine.
			go func() {
				var b strings.Builder
				if err := d.WriteDump(runCtx, daemon.DumpData, &b); err != nil {
					log.Warn("dump configuration", "err", err)
					return
				}
				for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
					log.Info(line)
				}
			}()
		}
	}
	d, err = daemon.New(daemon.Options{
		ConfigFile:     file,
		Env:            func() config.Env { return hostenv.New(o.id) },
		Log:            log,
		ControlPath:    ctl,
		Version:        version.Version,
		NoVRRP:         o.checkOnly && !o.vrrpOnly,
		NoCheckers:     o.vrrpOnly && !o.checkOnly,
		NoBFD:          o.noBFD,
		NoAdvertThread: o.noAdvertThread,
		DontRespawn:    o.dontRespawn,
		OnReady:        ready,
		// SIGHUP's reload, as the unit's Type=notify expects.
		OnReloading: func(done bool) {
			if done {
				_, _ = sdaemon.SdNotify(false, sdaemon.SdNotifyReady)
				free.schedule()
			} else {
				_, _ = sdaemon.SdNotify(false, sdaemon.SdNotifyReloading)
			}
		},
	})
	if err != nil {
		return fatal(2, err.Error())
	}
	log.Info("starting vigil", "version", version.Version, "config", file, "command_line", strings.Join(os.Args, " "))
	if o.metrics != "" {
		ln, err := net.Listen("tcp", o.metrics)
		if err != nil {
			return fatal(2, "--metrics "+o.metrics+": "+err.Error())
		}
		srv := metrics.NewServer(d.Status, d.Alive)
		// A scrape's snapshot and samples (5 MB at 1,000 instances)
		// are garbage once it is written, and they stayed resident until
		// the next scrape: the heap's goal had grown with them, and the
		// runtime's scavenger leaves alone the chunks that were full at
		// the last collection. Handed back 2 s after the last scrape (a
		// collection and a scavenge, a few ms at 1,000 instances against
		// the scrape's own 50-100 ms): docs/benchmarks.md, issue #7.
		scraped := releaser{delay: scrapeRelease}
		defer scraped.stop()
		srv.Scraped = scraped.schedule
		go func() {
			// Serve waits out a lack of descriptors; an error here means
			// the listener is gone, and scrapes with it: say so.
			if err := srv.Serve(ln); !errors.Is(err, metrics.ErrServerClosed) {
				log.Error("--metrics "+o.metrics+": the metrics server stopped", "err", err)
			}
		}()
		defer srv.Close()
	}
	if path := os.Getenv("VIGIL_CPUPROFILE"); path != "" {
		// For developers measuring the daemon in a lab: a CPU profile of
		// the whole run, written at exit.
		if f, err := os.Create(path); err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	if err := d.Run(runCtx); err != nil {
		var ce *daemon.ConfigError
		if errors.As(err, &ce) {
			for _, dg := range ce.Diags {
				// The daemon logged each one; the person at the terminal
				// sees them here when the log goes elsewhere.
				if dg.Severity >= config.Error && toStderr {
					fmt.Fprintln(stderr, dg.String())
				}
			}
		}
		return fatal(1, err.Error())
	}
	return 0
}

// configTest is -t/--config-test[=FILE]: `vigil check`, with its output in
// FILE when one is given (keepalived writes its report there).
func configTest(ctx context.Context, o *runOpts, file string, stdout, stderr io.Writer) int {
	args := []string{"-f", file}
	if o.id != "" {
		args = append(args, "-i", o.id)
	}
	if o.testLog != "" {
		f, err := os.OpenFile(o.testLog, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			fmt.Fprintln(stderr, "vigil: --config-test:", err)
			return exitConfigFatal
		}
		defer f.Close()
		stdout, stderr = f, f
	}
	return cmdCheck(ctx, args, stdout, stderr)
}

// detach starts this command line again in the background, in its own
// session with no terminal, as keepalived does without -n, and returns at
// once. The child's logs go to syslog (or wherever -l/-G say).
func detach(args []string, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "vigil: cannot go to the background:", err)
		return 1
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(stderr, "vigil: cannot go to the background:", err)
		return 1
	}
	defer null.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), detachedEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "vigil: cannot go to the background:", err)
		return 1
	}
	_ = cmd.Process.Release()
	return 0
}

// enableCoreDumps is -m: no limit on core files, and a crash dumps core
// instead of only printing the goroutines.
func enableCoreDumps(log *slog.Logger) {
	lim := syscall.Rlimit{Cur: ^uint64(0), Max: ^uint64(0)}
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &lim); err != nil {
		log.Warn("core dumps: cannot lift the core size limit", "err", err)
	}
	debug.SetTraceback("crash")
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return query{cmd: "status", timeout: 5 * time.Second, jsonHelp: "print the status document as JSON",
		payload: func(r control.Response) any { return r.Status },
		text:    func(w io.Writer, r control.Response) error { return control.WriteStatus(w, *r.Status, time.Now()) },
	}.run(ctx, args, stdout, stderr)
}

func cmdConns(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return query{cmd: "conns", timeout: 10 * time.Second, jsonHelp: "print the connections as JSON",
		payload: func(r control.Response) any { return r.Conns },
		text:    func(w io.Writer, r control.Response) error { return control.WriteConns(w, r.Conns) },
	}.run(ctx, args, stdout, stderr)
}

// query is a command that asks the running daemon one control command and
// prints the answer: `vigil status` and `vigil conns`.
type query struct {
	cmd      string
	timeout  time.Duration
	jsonHelp string
	payload  func(control.Response) any              // what -json prints
	text     func(io.Writer, control.Response) error // what it prints otherwise
}

func (q query) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(q.cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	ctl := fs.String("control", control.DefaultPath, "control socket `path`")
	asJSON := fs.Bool("json", false, q.jsonHelp)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	resp, err := control.Call(cctx, *ctl, control.Request{Cmd: q.cmd})
	if err == nil && *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(q.payload(resp))
		return 0
	}
	if err == nil {
		err = q.text(stdout, resp)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vigil %s: %v\n", q.cmd, err)
		return 1
	}
	return 0
}
