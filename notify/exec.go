package notify

import (
	"context"
	"time"

	"vigil/internal/proc"
)

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

// runProgram runs a notify script with the rules every external program
// of vigil follows (package proc); a script cut short by shutdown is said
// to be killed at shutdown.
func runProgram(ctx context.Context, argv []string, timeout time.Duration, cred *Credential, env []string) (code int, timedOut bool, detail string) {
	r := proc.Run(ctx, argv, timeout, cred, env)
	if r.Cancelled {
		r.Detail = argv[0] + " killed at shutdown"
	}
	return r.Code, r.TimedOut, r.Detail
}
