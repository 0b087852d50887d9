package check

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"vigil/internal/proc"
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
type Credential = proc.Credential

// Misc is a MISC_CHECK.
type Misc struct {
	cfg MiscConfig
}

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
	r := proc.Run(ctx, c.cfg.Argv, c.cfg.Timeout, c.cfg.User, c.cfg.Env)
	name := c.cfg.Argv[0]
	switch {
	case r.Cancelled:
		return down(name+": cancelled", start)
	case r.Code == 0:
		return up(r.Detail, start)
	case r.Code >= 2 && c.cfg.Dynamic:
		res := up(fmt.Sprintf("%s exited %d: weight %d", name, r.Code, r.Code-2), start)
		res.Weight = r.Code - 2
		return res
	}
	return down(r.Detail, start)
}
