package link

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"vigil/bfd"
	"vigil/bfd/wire"
	"vigil/internal/childproc"
)

// ChildArg is the hidden subcommand that makes the vigil binary the BFD
// process (cmd/vigil runs Serve for it); ChildDebugArg follows it when the
// daemon logs at debug level.
const (
	ChildArg      = "_bfd"
	ChildDebugArg = "debug"
)

// ErrNotRespawned is what Run returns when the BFD process died and
// NoRespawn forbids starting it again.
var ErrNotRespawned = errors.New("the BFD process exited and --dont-respawn forbids starting it again")

// restartDelay is how long a Process waits before starting a BFD process
// that died (or failed to start) again.
const restartDelay = 500 * time.Millisecond

// Process is the daemon's handle on the BFD process: the same methods as a
// Runner (the daemon uses either), with the sessions run by a Runner in a
// child process (Serve) that the daemon talks to over a socketpair
// (proto.go). It is keepalived's shape (a BFD child process): the child
// runs nothing but BFD, with GOMAXPROCS 1, its goroutine parked in the
// runtime's poller, and bfd_priority / bfd_rt_priority / bfd_process_name
// applied to all of its threads, so neither the daemon's goroutines nor
// its runtime's housekeeping wake it or compete with it, and its
// scheduling is the process's, not one thread's (docs/architecture.md has
// the measurements that chose it).
//
// The child dies with the daemon (PDEATHSIG, and it exits when the
// daemon's end of the socket closes), silently: its peers get AdminDown
// only when Run's ctx ends (stop) or Configure removes their session,
// never when the daemon died (Serve); a child that dies on its own is
// reported (its sessions Down, as a local AdminDown: no bfd_takeover) and
// started again after restartDelay with the same scheduling and sessions,
// unless NoRespawn is set.
type Process struct {
	// NoRespawn is keepalived's --dont-respawn: a BFD process that dies
	// is not started again, and Run returns ErrNotRespawned (keepalived
	// then stops, and so does vigil's daemon). Set before Run.
	NoRespawn bool

	log *slog.Logger
	// command makes the child's command (fd 3 is added); nil runs this
	// executable with ChildArg.
	command func() *exec.Cmd

	// cmu serialises configuration: a Configure and the replay to a
	// restarted child.
	cmu sync.Mutex

	mu       sync.Mutex
	h        *childproc.Child // the running child; nil while none
	ready    chan struct{}
	isReady  bool
	want     []Session
	wantSet  bool
	sched    Scheduling
	schedSet bool
	up       map[string]bool
	subs     map[string]map[int]func(Event)
	nextSub  int
	last     statusBody // the latest status the child gave
	handoff  time.Duration
	restarts uint64
	pid      int
}

// NewProcess returns a Process; Run starts the child.
func NewProcess(log *slog.Logger) *Process {
	return NewProcessCommand(log, nil)
}

// NewProcessCommand is NewProcess with the child's command made by cmd
// (tests run their own binary, in a namespace).
func NewProcessCommand(log *slog.Logger, cmd func() *exec.Cmd) *Process {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Process{log: log, command: cmd, ready: make(chan struct{}), up: map[string]bool{}, subs: map[string]map[int]func(Event){}}
}

// Run starts the BFD process and keeps one running until ctx ends; then
// it stops it (its peers get AdminDown) and returns nil. With NoRespawn it
// returns ErrNotRespawned as soon as the BFD process is gone.
func (p *Process) Run(ctx context.Context) error {
	// PDEATHSIG is sent when the thread that started the child ends, not
	// the process: start every child from this thread, kept until Run
	// returns (and then ended with the goroutine, the child stopped).
	runtime.LockOSThread()
	defer p.markReady()
	for {
		h, err := p.spawn()
		if err == nil {
			err = p.replay(h)
			if err != nil {
				h.Kill()
			}
		}
		p.markReady()
		if err == nil {
			select {
			case <-ctx.Done():
				p.stop(h)
				return nil
			case <-h.Gone():
			}
			h.Kill() // one that closed its socket is of no use
			err = errors.New("the BFD process exited")
		}
		p.lost(err, !p.NoRespawn)
		if p.NoRespawn {
			return fmt.Errorf("%w: %v", ErrNotRespawned, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(restartDelay):
		}
	}
}

func (p *Process) markReady() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.isReady {
		p.isReady = true
		close(p.ready)
	}
}

