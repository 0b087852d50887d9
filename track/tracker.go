package track

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// Config is every tracker of a configuration, mapped from keepalived.conf
// by the daemon.
type Config struct {
	Scripts    []Script
	Files      []File
	Processes  []Process
	Interfaces []string // names of tracked interfaces
	// Namespace is where interfaces are watched; nil is vigil's own.
	Namespace *netns.NsHandle
	Logger    *slog.Logger
}

// Tracker runs the watchers of a Config together.
type Tracker struct {
	scripts *ScriptRunner
	files   *FileWatcher
	procs   *ProcessWatcher
	ifaces  *InterfaceWatcher
	log     *slog.Logger
}

// checkTrackers is the validation every watcher's constructor shares: each
// tracker of kind (vrrp_script, track_file...) has a name, used once, and
// no problem its kind's own check finds (problem returns nil when none).
// The errors are joined.
func checkTrackers[T any](kind string, trackers []T, name func(T) string, problem func(T) error) error {
	seen := map[string]bool{}
	var errs []error
	for _, t := range trackers {
		n := name(t)
		switch {
		case n == "":
			errs = append(errs, fmt.Errorf("track: %s without a name", kind))
		case seen[n]:
			errs = append(errs, fmt.Errorf("track: %s %s defined twice", kind, n))
		default:
			if err := problem(t); err != nil {
				errs = append(errs, err)
			}
		}
		seen[n] = true
	}
	return errors.Join(errs...)
}

// period is a watcher's configured period d, or def when d is zero (or
// negative).
func period(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// idle is the Run of a watcher with nothing to watch: it returns when ctx
// ends.
func idle(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// orDiscard is log, or when nil a logger that drops everything.
func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// New validates cfg and builds the watchers; it starts nothing. report
// receives every Event, from the watchers' goroutines, possibly
// concurrently: it must be safe for that and must not block for long
// (hand the event to the daemon's loop, which keeps Results).
func New(cfg Config, report func(Event)) (*Tracker, error) {
	log := orDiscard(cfg.Logger)
	t := &Tracker{log: log}
	var errs []error
	var err error
	if t.scripts, err = NewScriptRunner(cfg.Scripts, report, log); err != nil {
		errs = append(errs, err)
	}
	if t.files, err = NewFileWatcher(cfg.Files, report, log); err != nil {
		errs = append(errs, err)
	}
	if t.procs, err = NewProcessWatcher(cfg.Processes, report, log); err != nil {
		errs = append(errs, err)
	}
	if t.ifaces, err = NewInterfaceWatcher(cfg.Interfaces, cfg.Namespace, report, log); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// Run runs every watcher until ctx ends and returns when all have stopped.
// A watcher that fails is logged and the others go on; Run returns the
// failures joined.
func (t *Tracker) Run(ctx context.Context) error {
	runs := []struct {
		name string
		run  func(context.Context) error
	}{
		{"vrrp_script", t.scripts.Run},
		{"track_file", t.files.Run},
		{"track_process", t.procs.Run},
		{"track_interface", t.ifaces.Run},
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, r := range runs {
		wg.Go(func() {
			if err := r.run(ctx); err != nil {
				t.log.Error("tracker stopped", "tracker", r.name, "err", err)
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
