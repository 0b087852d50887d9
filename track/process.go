package track

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Process is a vrrp_track_process. Weights belong to the instances that
// follow it (Ref).
type Process struct {
	Name string
	// Argv is the `process` line: the process name, then parameters.
	Argv []string
	// ParamMatch is "", "partial" or "initial" (param_match).
	ParamMatch string
	// FullCommand matches the command line even without parameters.
	FullCommand bool
	// Quorum is the minimum number of matching processes; 0 means 1.
	Quorum int
	// QuorumMax is the maximum; -1 means none (as config.TrackProcess
	// has it). Beware that 0 is a maximum of 0.
	QuorumMax int
	// ForkDelay: how long the quorum must hold before it counts as gained;
	// TerminateDelay: how long it must be lost before it counts as lost.
	ForkDelay, TerminateDelay time.Duration
}

// ProcInfo is what matching needs to know of a process.
type ProcInfo struct {
	Comm string   // /proc/PID/comm: the name, truncated to 15 bytes
	Argv []string // /proc/PID/cmdline, nil if not read
}

// needsCmdline reports whether matching p reads the command line.
func (p *Process) needsCmdline() bool {
	return p.FullCommand || len(p.Argv) > 1 || p.ParamMatch != ""
}

// Matches reports whether a process matches p, by keepalived 2.2.7's rules
// (found by running it against processes started for the purpose): without
// parameters, param_match or full_command, the name must equal the process
// name (comm) exactly, so a name longer than the kernel's 15 bytes never
// matches and "ssh" does not match sshd. Otherwise the command line is
// used: its first word must equal the name exactly (no path lookup:
// "/bin/sleep" does not match a process started as "sleep"), and then:
//   - no parameters and no param_match: any parameters;
//   - parameters, no param_match: exactly those parameters;
//   - partial: the configured parameters first, more allowed;
//   - initial: as partial, except that the last configured parameter need
//     only be a prefix of the process's ("100" matches "1001").
func (p *Process) Matches(pi ProcInfo) bool {
	if len(p.Argv) == 0 {
		return false
	}
	if !p.needsCmdline() {
		return pi.Comm == p.Argv[0]
	}
	if len(pi.Argv) == 0 || pi.Argv[0] != p.Argv[0] {
		return false
	}
	want, have := p.Argv[1:], pi.Argv[1:]
	switch p.ParamMatch {
	case "":
		if len(want) == 0 {
			return true
		}
		return slicesEqual(want, have)
	case "partial":
		return len(have) >= len(want) && slicesEqual(want, have[:len(want)])
	case "initial":
		if len(want) == 0 {
			return true
		}
		n := len(want) - 1
		return len(have) >= len(want) && slicesEqual(want[:n], have[:n]) && strings.HasPrefix(have[n], want[n])
	}
	return false
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// QuorumOK reports whether count processes satisfy p: at least Quorum and,
// with a maximum, at most QuorumMax. A maximum below the quorum lowers the
// quorum (keepalived 2.2.7 with quorum_max 0 and the default quorum is OK
// when no process runs).
func (p *Process) QuorumOK(count int) bool {
	q := max(p.Quorum, 1)
	if p.QuorumMax >= 0 {
		q = min(q, p.QuorumMax)
		return count >= q && count <= p.QuorumMax
	}
	return count >= q
}

// QuorumState applies fork_delay and terminate_delay to a process's
// quorum: a change is reported once it has held for the delay; the first
// observation is reported at once. The zero value is ready to use.
type QuorumState struct {
	reported, ok bool
	pending      bool
	since        time.Time
}

// Observe records whether the quorum holds at now and reports whether the
// verdict changed (the first observation is a change).
func (q *QuorumState) Observe(now time.Time, ok bool, forkDelay, terminateDelay time.Duration) bool {
	if !q.reported {
		q.reported, q.ok, q.pending = true, ok, false
		return true
	}
	if ok == q.ok {
		q.pending = false
		return false
	}
	if !q.pending {
		q.pending, q.since = true, now
	}
	delay := terminateDelay
	if ok {
		delay = forkDelay
	}
	if now.Sub(q.since) < delay {
		return false
	}
	q.ok, q.pending = ok, false
	return true
}

// OK is the current verdict.
func (q *QuorumState) OK() bool { return q.ok }

// DefaultProcessScan is how often ProcessWatcher scans /proc.
const DefaultProcessScan = time.Second

// ProcessWatcher counts the processes matching each vrrp_track_process by
// scanning /proc every Scan. keepalived instead scans once and then follows
// the kernel's process events connector; that connector only works in the
// initial network namespace (keepalived in a namespace logs "Failed to
// set/clear process event listen" and never counts a process), needs
// CAP_NET_ADMIN, and is not needed at the scale vigil runs at: a scan reads
// one small file per process (plus the command line for trackers that
// match on it) and the delays bound how fast a verdict may change anyway.
// Zombies and kernel threads are not counted.
type ProcessWatcher struct {
	procs  []Process
	report func(Event)
	log    *slog.Logger
	// Proc is the proc file system's mount point; empty means /proc.
	Proc string
	// Scan is the period of scans; zero means DefaultProcessScan.
	Scan time.Duration
}

// NewProcessWatcher validates the trackers and returns a watcher; it starts
// nothing. report receives every tracker's first verdict and every change,
// from the watcher's goroutine; Event.Value is the count of matching
// processes.
func NewProcessWatcher(procs []Process, report func(Event), log *slog.Logger) (*ProcessWatcher, error) {
	if report == nil {
		return nil, errors.New("track: process watcher needs a report function")
	}
	err := checkTrackers("vrrp_track_process", procs, func(p Process) string { return p.Name }, func(p Process) error {
		switch {
		case len(p.Argv) == 0 || p.Argv[0] == "":
			return fmt.Errorf("track: vrrp_track_process %s has no process", p.Name)
		case p.ParamMatch != "" && p.ParamMatch != "partial" && p.ParamMatch != "initial":
			return fmt.Errorf("track: vrrp_track_process %s: param_match %q: expected partial or initial", p.Name, p.ParamMatch)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ProcessWatcher{procs: append([]Process(nil), procs...), report: report, log: orDiscard(log)}, nil
}

// Run scans at once, then every Scan until ctx ends.
func (w *ProcessWatcher) Run(ctx context.Context) error {
	if len(w.procs) == 0 {
		return idle(ctx)
	}
	scan := period(w.Scan, DefaultProcessScan)
	states := make([]QuorumState, len(w.procs))
	tick := time.NewTicker(scan)
	defer tick.Stop()
	for {
		counts, err := w.Count()
		if err != nil {
			// Without /proc nothing can be said; keep the verdicts.
			w.log.Warn("track_process: scan failed", "err", err)
		} else {
			now := time.Now()
			for i := range w.procs {
				p := &w.procs[i]
				ok := p.QuorumOK(counts[i])
				if states[i].Observe(now, ok, p.ForkDelay, p.TerminateDelay) {
					detail := fmt.Sprintf("%d processes match %s", counts[i], strings.Join(p.Argv, " "))
					w.log.Info("track_process changed", "process", p.Name, "ok", ok, "detail", detail)
					w.report(Event{Kind: KindProcess, Name: p.Name, OK: ok, Value: counts[i], Detail: detail})
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Count scans the proc file system once and returns, for each tracker in
// order, the number of processes matching it.
func (w *ProcessWatcher) Count() ([]int, error) {
	root := w.Proc
	if root == "" {
		root = "/proc"
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	cmdline := false
	for i := range w.procs {
		cmdline = cmdline || w.procs[i].needsCmdline()
	}
	counts := make([]int, len(w.procs))
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		dir := filepath.Join(root, e.Name())
		pi, ok := readProc(dir, cmdline)
		if !ok {
			continue // gone, a zombie or a kernel thread
		}
		for i := range w.procs {
			if w.procs[i].Matches(pi) {
				counts[i]++
			}
		}
	}
	return counts, nil
}

// pfKthread is the kernel's PF_KTHREAD flag in /proc/PID/stat.
const pfKthread = 0x00200000

// readProc reads a process's name from stat (which also says whether it is
// a zombie or a kernel thread) and, if asked, its command line.
func readProc(dir string, cmdline bool) (ProcInfo, bool) {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return ProcInfo{}, false
	}
	// "pid (comm) S ppid ...": comm may hold spaces and parentheses, so
	// it ends at the last ')'.
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open {
		return ProcInfo{}, false
	}
	pi := ProcInfo{Comm: string(stat[open+1 : end])}
	f := strings.Fields(string(stat[end+1:]))
	// After comm: state(0) ppid pgrp session tty_nr tpgid flags(6).
	if len(f) < 7 || f[0] == "Z" || f[0] == "X" {
		return ProcInfo{}, false
	}
	if flags, err := strconv.ParseUint(f[6], 10, 64); err == nil && flags&pfKthread != 0 {
		return ProcInfo{}, false
	}
	if cmdline {
		b, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			return ProcInfo{}, false
		}
		b = bytes.TrimSuffix(b, []byte{0})
		if len(b) > 0 {
			pi.Argv = strings.Split(string(b), "\x00")
		}
	}
	return pi, true
}