// spawn starts a child; its reader runs until the socket ends.
func (p *Process) spawn() (*childproc.Child, error) {
	var cmd *exec.Cmd
	if p.command != nil {
		cmd = p.command()
	} else {
		// The running binary, even if a package upgrade replaced the file.
		args := []string{ChildArg}
		if p.log.Enabled(context.Background(), slog.LevelDebug) {
			args = append(args, ChildDebugArg)
		}
		cmd = exec.Command("/proc/self/exe", args...)
		// Not the daemon's argv[0]: `pidof vigil` finds the daemon only.
		cmd.Args[0] = "vigil_bfd"
	}
	// Killed with the daemon (childproc.Start adds its own process group).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return childproc.Start(cmd, "the BFD process", p.log, p.event)
}

// replay gives a new child the scheduling and sessions asked for so far,
// then makes it the running one.
func (p *Process) replay(h *childproc.Child) error {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	p.mu.Lock()
	sched, schedSet, want, wantSet := p.sched, p.schedSet, p.want, p.wantSet
	p.mu.Unlock()
	if schedSet {
		if err := call(h, opSched, sched, nil, callTimeout); err != nil && !isReply(err) {
			return err
		} else if err != nil {
			p.log.Warn("bfd_rt_priority/bfd_priority: the BFD process keeps its scheduling (needs CAP_SYS_NICE)", "err", err)
		}
	}
	if wantSet {
		if err := p.configure(h, want); err != nil {
			if !isReply(err) {
				return err
			}
			p.log.Error("bfd sessions not started", "err", err)
		}
	}
	p.mu.Lock()
	p.h, p.pid = h, h.Pid()
	p.mu.Unlock()
	return nil
}

// lost records that the child is gone: its sessions are reported Down as
// a local AdminDown (nothing says the peers failed, so no bfd_takeover),
// and the status keeps the last counters.
func (p *Process) lost(why error, restart bool) {
	p.mu.Lock()
	p.h, p.pid = nil, 0
	p.restarts++
	now := time.Now()
	reason := "the BFD process exited; restarting it"
	if !restart {
		reason = "the BFD process exited (--dont-respawn)"
	}
	var evs []Event
	for _, s := range p.want {
		if p.up[s.Name] {
			evs = append(evs, Event{Session: s.Name, Transition: bfd.Transition{Session: s.Name, From: wire.Up, To: wire.AdminDown,
				Diag: wire.DiagAdminDown, At: now, Reason: reason}})
		}
		p.up[s.Name] = false
	}
	for i := range p.last.Sessions {
		st := &p.last.Sessions[i]
		if st.State != wire.AdminDown {
			st.State, st.Since = wire.Down, now
		}
	}
	p.mu.Unlock()
	if restart {
		p.log.Error("bfd: the BFD process is not running; starting it again", "err", why, "in", restartDelay)
	} else {
		p.log.Error("bfd: the BFD process is not running and --dont-respawn is set: not starting it again", "err", why)
	}
	for _, ev := range evs {
		p.deliver(ev)
	}
}

// stop asks the child to stop (AdminDown to its peers) and waits for it.
func (p *Process) stop(h *childproc.Child) {
	p.cmu.Lock()
	defer p.cmu.Unlock()
	if err := call(h, opStop, nil, nil, stopTimeout); err != nil {
		p.log.Warn("bfd: the BFD process did not stop cleanly", "err", err)
	}
	select {
	case <-h.Exited():
	case <-time.After(stopTimeout):
	}
	h.Kill()
	p.mu.Lock()
	p.h, p.pid = nil, 0
	p.mu.Unlock()
}

// call sends a request to the BFD process and waits for its reply,
// decoded into out; an error the process answered with says so (isReply).
func call(h *childproc.Child, op string, body, out any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := h.Call(ctx, op, body, out)
	if isReply(err) {
		return fmt.Errorf("bfd process: %w", err)
	}
	return err
}

// isReply reports whether err is one the BFD process answered with (the
// transport worked).
func isReply(err error) bool {
	var re *childproc.ReplyError
	return errors.As(err, &re)
}

// event takes in an event of the BFD process (on its reading goroutine).
func (p *Process) event(m childproc.Msg) {
	if m.Op != opEvent {
		return
	}
	var ev Event
	if json.Unmarshal(m.Body, &ev) != nil {
		return
	}
	d := time.Since(ev.At)
	p.mu.Lock()
	p.up[ev.Session] = ev.Up
	p.handoff = max(p.handoff, d)
	p.mu.Unlock()
	p.deliver(ev)
}

