// Package proc runs the external programs keepalived.conf names —
// vrrp_script, notify scripts, MISC_CHECK — with the rules they share: the
// program leads its own process group, runs as the configured user and
// group, and is killed with its whole group when its timeout expires or
// vigil stops; it is always reaped, so no zombie is left, and a failure to
// start is a result, never an error or a panic.
package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Credential is a resolved user and group to run a program as.
type Credential struct {
	UID, GID uint32
}

// Result is the outcome of one run.
type Result struct {
	// Code is the exit code; -1 when the program was killed, timed out,
	// was cancelled or could not start.
	Code      int
	TimedOut  bool
	Cancelled bool // ctx ended before the program did
	// Detail says what happened in plain words, with the start of the
	// program's stderr when it wrote any: "chk.sh exited 1: db unreachable".
	Detail string
}

// waitDelay bounds how long a finished program's background children may
// hold its stderr open before Wait stops waiting for them.
const waitDelay = time.Second

// StderrExcerpt bounds what a program's stderr may put in a Detail.
const StderrExcerpt = 200

// Run runs argv and waits for it. timeout 0 means none (ctx still
// applies); env nil inherits vigil's environment. Children a program
// leaves running after it exits normally are not killed: a notify script
// may legitimately start a daemon.
func Run(ctx context.Context, argv []string, timeout time.Duration, cred *Credential, env []string) Result {
	if len(argv) == 0 || argv[0] == "" {
		return Result{Code: -1, Detail: "empty command"}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Switching to the identity we already have would still need
	// CAP_SETGID for the group list; an unprivileged vigil runs its
	// programs as itself.
	if cred != nil && (int(cred.UID) != os.Geteuid() || int(cred.GID) != os.Getegid()) {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: cred.UID, Gid: cred.GID, Groups: []uint32{cred.GID}}
	}
	// The negative pid names the process group the program leads.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	var stderr headBuffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The program exited but a child kept stderr open; the program's
		// own status is what counts.
		err = nil
		if !cmd.ProcessState.Success() {
			err = &exec.ExitError{ProcessState: cmd.ProcessState}
		}
	}
	with := func(s string) string {
		if e := stderr.excerpt(); e != "" {
			return s + ": " + e
		}
		return s
	}
	name := argv[0]
	if err != nil && ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Result{Code: -1, TimedOut: true, Detail: with(fmt.Sprintf("%s timed out after %v and was killed", name, timeout))}
		}
		return Result{Code: -1, Cancelled: true, Detail: name + " cancelled"}
	}
	if err == nil {
		return Result{Code: 0, Detail: name + " exited 0"}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		var xe *exec.Error
		if errors.As(err, &xe) {
			err = xe.Err // os/exec repeats the program name
		}
		return Result{Code: -1, Detail: fmt.Sprintf("cannot run %s: %v", name, err)}
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Result{Code: -1, Detail: with(fmt.Sprintf("%s killed by %s", name, unix.SignalName(ws.Signal())))}
	}
	return Result{Code: ee.ExitCode(), Detail: with(fmt.Sprintf("%s exited %d", name, ee.ExitCode()))}
}

// headBuffer keeps the first bytes written to it: a program's first error
// line usually says why.
type headBuffer struct{ b []byte }

func (t *headBuffer) Write(p []byte) (int, error) {
	if room := StderrExcerpt + 1 - len(t.b); room > 0 {
		t.b = append(t.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (t *headBuffer) excerpt() string {
	s := strings.TrimSpace(string(t.b))
	if len(t.b) > StderrExcerpt {
		s = strings.TrimSpace(string(t.b[:StderrExcerpt])) + "..."
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}
