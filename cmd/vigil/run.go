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
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"
	"vigil/internal/version"

	sdaemon "github.com/coreos/go-systemd/v22/daemon"

	"vigil/config"
	"vigil/control"
	"vigil/daemon"
	"vigil/internal/hostenv"
	"vigil/metrics"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "/etc/keepalived/keepalived.conf", "configuration `file`")
	id := fs.String("i", "", "config `id` for @ID lines (default: short hostname)")
	ctl := fs.String("control", control.DefaultPath, "control socket `path` (empty: none)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	metricsAddr := fs.String("metrics", "", "serve Prometheus metrics on `addr` (e.g. 127.0.0.1:9650)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "vigil run: -log-level %q: expected debug, info, warn or error\n", *level)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	if abs, err := filepath.Abs(*file); err == nil {
		*file = abs
	}
	d, err := daemon.New(daemon.Options{
		ConfigFile:  *file,
		Env:         func() config.Env { return hostenv.New(*id) },
		Log:         log,
		ControlPath: *ctl,
		Version:     version.Version,
		OnReady:     func() { _, _ = sdaemon.SdNotify(false, sdaemon.SdNotifyReady) },
	})
	if err != nil {
		fmt.Fprintln(stderr, "vigil run:", err)
		return 2
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-hup:
				_, _ = sdaemon.SdNotify(false, sdaemon.SdNotifyReloading)
				rctx, rcancel := context.WithTimeout(runCtx, 30*time.Second)
				if _, err := d.Reload(rctx); err != nil {
					log.Error("reload", "err", err)
				}
				rcancel()
				_, _ = sdaemon.SdNotify(false, sdaemon.SdNotifyReady)
			}
		}
	}()
	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			fmt.Fprintf(stderr, "vigil run: -metrics %s: %v\n", *metricsAddr, err)
			return 2
		}
		srv := &http.Server{Handler: metrics.Handler(d.Status), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
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
				if dg.Severity >= config.Error {
					fmt.Fprintln(stderr, dg.String())
				}
			}
		}
		fmt.Fprintln(stderr, "vigil run:", err)
		return 1
	}
	return 0
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ctl := fs.String("control", control.DefaultPath, "control socket `path`")
	asJSON := fs.Bool("json", false, "print the status document as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := control.Call(cctx, *ctl, control.Request{Cmd: "status"})
	if err != nil {
		fmt.Fprintln(stderr, "vigil status:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(resp.Status)
		return 0
	}
	if err := control.WriteStatus(stdout, *resp.Status, time.Now()); err != nil {
		fmt.Fprintln(stderr, "vigil status:", err)
		return 1
	}
	return 0
}

func cmdConns(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ctl := fs.String("control", control.DefaultPath, "control socket `path`")
	asJSON := fs.Bool("json", false, "print the connections as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := control.Call(cctx, *ctl, control.Request{Cmd: "conns"})
	if err != nil {
		fmt.Fprintln(stderr, "vigil conns:", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(resp.Conns)
		return 0
	}
	if err := control.WriteConns(stdout, resp.Conns); err != nil {
		fmt.Fprintln(stderr, "vigil conns:", err)
		return 1
	}
	return 0
}
