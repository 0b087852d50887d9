package daemon

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"vigil/check"
	"vigil/control"
	"vigil/notify"
)

// The real edges whose code has no package of its own (edges.go): the
// scheduling of vigil's threads, signals, the dump files, the control
// socket's server (package control), the notifier (package notify's
// scripts and FIFOs together) and the user lookup. The rest of the daemon
// reaches the host only through edges (TestHostOnlyThroughEdges).

// hostThreads are the process's own threads, from /proc/self/task.
type hostThreads struct{}

// LockMemory is vrrp_no_swap / bfd_no_swap. MCL_ONFAULT locks pages as
// they are touched instead of populating every mapping (the Go heap
// reserves far more address space than it uses).
func (hostThreads) LockMemory() error {
	return unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
}

// List returns the ids of the process's threads.
func (hostThreads) List() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// SetRT puts a thread in SCHED_RR at prio, with SCHED_RESET_ON_FORK so
// that the programs vigil runs start in normal scheduling.
func (hostThreads) SetRT(tid, prio int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR, Priority: uint32(prio), Flags: unix.SCHED_FLAG_RESET_ON_FORK}
	return unix.SchedSetAttr(tid, &attr, 0)
}

// SetNice gives a thread a nice value.
func (hostThreads) SetNice(tid, nice int) error {
	return unix.Setpriority(unix.PRIO_PROCESS, tid, nice)
}

// notifySignals delivers sigs on the channel it returns until stop.
func notifySignals(sigs ...os.Signal) (<-chan os.Signal, func()) {
	c := make(chan os.Signal, 4)
	signal.Notify(c, sigs...)
	return c, func() { signal.Stop(c) }
}

// writeFileAtomic writes path whole through write: into a new file
// beside it (mode 0600, os.CreateTemp's), then renamed over it, so a
// reader never sees half a file and a symlink planted at path is
// replaced, never followed.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// serveControl serves the control socket (package control) at path.
func serveControl(ctx context.Context, path string, h control.Handler, log *slog.Logger) error {
	return (&control.Server{Path: path, Handler: h, Log: log}).Run(ctx)
}

// lookupCredential is a user's (and group's) ids on this host.
func lookupCredential(user, group string) (*check.Credential, error) {
	c, err := notify.LookupCredential(user, group)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// hostNotifier is the real notifier edge: a notify.Notifier and the FIFOs
// it writes, run together.
type hostNotifier struct {
	*notify.Notifier
	fifos []*notify.Fifo
	log   *slog.Logger
}

func newHostNotifier(fifos []notify.FifoConfig, log *slog.Logger, onResult func(notify.Result)) notifier {
	n := &hostNotifier{log: log}
	for _, fc := range fifos {
		f, err := notify.OpenFifo(fc, log)
		if err != nil {
			log.Error("notify FIFO not opened", "fifo", fc.Path, "err", err)
			continue
		}
		n.fifos = append(n.fifos, f)
	}
	n.Notifier = notify.New(notify.Options{Logger: log, Fifos: n.fifos, OnResult: onResult})
	return n
}

// Run runs the FIFOs' writers and the scripts until ctx ends (and the
// scripts' stop grace is over).
func (n *hostNotifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range n.fifos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.Run(ctx); err != nil {
				n.log.Error("notify FIFO", "fifo", f.Path(), "err", err)
			}
		}()
	}
	err := n.Notifier.Run(ctx)
	wg.Wait()
	return err
}
