package daemon

import (
	"context"
	"os"
	"syscall"
	"time"
)

// keepalived's signals: SIGHUP reloads; SIGUSR1 writes the data dump,
// SIGUSR2 the stats dump and SigJSON (SIGRTMIN+2, keepalived's JSON signal)
// the JSON dump, each to its keepalived file in Options.DumpDir (dump.go).
// SIGTERM and SIGINT end Run's context (cmd/vigil).
const (
	SigReload = syscall.SIGHUP
	SigData   = syscall.SIGUSR1
	SigStats  = syscall.SIGUSR2
	SigJSON   = syscall.Signal(36)
)

// dumpSignals maps each dump signal to its dump.
var dumpSignals = map[os.Signal]DumpKind{SigData: DumpData, SigStats: DumpStats, SigJSON: DumpJSON}

// serveSignals answers the signals until ctx ends, one at a time, off the
// loop: a dump takes its snapshot on the loop and writes the file from
// here, a reload waits for the loop as the control socket's does.
func (d *Daemon) serveSignals(ctx context.Context, sigs <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-sigs:
			if sig == SigReload {
				d.signalReload(ctx)
				continue
			}
			kind, ok := dumpSignals[sig]
			if !ok {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			path, err := d.Dump(dctx, kind, d.opts.DumpDir)
			cancel()
			if err != nil {
				d.log.Error("dump", "signal", sig.String(), "err", err)
			} else {
				d.log.Info("dump written", "signal", sig.String(), "file", path)
			}
		}
	}
}

// signalReload is SIGHUP's reload, announced to systemd around it.
func (d *Daemon) signalReload(ctx context.Context) {
	if d.opts.OnReloading != nil {
		d.opts.OnReloading(false)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if _, err := d.Reload(rctx); err != nil {
		d.log.Error("reload", "err", err)
	}
	cancel()
	if d.opts.OnReloading != nil {
		d.opts.OnReloading(true)
	}
}