func (p *Process) deliver(ev Event) {
	p.mu.Lock()
	var fns []func(Event)
	for _, key := range []string{ev.Session, ""} {
		ids := make([]int, 0, len(p.subs[key]))
		for id := range p.subs[key] {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			fns = append(fns, p.subs[key][id])
		}
	}
	p.mu.Unlock()
	for _, fn := range fns {
		fn(ev)
	}
}

// waitReady waits (a little) for Run's first child: Configure and
// SetScheduling then go to it, and their errors reach the caller. Called
// without cmu, which Run's replay takes.
func (p *Process) waitReady() {
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-p.ready:
	case <-t.C:
	}
}

// current is the running child, nil if there is none.
func (p *Process) current() *childproc.Child {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.h
}

// Configure makes the running sessions those of list (see
// Runner.Configure). Without a running BFD process it returns an error
// and the sessions start with the next one.
func (p *Process) Configure(list []Session) error {
	p.waitReady()
	p.cmu.Lock()
	defer p.cmu.Unlock()
	p.mu.Lock()
	p.want, p.wantSet = slices.Clone(list), true
	p.mu.Unlock()
	h := p.current()
	if h == nil {
		return errors.New("bfd: the BFD process is not running; its sessions start when it does")
	}
	return p.configure(h, list)
}

func (p *Process) configure(h *childproc.Child, list []Session) error {
	var rep configureReply
	err := call(h, opConfigure, list, &rep, callTimeout)
	if err != nil && !isReply(err) {
		return err
	}
	p.mu.Lock()
	next := map[string]bool{}
	for _, s := range list {
		next[s.Name] = rep.Up[s.Name]
	}
	p.up = next
	p.mu.Unlock()
	return err
}

// SetScheduling sets the BFD process's scheduling (all of its threads);
// errors (no CAP_SYS_NICE) are returned and it runs on as it is.
func (p *Process) SetScheduling(s Scheduling) error {
	p.waitReady()
	p.cmu.Lock()
	defer p.cmu.Unlock()
	p.mu.Lock()
	p.sched, p.schedSet = s, true
	p.mu.Unlock()
	h := p.current()
	if h == nil {
		return nil // given to the next one
	}
	return call(h, opSched, s, nil, callTimeout)
}

// Subscribe calls fn with every change of the named session's state
// (every session's when name is ""), on the goroutine reading the BFD
// process: fn must not block.
func (p *Process) Subscribe(name string, fn func(Event)) (cancel func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.subs[name] == nil {
		p.subs[name] = map[int]func(Event){}
	}
	id := p.nextSub
	p.nextSub++
	p.subs[name][id] = fn
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.subs[name], id)
	}
}

// Up reports whether the named session is Up, as the BFD process last
// said, and whether it is configured.
func (p *Process) Up(name string) (up, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	up, ok = p.up[name]
	return up, ok
}

// Status asks the BFD process for its sessions, drops and lateness; with
// none running (or one that does not answer) it returns the last answer,
// every session Down. Lateness.Handoff and Restarts are the daemon's.
func (p *Process) Status() ([]bfd.Status, map[string]uint64, Lateness) {
	p.mu.Lock()
	h := p.h
	p.mu.Unlock()
	if h != nil {
		var sb statusBody
		if err := call(h, opStatus, nil, &sb, callTimeout); err == nil {
			p.mu.Lock()
			p.last = sb
			p.mu.Unlock()
		} else {
			p.log.Warn("bfd: status of the BFD process", "err", err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	sts := slices.Clone(p.last.Sessions)
	if h == nil && len(sts) == 0 {
		for _, s := range p.want {
			sts = append(sts, bfd.Status{Name: s.Name, Peer: s.Peer, Local: s.Local, State: wire.Down, Cfg: s.Config})
		}
	}
	late := p.last.Late
	late.Handoff, late.Restarts, late.PID = p.handoff, p.restarts, p.pid
	return sts, p.last.Drops, late
}

// SendErrors returns each session's latest send error, as of the last
// Status.
func (p *Process) SendErrors() map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]string{}
	for k, v := range p.last.SendErrors {
		out[k] = v
	}
	return out
}

// Port is the local port the named session sends from, as of the last
// Status.
func (p *Process) Port(name string) (uint16, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	port, ok := p.last.Ports[name]
	return port, ok
}

// PID is the BFD process's pid, 0 while none runs.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid
}
