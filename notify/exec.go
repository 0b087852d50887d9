package notify

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

// waitDelay bounds how long a finished script's background children may
// hold its stderr open before Wait stops waiting for them.
const waitDelay = time.Second

// stderrExcerpt bounds what a script's stderr may put in a Detail.
const stderrExcerpt = 200

// runProgram runs argv in its own process group and waits for it. On
// timeout or when ctx ends the whole group is killed with SIGKILL; Wait
// always reaps. Children the script leaves in the background after exiting
// normally are not killed: a notify script may legitimately start a
// daemon.
func runProgram(ctx context.Context, argv []string, timeout time.Duration, cred *Credential, env []string) (code int, timedOut bool, detail string) {
	if len(argv) == 0 || argv[0] == "" {
		return -1, false, "empty command"
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Switching to the identity we already have would still need
	// CAP_SETGID for the group list; an unprivileged vigil runs its
	// scripts as itself.
	if cred != nil && (int(cred.UID) != os.Geteuid() || int(cred.GID) != os.Getegid()) {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: cred.UID, Gid: cred.GID, Groups: []uint32{cred.GID}}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	var stderr headBuffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
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
			return -1, true, with(fmt.Sprintf("%s timed out after %v and was killed", name, timeout))
		}
		return -1, false, name + " killed at shutdown"
	}
	if err == nil {
		return 0, false, name + " exited 0"
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		var xe *exec.Error
		if errors.As(err, &xe) {
			err = xe.Err
		}
		return -1, false, fmt.Sprintf("cannot run %s: %v", name, err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, false, with(fmt.Sprintf("%s killed by %s", name, unix.SignalName(ws.Signal())))
	}
	return ee.ExitCode(), false, with(fmt.Sprintf("%s exited %d", name, ee.ExitCode()))
}

// headBuffer keeps the first bytes written to it.
type headBuffer struct{ b []byte }

func (t *headBuffer) Write(p []byte) (int, error) {
	if room := stderrExcerpt + 1 - len(t.b); room > 0 {
		t.b = append(t.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (t *headBuffer) excerpt() string {
	s := strings.TrimSpace(string(t.b))
	if len(t.b) > stderrExcerpt {
		s = strings.TrimSpace(string(t.b[:stderrExcerpt])) + "..."
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " ..."
	}
	return s
}

// RunScript runs c once and waits for it, with the rules of notify scripts
// (own process group, killed with its group after timeout or when ctx ends,
// always reaped): for startup_script and shutdown_script. A zero timeout
// means DefaultTimeout.
func RunScript(ctx context.Context, c Command, timeout time.Duration, env []string) Result {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	code, timedOut, detail := runProgram(ctx, c.Argv, timeout, c.User, env)
	return Result{Argv: append([]string(nil), c.Argv...), Code: code, TimedOut: timedOut, Detail: detail, Duration: time.Since(start)}
}
