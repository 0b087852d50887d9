// Package notify runs keepalived's notify scripts and writes its notify
// FIFOs when VRRP instances and sync groups change state (keepalived.conf(5):
// notify_master, notify_backup, notify_fault, notify_stop, notify_deleted,
// notify, notify_master_rx_lower_pri in vrrp_instance and vrrp_sync_group;
// notify_fifo, vrrp_notify_fifo and their *_script in global_defs).
//
// What keepalived 2.2.7 does, observed by running it in a namespace with
// scripts that log their argv and timing:
//
//   - notify_master/backup/fault/stop run exactly as configured, with no
//     argument added. The generic `notify` gets four more arguments:
//     INSTANCE|GROUP, the name, the state (MASTER, BACKUP, FAULT, STOP,
//     DELETED) and the priority: the effective priority for an instance, 0
//     for a group. `notify` runs for STOP of a group too.
//   - The initial transition to BACKUP at startup is notified.
//   - Each script is forked and not waited for: notify_backup and notify
//     for one transition run at the same time, and a slow script from one
//     transition may still run when the next transition's scripts start.
//     That is why users see scripts act in the wrong order: in
//     TestMatchesKeepalived's log the generic notify of a transition often
//     runs before its notify_master.
//   - FIFO lines are `INSTANCE "VI_1" MASTER 100` / `GROUP "G1" BACKUP 0`,
//     one per event, in order; priority changes (notify_priority_changes)
//     add `INSTANCE "VI_1" BACKUP_PRIORITY 121`. keepalived creates a
//     missing FIFO with mode 0600, owned by the user and group named after
//     its path, leaves it in place when it exits, and starts
//     notify_fifo_script with the FIFO's path appended as the last
//     argument.
//
// Where vigil differs on purpose: scripts for one instance (or group) run
// one at a time, in the order of the transitions, the specific script
// before `notify`; a script starts only after the previous one for the
// same instance has exited. Scripts of different instances still run
// concurrently. Every script has a timeout (Options.Timeout), after which
// its whole process group is killed, so a hung script delays that
// instance's later scripts by at most the timeout and never blocks the
// caller: Notify only queues. A sync group's scripts are ordered among
// themselves, not with its members' scripts.
//
// Scripts run as the Command's user (script_user or the script's own);
// enable_script_security is checked when the configuration is loaded
// (internal/hostenv), not here.
package notify

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"vigil/internal/proc"
)

// Scope says whether an event is about a vrrp_instance or a
// vrrp_sync_group.
type Scope int

// The scopes.
const (
	Instance Scope = iota
	Group
)

// String returns the word keepalived passes to scripts and FIFOs.
func (s Scope) String() string {
	if s == Group {
		return "GROUP"
	}
	return "INSTANCE"
}

// The states an Event may carry. The last three are only written to
// FIFOs (and MasterRxLowerPri runs notify_master_rx_lower_pri).
const (
	StateMaster           = "MASTER"
	StateBackup           = "BACKUP"
	StateFault            = "FAULT"
	StateStop             = "STOP"
	StateDeleted          = "DELETED"
	StateMasterRxLowerPri = "MASTER_RX_LOWER_PRI"
	StateMasterPriority   = "MASTER_PRIORITY"
	StateBackupPriority   = "BACKUP_PRIORITY"
)

// Event is one notification: an instance or group entered State with
// Priority (the effective priority; 0 for a group, as keepalived sends).
type Event struct {
	Scope    Scope
	Name     string
	State    string
	Priority int
}

// FifoLine is the event as keepalived writes it to a notify FIFO, without
// the newline: INSTANCE "VI_1" MASTER 100.
func (e Event) FifoLine() string {
	// The name goes between double quotes as it is, without escaping, as
	// keepalived writes it.
	return e.Scope.String() + ` "` + e.Name + `" ` + e.State + " " + strconv.Itoa(e.Priority)
}

// Args are the four arguments the generic notify script gets appended.
func (e Event) Args() []string {
	return []string{e.Scope.String(), e.Name, e.State, strconv.Itoa(e.Priority)}
}

func (e Event) String() string { return e.FifoLine() }

// Credential is a resolved user and group to run a script as.
type Credential = proc.Credential

// Command is a script to run: the configured line split into words, and
// the user to run it as (its own `username [groupname]`, else script_user;
// nil runs as vigil's own user).
type Command struct {
	Argv []string
	User *Credential
}

// Scripts are the notify scripts of one instance or sync group; nil fields
// are not configured.
type Scripts struct {
	Master, Backup, Fault, Stop, Deleted *Command
	// Any is the generic `notify`, run after the specific one with
	// Event.Args appended.
	Any *Command
	// MasterRxLowerPri is notify_master_rx_lower_pri.
	MasterRxLowerPri *Command
}

