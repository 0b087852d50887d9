package check

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultMiscTimeout applies when misc_timeout is not set. keepalived then
// uses the checker's delay_loop; the caller should pass that, and this is
// only the fallback for a zero value.
const DefaultMiscTimeout = 60 * time.Second

// MiscConfig configures a MISC_CHECK: run a program and judge its exit code.
type MiscConfig struct {
	// Argv is misc_path already split into words by the caller.
	Argv []string
	// Timeout is misc_timeout; when it expires the program's whole process
	// group is killed and the check fails.
	Timeout time.Duration
	// Dynamic is misc_dynamic: exit codes 2-255 mean up with weight code−2.
	Dynamic bool
	// User, when set, is the uid/gid to run as (misc_check's user, else
	// script_user), resolved by the caller.
	User *Credential
	// Env is the environment; nil inherits vigil's.
	Env []string
}

// Credential is a resolved user and group.
type Credential struct {
	UID, GID uint32
}

// Misc is a MISC_CHECK.
type Misc struct {
	cfg MiscConfig
}

// stderrExcerpt bounds what a script's stderr may put in a Detail.
const stderrExcerpt = 200

// NewMisc validates cfg and returns the checker; it runs nothing.
func NewMisc(cfg MiscConfig) (*Misc, error) {
	if len(cfg.Argv) == 0 || cfg.Argv[0] == "" {
		return nil, errors.New("MISC_CHECK: misc_path is empty")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("MISC_CHECK: misc_timeout %v is negative", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultMiscTimeout
	}
	cfg.Argv = append([]string(nil), cfg.Argv...)
	return &Misc{cfg: cfg}, nil
}

func (c *Misc) String() string { return "MISC_CHECK " + strings.Join(c.cfg.Argv, " ") }

// Check runs the program in its own process group and waits for it. Exit 0
// is up, 1 is down; with misc_dynamic 2-255 is up with weight code−2 (without
// it, any non-zero code is down, as in keepalived). A timeout or a
// cancelled ctx kills the whole group with SIGKILL, so children the script
// started in the foreground or background die with it; Wait always reaps.
func (c *Misc) Check(ctx context.Context) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.cfg.Argv[0], c.cfg.Argv[1:]...)
	cmd.Env = c.cfg.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if u := c.cfg.User; u != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: []uint32{u.GID}}
	}
	cmd.Cancel = func() error {
		// Negative pid: the process group the script leads.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A background child that keeps stderr open must not hold Wait after
	// the script itself has exited.
	cmd.WaitDelay = time.Second
	var stderr headBuffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The script exited but left a child holding stderr; its own exit
		// status is what counts.
		err = nil
		if !cmd.ProcessState.Success() {
			err = &exec.ExitError{ProcessState: cmd.ProcessState}
		}
	}
	name := c.cfg.Argv[0]
	withStderr := func(s string) string {
		if e := stderr.excerpt(); e != "" {
			return s + ": " + e
		}
		return s
	}
	if ctx.Err() != nil && err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return down(withStderr(fmt.Sprintf("%s timed out after %v and was killed", name, c.cfg.Timeout)), start)
		}
		return down(name+": cancelled", start)
	}
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return down(fmt.Sprintf("run %s: %s", name, describe(err)), start)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return down(withStderr(fmt.Sprintf("%s killed by %s", name, unix.SignalName(ws.Signal()))), start)
		}
		code = ee.ExitCode()
	}
	switch {
	case code == 0:
		return up(name+" exited 0", start)
	case code >= 2 && c.cfg.Dynamic:
		r := up(fmt.Sprintf("%s exited %d: weight %d", name, code, code-2), start)
		r.Weight = code - 2
		return r
	default:
		return down(withStderr(fmt.Sprintf("%s exited %d", name, code)), start)
	}
}

// headBuffer keeps the first bytes written to it: a script's first error
// line usually says why.
type headBuffer struct {
	b []byte
}

func (t *headBuffer) Write(p []byte) (int, error) {
	if room := stderrExcerpt + 1 - len(t.b); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		t.b = append(t.b, p[:room]...)
	}
	return len(p), nil
}

func (t *headBuffer) excerpt() string {
	s := strings.Join(strings.Fields(string(t.b)), " ")
	if len(t.b) > stderrExcerpt {
		s += "…"
	}
	return s
}
