package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"vigil/control"
)

// claimDaemon makes sure this is the only daemon on its control socket and
// pid files, before anything touches the network: two daemons on one
// configuration would run VRRP twice. Each is held with an flock for the
// life of the process, so a crashed daemon's leftovers never block a
// restart. The pid files get this process's pid (the daemon runs VRRP and
// the checks, so keepalived's parent, VRRP and checker pid files all name
// it; the BFD pid file too, the BFD process being its child) and are
// removed by release.
func claimDaemon(ctl string, pids []string) (_ func(), err error) {
	var held []*os.File
	var remove []string
	release := func() {
		for _, p := range remove {
			_ = os.Remove(p)
		}
		for _, f := range held {
			_ = f.Close()
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	if ctl != "" {
		// The socket itself answers only once the daemon runs, so the lock
		// sits beside it; an older daemon without the lock still answers.
		f, other, err := lockFile(ctl + ".lock")
		if err != nil {
			return nil, fmt.Errorf("control socket %s: %w", ctl, err)
		}
		if f == nil {
			return nil, fmt.Errorf("another vigil%s is running with control socket %s (give this one another --control, or stop that one)", pidSuffix(other), ctl)
		}
		held = append(held, f)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, cerr := control.Call(ctx, ctl, control.Request{Cmd: "status"})
		cancel()
		if cerr == nil && r.Status != nil {
			return nil, fmt.Errorf("another vigil%s is running with control socket %s", pidSuffix(r.Status.PID), ctl)
		}
		writePid(f)
	}
	for _, p := range pids {
		f, other, err := lockFile(p)
		if err != nil {
			return nil, fmt.Errorf("pid file %s: %w", p, err)
		}
		if f == nil {
			return nil, fmt.Errorf("pid file %s is held by another vigil%s", p, pidSuffix(other))
		}
		held = append(held, f)
		// keepalived does not lock its pid files: one that names a live
		// keepalived (or vigil) is in use too.
		if prev := readPid(f); prev > 0 && prev != os.Getpid() {
			if comm := procName(prev); comm == "keepalived" || comm == "vigil" {
				return nil, fmt.Errorf("pid file %s names running process %d (%s)", p, prev, comm)
			}
		}
		if err := writePid(f); err != nil {
			return nil, fmt.Errorf("pid file %s: %w", p, err)
		}
		remove = append(remove, p)
	}
	return release, nil
}

// lockFile opens path and takes an exclusive flock on it. It returns a nil
// file and the pid written in it when another process holds the lock.
func lockFile(path string) (*os.File, int, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, 0, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, 0, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid := readPid(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, pid, nil
		}
		return nil, 0, err
	}
	return f, 0, nil
}

func readPid(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil {
		return 0
	}
	return pid
}

func writePid(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

func procName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func pidSuffix(pid int) string {
	if pid <= 0 {
		return ""
	}
	return " (pid " + strconv.Itoa(pid) + ")"
}