// specific returns the notify_* script for a state, and its keyword.
func (s *Scripts) specific(state string) (*Command, string) {
	switch state {
	case StateMaster:
		return s.Master, "notify_master"
	case StateBackup:
		return s.Backup, "notify_backup"
	case StateFault:
		return s.Fault, "notify_fault"
	case StateStop:
		return s.Stop, "notify_stop"
	case StateDeleted:
		return s.Deleted, "notify_deleted"
	case StateMasterRxLowerPri:
		return s.MasterRxLowerPri, "notify_master_rx_lower_pri"
	}
	return nil, ""
}

// takesGeneric reports whether the generic notify runs for a state: the
// transitions, not the FIFO-only events.
func takesGeneric(state string) bool {
	switch state {
	case StateMaster, StateBackup, StateFault, StateStop, StateDeleted:
		return true
	}
	return false
}

// Result is the outcome of one script run, for Options.OnResult.
type Result struct {
	// Event is what the script was run for; zero for Exec.
	Event Event
	// Key is Exec's ordering key; empty for Notify.
	Key string
	// Keyword is the script's keyword: notify_master, ..., notify.
	Keyword string
	Argv    []string
	// Code is the exit code; -1 when it was killed, timed out or could not
	// start.
	Code     int
	TimedOut bool
	Detail   string
	Duration time.Duration
}

// OK reports whether the script exited 0.
func (r Result) OK() bool { return r.Code == 0 }

// DefaultTimeout bounds a notify script when Options.Timeout is zero.
// keepalived has none (it never waits); vigil needs one because scripts of
// an instance run in order.
const DefaultTimeout = 15 * time.Second

// DefaultStopGrace is how long Run keeps running queued scripts after its
// context ends (notify_stop scripts are queued at shutdown).
const DefaultStopGrace = 10 * time.Second

// Options are the Notifier's collaborators and limits.
type Options struct {
	// Logger gets a line per script at Debug, failures at Warn; nil
	// discards.
	Logger *slog.Logger
	// Timeout bounds each script run; zero means DefaultTimeout.
	Timeout time.Duration
	// StopGrace bounds how long Run still runs queued scripts after its
	// context ends; zero means DefaultStopGrace.
	StopGrace time.Duration
	// Env is the scripts' environment; nil inherits vigil's.
	Env []string
	// Fifos receive every event's FifoLine (notify_fifo, vrrp_notify_fifo);
	// the caller opens and runs them.
	Fifos []*Fifo
	// OnResult, if set, receives every script's result (and every script
	// dropped), from the notifier's worker goroutines, never from Notify's
	// caller: it must not block for long.
	OnResult func(Result)
	// MaxQueue bounds the scripts waiting per instance; when a flapping
	// instance outruns a slow script, the oldest waiting ones are dropped
	// (and reported), so the latest transitions still run. Zero means
	// DefaultMaxQueue.
	MaxQueue int
}

// DefaultMaxQueue is the default Options.MaxQueue.
const DefaultMaxQueue = 64

// key orders scripts: one queue per instance, per group, and per Exec
// key (other).
type key struct {
	other bool
	scope Scope
	name  string
}

type job struct {
	ev      Event
	key     string // Exec's ordering key
	keyword string
	cmd     *Command
	args    []string // appended to cmd.Argv
}

// Notifier runs notify scripts in order per instance and writes FIFO lines.
// It is safe for concurrent use.
type Notifier struct {
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	queues  map[key][]job
	dropped map[key][]job // pushed out of a full queue, to report
	active  map[key]bool  // a worker drains this key's queue
	wake    chan struct{}
	stopped bool
}

