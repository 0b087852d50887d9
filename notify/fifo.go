package notify

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FifoConfig is a notify FIFO: notify_fifo or vrrp_notify_fifo (or
// lvs_notify_fifo, through Fifo.Send) with its *_script.
type FifoConfig struct {
	Path string
	// Owner, when set, is given the FIFO if vigil creates it (the
	// `username [groupname]` after the FIFO name).
	Owner *Credential
	// Script, when set, is started by Run with Path appended as its last
	// argument, to read the FIFO.
	Script *Command
	// Env is the script's environment; nil inherits vigil's.
	Env []string
	// ScriptStopGrace is how long the script has to exit after SIGTERM
	// when Run stops; zero means DefaultScriptStopGrace.
	ScriptStopGrace time.Duration
}

// DefaultScriptStopGrace is how long a FIFO script may take to exit after
// SIGTERM before it is killed.
const DefaultScriptStopGrace = 2 * time.Second

// Fifo writes notify lines to a named pipe, in the order Send is called.
// The pipe is held open for reading and writing, so opening never waits
// for a reader and a reader that restarts loses nothing the pipe still
// buffers; writes never block: when the pipe is full (no reader for ~64
// KiB of lines) a line is dropped and counted, since stalling the daemon
// would be worse than losing a notification.
type Fifo struct {
	cfg     FifoConfig
	log     *slog.Logger
	created bool

	mu      sync.Mutex
	fd      int // -1 once closed
	dropped uint64
}

// OpenFifo creates the FIFO if it is missing (mode 0600, owned by
// cfg.Owner if set, as keepalived does with `notify_fifo PATH user group`)
// and opens it. It fails if Path exists and is not a FIFO. It starts
// nothing: Run starts the script.
func OpenFifo(cfg FifoConfig, log *slog.Logger) (*Fifo, error) {
	if cfg.Path == "" {
		return nil, errors.New("notify fifo: empty path")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ScriptStopGrace <= 0 {
		cfg.ScriptStopGrace = DefaultScriptStopGrace
	}
	f := &Fifo{cfg: cfg, log: log.With("fifo", cfg.Path), fd: -1}
	fi, err := os.Lstat(cfg.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := unix.Mkfifo(cfg.Path, 0o600); err != nil {
			return nil, fmt.Errorf("notify fifo %s: create: %w", cfg.Path, err)
		}
		f.created = true
		if o := cfg.Owner; o != nil {
			if err := os.Chown(cfg.Path, int(o.UID), int(o.GID)); err != nil {
				_ = os.Remove(cfg.Path)
				return nil, fmt.Errorf("notify fifo %s: %w", cfg.Path, err)
			}
		}
	case err != nil:
		return nil, fmt.Errorf("notify fifo %s: %w", cfg.Path, err)
	case fi.Mode().Type() != fs.ModeNamedPipe:
		return nil, fmt.Errorf("notify fifo %s exists and is not a FIFO (%v)", cfg.Path, fi.Mode().Type())
	}
	fd, err := unix.Open(cfg.Path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if f.created {
			_ = os.Remove(cfg.Path)
		}
		return nil, fmt.Errorf("notify fifo %s: open: %w", cfg.Path, err)
	}
	f.fd = fd
	return f, nil
}

// Path is the FIFO's path.
func (f *Fifo) Path() string { return f.cfg.Path }

// Send writes line and a newline. A line that does not fit in the pipe, or
// a Send after Run has stopped, is dropped and counted.
func (f *Fifo) Send(line string) {
	b := []byte(line + "\n")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		f.dropped++
		return
	}
	// Lines shorter than PIPE_BUF are written whole or not at all.
	_, err := unix.Write(f.fd, b)
	for errors.Is(err, unix.EINTR) {
		_, err = unix.Write(f.fd, b)
	}
	if err != nil {
		f.dropped++
		// A reader that is gone stays gone for a while: log the first drop
		// and then every hundredth, not every line.
		if f.dropped%100 == 1 {
			f.log.Warn("notify fifo line dropped: no reader is emptying the FIFO", "line", line, "err", err, "dropped", f.dropped)
		}
	}
}

// Dropped is how many lines could not be written.
func (f *Fifo) Dropped() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dropped
}

// Run starts the FIFO script, if any, and waits for ctx to end. Then it
// sends the script SIGTERM (keepalived does the same, and its sample
// script reads the last lines before exiting), kills its process group if
// it has not exited within ScriptStopGrace and closes the FIFO. The FIFO
// stays, as keepalived leaves it, so a reader may outlive a restart. A
// script that fails to start or exits early is
// logged, not fatal: the FIFO still works for other readers.
func (f *Fifo) Run(ctx context.Context) error {
	defer f.close()
	s := f.cfg.Script
	if s == nil || len(s.Argv) == 0 {
		<-ctx.Done()
		return nil
	}
	argv := append(append([]string(nil), s.Argv...), f.cfg.Path)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = f.cfg.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if u := s.User; u != nil && (int(u.UID) != os.Geteuid() || int(u.GID) != os.Getegid()) {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{u.GID}}
	}
	if err := cmd.Start(); err != nil {
		f.log.Error("notify fifo script did not start", "command", argv, "err", err)
		<-ctx.Done()
		return nil
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		f.log.Warn("notify fifo script exited before vigil stopped", "command", argv, "err", err)
		<-ctx.Done()
		return nil
	case <-ctx.Done():
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	waitOrKill(exited, f.cfg.ScriptStopGrace, func() {
		f.log.Warn("notify fifo script ignored SIGTERM: killing it", "grace", f.cfg.ScriptStopGrace)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})
	return nil
}

func (f *Fifo) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd >= 0 {
		_ = unix.Close(f.fd)
		f.fd = -1
	}
}

// Close closes the FIFO without running it, for a caller that opened it
// and then gave up before Run. It is safe after Run.
func (f *Fifo) Close() { f.close() }
