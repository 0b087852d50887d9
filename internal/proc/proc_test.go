package proc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		argv   []string
		code   int
		detail string
	}{
		{"success", sh("exit 0"), 0, "/bin/sh exited 0"},
		{"exit code and stderr", sh("echo 'db unreachable' >&2; exit 3"), 3, "/bin/sh exited 3: db unreachable"},
		{"only the first stderr line", sh("printf 'one\\ntwo\\n' >&2; exit 1"), 1, "exited 1: one ..."},
		{"killed by a signal", sh("kill -TERM $$"), -1, "killed by SIGTERM"},
		{"missing program", []string{"/nonexistent/vigil-script"}, -1, "cannot run /nonexistent/vigil-script: "},
		{"empty", nil, -1, "empty command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Run(context.Background(), tc.argv, 5*time.Second, nil, nil)
			if r.Code != tc.code || !strings.Contains(r.Detail, tc.detail) || r.TimedOut || r.Cancelled {
				t.Fatalf("Run = %+v, want code %d and detail containing %q", r, tc.code, tc.detail)
			}
		})
	}
}

// A timeout kills the program and the children it started, and reaps them.
func TestRunTimeoutKillsTheGroup(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "child.pid")
	start := time.Now()
	r := Run(context.Background(), sh("sleep 60 & echo $! > "+pidfile+"; echo waiting >&2; wait"), 300*time.Millisecond, nil, nil)
	if !r.TimedOut || r.Code != -1 || !strings.Contains(r.Detail, "timed out after 300ms and was killed: waiting") {
		t.Fatalf("Run = %+v", r)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &pid); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("the background child %d survived the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	r := Run(ctx, sh("sleep 60"), 0, nil, nil)
	if !r.Cancelled || r.TimedOut || r.Code != -1 {
		t.Fatalf("Run = %+v, want cancelled", r)
	}
}

// Asking to run as ourselves needs no privilege.
func TestRunAsSelf(t *testing.T) {
	me := &Credential{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}
	if r := Run(context.Background(), sh("exit 0"), time.Second, me, nil); r.Code != 0 {
		t.Fatalf("Run = %+v", r)
	}
}