// New returns a Notifier; it starts nothing.
func New(opt Options) *Notifier {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.StopGrace <= 0 {
		opt.StopGrace = DefaultStopGrace
	}
	if opt.MaxQueue <= 0 {
		opt.MaxQueue = DefaultMaxQueue
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{
		opt:     opt,
		log:     log,
		queues:  map[key][]job{},
		dropped: map[key][]job{},
		active:  map[key]bool{},
		wake:    make(chan struct{}, 1),
	}
}

// Notify writes the event to the FIFOs at once and queues the scripts s
// configures for it (the specific one, then the generic notify). It never
// blocks on a script. Events queued before Run starts wait for it; after
// Run has returned they are dropped with a warning.
func (n *Notifier) Notify(ev Event, s Scripts) {
	for _, f := range n.opt.Fifos {
		f.Send(ev.FifoLine())
	}
	var jobs []job
	if c, kw := s.specific(ev.State); c != nil && len(c.Argv) > 0 {
		jobs = append(jobs, job{ev: ev, keyword: kw, cmd: c})
	}
	if c := s.Any; c != nil && len(c.Argv) > 0 && takesGeneric(ev.State) {
		jobs = append(jobs, job{ev: ev, keyword: "notify", cmd: c, args: ev.Args()})
	}
	if len(jobs) == 0 {
		return
	}
	n.enqueue(key{scope: ev.Scope, name: ev.Name}, jobs)
}

// Exec queues one script that is not a VRRP notify script: notify_up and
// notify_down of a real server, quorum_up and quorum_down of a virtual
// server, ... Scripts with the same orderKey (say, the real server) run
// one at a time in order, with the same timeout, reporting and shutdown
// rules as Notify's. keyword names the script in Results and logs.
func (n *Notifier) Exec(orderKey, keyword string, c Command) {
	if len(c.Argv) == 0 {
		return
	}
	n.enqueue(key{other: true, name: orderKey}, []job{{key: orderKey, keyword: keyword, cmd: &c}})
}

func (n *Notifier) enqueue(k key, jobs []job) {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		n.log.Warn("notify scripts dropped: the notifier has stopped", "script", jobs[0].keyword, "event", jobs[0].what())
		return
	}
	q := append(n.queues[k], jobs...)
	var dropped []job
	if over := len(q) - n.opt.MaxQueue; over > 0 {
		dropped = append(dropped, q[:over]...)
		q = q[over:]
	}
	n.queues[k] = q
	// Reported by the worker, never from here: OnResult may feed the very
	// loop that calls Notify.
	n.dropped[k] = append(n.dropped[k], dropped...)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run starts a worker for each instance with queued scripts until ctx
// ends. Then it stops accepting events, lets the queued scripts run for up
// to StopGrace (so notify_stop scripts queued at shutdown run), kills what
// still runs, reports what was dropped, and returns nil once every script
// has been reaped. A Notifier runs once.
func (n *Notifier) Run(ctx context.Context) error {
	runCtx, cancelRuns := context.WithCancel(context.Background())
	defer cancelRuns()
	var wg sync.WaitGroup
	dispatch := func() {
		n.mu.Lock()
		defer n.mu.Unlock()
		for k, q := range n.queues {
			if len(q) > 0 && !n.active[k] {
				n.active[k] = true
				wg.Go(func() { n.drain(runCtx, k) })
			}
		}
	}
	dispatch()
	for done := false; !done; {
		select {
		case <-n.wake:
			dispatch()
		case <-ctx.Done():
			done = true
		}
	}
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	dispatch() // events queued just before ctx ended
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	waitOrKill(finished, n.opt.StopGrace, func() {
		n.log.Warn("notify scripts still running at shutdown: killing them", "grace", n.opt.StopGrace)
		cancelRuns()
	})
	return nil
}

// waitOrKill waits for done; when grace passes first, it calls kill and
// waits on: how the notifier and the FIFO script stop what they started.
func waitOrKill[T any](done <-chan T, grace time.Duration, kill func()) {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		kill()
		<-done
	}
}

// drain runs k's queued scripts one at a time until the queue is empty.
func (n *Notifier) drain(ctx context.Context, k key) {
	for {
		n.mu.Lock()
		dropped := n.dropped[k]
		delete(n.dropped, k)
		q := n.queues[k]
		if len(q) == 0 {
			delete(n.queues, k)
			delete(n.active, k)
			n.mu.Unlock()
			return
		}
		j := q[0]
		n.queues[k] = q[1:]
		n.mu.Unlock()
		for _, d := range dropped {
			n.log.Warn("notify script dropped: too many waiting for this instance", "script", d.keyword, "event", d.what(), "max", n.opt.MaxQueue)
			n.report(Result{Event: d.ev, Key: d.key, Keyword: d.keyword, Argv: d.argv(), Code: -1, Detail: "dropped: too many scripts waiting"})
		}
		if ctx.Err() != nil {
			n.log.Warn("notify script dropped at shutdown", "script", j.keyword, "event", j.what())
			n.report(Result{Event: j.ev, Key: j.key, Keyword: j.keyword, Argv: j.argv(), Code: -1, Detail: "dropped at shutdown"})
			continue
		}
		n.run(ctx, j)
	}
}

// what names the job's cause in logs.
func (j job) what() string {
	if j.key != "" {
		return j.key
	}
	return j.ev.FifoLine()
}

func (j job) argv() []string {
	return append(append([]string(nil), j.cmd.Argv...), j.args...)
}

func (n *Notifier) run(ctx context.Context, j job) {
	argv := j.argv()
	start := time.Now()
	code, timedOut, detail := runProgram(ctx, argv, n.opt.Timeout, j.cmd.User, n.opt.Env)
	r := Result{Event: j.ev, Key: j.key, Keyword: j.keyword, Argv: argv, Code: code, TimedOut: timedOut, Detail: detail, Duration: time.Since(start)}
	if r.OK() {
		n.log.Debug("notify script ran", "script", j.keyword, "event", j.what(), "command", strings.Join(argv, " "), "took", r.Duration)
	} else {
		n.log.Warn("notify script failed", "script", j.keyword, "event", j.what(), "command", strings.Join(argv, " "), "detail", detail)
	}
	n.report(r)
}

func (n *Notifier) report(r Result) {
	if n.opt.OnResult != nil {
		n.opt.OnResult(r)
	}
}
