package track

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

// Credential is a resolved user and group to run a script as (the script's
// `user USER [GROUP]`, else script_user); the daemon resolves names.
type Credential struct {
	UID, GID uint32
}

// runResult is the outcome of one run of a program.
type runResult struct {
	Code     int // exit code; -1 when killed, timed out or not started
	TimedOut bool
	Detail   string
}

// waitDelay bounds how long a finished program's background children may
// hold its stderr open before Wait gives up on them.
const waitDelay = time.Second

// stderrExcerpt bounds what a script's stderr may put in a Detail.
const stderrExcerpt = 200

// runProgram runs argv in its own process group and waits for it. When
// timeout expires or ctx ends, the whole group is killed with SIGKILL, so
// children the script started die with it; Wait always reaps, so no zombie
// is left. It never panics and never returns an error: a program that cannot
// start is a result with Code -1.
func runProgram(ctx context.Context, argv []string, timeout time.Duration, cred *Credential, env []string) runResult {
	if len(argv) == 0 || argv[0] == "" {
		return runResult{Code: -1, Detail: "empty command"}
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
	// scripts as itself.
	if cred != nil && (int(cred.UID) != os.Geteuid() || int(cred.GID) != os.Getegid()) {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: cred.UID, Gid: cred.GID, Groups: []uint32{cred.GID}}
	}
	cmd.Cancel = func() error {
		// The negative pid names the process group the script leads.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = waitDelay
	var stderr headBuffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The script exited but a child kept stderr open; the script's own
		// status is what counts.
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
			return runResult{Code: -1, TimedOut: true, Detail: with(fmt.Sprintf("%s timed out after %v and was killed", name, timeout))}
		}
		return runResult{Code: -1, Detail: name + " cancelled"}
	}
	if err == nil {
		return runResult{Code: 0, Detail: name + " exited 0"}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return runResult{Code: -1, Detail: fmt.Sprintf("cannot run %s: %v", name, unwrapExec(err))}
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return runResult{Code: -1, Detail: with(fmt.Sprintf("%s killed by %s", name, unix.SignalName(ws.Signal())))}
	}
	return runResult{Code: ee.ExitCode(), Detail: with(fmt.Sprintf("%s exited %d", name, ee.ExitCode()))}
}

// unwrapExec drops os/exec's repetition of the program name.
func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// headBuffer keeps the first bytes written to it: a script's first error
// line usually says why.
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
