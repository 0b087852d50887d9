// Package link runs vigil's BFD sessions on the host: the UDP sockets of
// RFC 5881 (receive on port 3784 with the TTL / hop limit of each packet,
// send from a port in 49152-65535 with TTL 255) and the one goroutine that
// steps the pure engine (package bfd) with them and with its own timer.
//
// It is deliberately not the daemon's loop: BFD transmits every few
// milliseconds, and a transmit that waits behind an nftables apply, a
// reload or a burst of health-check results is a false Down at the peer.
// The Runner measures how late each transmit went out (Lateness).
//
// Other parts follow sessions by name through Subscribe (track_bfd,
// BFD_CHECK and bfd_takeover in the daemon, BGP neighbours); none of them
// sees the protocol.
//
// The daemon does not run a Runner itself: Process starts the BFD process
// (`vigil _bfd`, Serve), a child that runs one Runner and nothing else, as
// keepalived runs BFD in its BFD child, and offers the Runner's methods
// over a socketpair (proto.go). docs/architecture.md says why.
package link

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"vigil/bfd"
	"vigil/bfd/wire"
	"vigil/internal/epoll"
)

// Session is one session to run: the engine's configuration and the TTL
// (IPv4) or hop limit (IPv6) to send with.
type Session struct {
	bfd.Config
	TTL int // 0 means 255
}

// Event is a session's change of state, delivered to subscribers.
type Event struct {
	Session string
	Up      bool
	bfd.Transition
}

// Lateness is how late the Runner's transmits went out, against the
// deadline the engine set.
type Lateness struct {
	Max   time.Duration
	Sends uint64
	// Over counts transmits later than the session's transmit interval:
	// the peer may have missed one.
	Over uint64
	// RxOverflow is kept for the status document; the Runner reads its
	// sockets itself and drops nothing on the way.
	RxOverflow uint64
	// Handoff is the longest a state change took from the BFD process's
	// step to the daemon (Process only): the cost of running BFD apart,
	// paid by bfd_takeover and track_bfd.
	Handoff time.Duration
	// Restarts counts BFD processes that died and were started again,
	// and PID is the running one's (Process only).
	Restarts uint64
	PID      int
}

// Runner drives a bfd.Set over real sockets. Its methods are safe for
// concurrent use; Run is its one goroutine.
type Runner struct {
	log *slog.Logger

	mu      sync.Mutex
	set     *bfd.Set
	rnd     *mrand.Rand
	cfgs    map[string]Session
	senders map[string]*sender
	// lis are the UDP 3784 sockets (IPv4, IPv6), opened for the first
	// session of their family and closed when Run ends, not when the last
	// session of the family goes: internal/epoll closes its duplicate of a
	// removed socket only as the goroutine parked on it leaves (Set.Del),
	// and a session started right after could find the port still bound.
	lis     [2]*listener
	subs    map[string]map[int]func(Event)
	nextSub int
	late    Lateness
	sendErr map[string]string
	poll    *epoll.Set
	pollErr error
	txbuf   []byte // transmit buffer
	// abandoned is set by Abandon: Run ends without a word to the peers.
	abandoned bool
	// pending are state changes made under Configure, delivered by Run.
	pending []Event
}

// Scheduling is how the BFD process's threads are scheduled
// (ScheduleProcess): keepalived's bfd_rt_priority, bfd_priority and
// bfd_process_name, which keepalived applies to its BFD process. A BFD packet that waits for a CPU behind
// busy processes is a false Down at the peer.
type Scheduling struct {
	// RTPriority is a SCHED_RR priority 1..99 (reset on fork); 0 means
	// SCHED_OTHER at Nice.
	RTPriority int
	Nice       int
	// Name is the thread's name (comm, 15 bytes kept); empty leaves it.
	Name string
}

// New returns a Runner with no sessions; it starts nothing.
func New(log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var seed [16]byte
	_, _ = rand.Read(seed[:])
	rnd := mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	r := &Runner{log: log, set: bfd.NewSet(rnd), rnd: rnd, cfgs: map[string]Session{}, senders: map[string]*sender{},
		subs: map[string]map[int]func(Event){}, sendErr: map[string]string{}, txbuf: make([]byte, 255)}
	r.poll, r.pollErr = epoll.NewParked()
	return r
}

// Configure makes the running sessions those of list: new ones start
// Down, removed ones stop (after an AdminDown packet), changed ones
// restart, unchanged ones carry on undisturbed (a reload does not flap
// them). Errors name the sessions that could not start; the others run.
func (r *Runner) Configure(list []Session) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	want := map[string]Session{}
	for _, s := range list {
		if s.TTL == 0 {
			s.TTL = 255
		}
		want[s.Name] = s
	}
	for name, old := range r.cfgs {
		if nw, ok := want[name]; !ok || nw != old {
			r.stopLocked(now, name)
		}
	}
	var errs []error
	for _, s := range list {
		if s.TTL == 0 {
			s.TTL = 255
		}
		if _, ok := r.cfgs[s.Name]; ok {
			continue
		}
		if err := r.startLocked(now, s); err != nil {
			errs = append(errs, err)
		}
	}
	r.kick()
	return errors.Join(errs...)
}

func (r *Runner) startLocked(now time.Time, s Session) error {
	fam := 0
	if s.Peer.Is6() {
		fam = 1
	}
	if r.poll == nil || r.abandoned {
		return fmt.Errorf("bfd_instance %s: the BFD runner is stopped or has no poller: %v", s.Name, r.pollErr)
	}
	if r.lis[fam] == nil {
		l, err := listen(fam == 1)
		if err != nil {
			return fmt.Errorf("bfd_instance %s: %w", s.Name, err)
		}
		if err := r.poll.Add(l.fd, l.fd); err != nil {
			l.Close()
			return fmt.Errorf("bfd_instance %s: %w", s.Name, err)
		}
		r.lis[fam] = l
	}
	snd, err := openSender(s.Local, s.Peer, s.TTL, r.rnd)
	if err != nil {
		return fmt.Errorf("bfd_instance %s: %w", s.Name, err)
	}
	if _, err := r.set.Add(now, s.Config); err != nil {
		snd.Close()
		return fmt.Errorf("bfd_instance %s: %w", s.Name, err)
	}
	r.cfgs[s.Name] = s
	r.senders[s.Name] = snd
	r.log.Info("bfd session started", "session", s.Name, "neighbor", s.Peer.String(), "source", s.Local.String(), "port", snd.port)
	return nil
}

// stopLocked tells the peer (AdminDown) and removes the session.
func (r *Runner) stopLocked(now time.Time, name string) {
	r.set.AdminDown(now, name, true)
	r.set.Advance(now)
	r.pending = append(r.pending, r.flushLocked(now)...)
	r.forgetLocked(name)
}

// forgetLocked drops the named session without a word to its peer.
func (r *Runner) forgetLocked(name string) {
	r.set.Remove(name)
	if s := r.senders[name]; s != nil {
		s.Close()
	}
	delete(r.senders, name)
	delete(r.cfgs, name)
	delete(r.sendErr, name)
}

func (r *Runner) kick() {
	if r.poll != nil {
		r.poll.Wake()
	}
}

// Subscribe calls fn with every change of the named session's state (every
// session's when name is ""), on the Runner's goroutine: fn must not block
// (it may call the Runner's other methods).
// The returned function ends the subscription.
func (r *Runner) Subscribe(name string, fn func(Event)) (cancel func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subs[name] == nil {
		r.subs[name] = map[int]func(Event){}
	}
	id := r.nextSub
	r.nextSub++
	r.subs[name][id] = fn
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.subs[name], id)
	}
}

// Up reports whether the named session is Up, and whether it exists.
func (r *Runner) Up(name string) (up, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.set.Session(name)
	if s == nil {
		return false, false
	}
	return s.Up(), true
}

// Status returns a snapshot of every session, the drop counts by reason
// and the transmit lateness.
func (r *Runner) Status() ([]bfd.Status, map[string]uint64, Lateness) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []bfd.Status
	for _, s := range r.set.Sessions() {
		out = append(out, s.Status())
	}
	return out, r.set.Drops(), r.late
}

// SendErrors returns the latest send error of each session that has one.
func (r *Runner) SendErrors() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for k, v := range r.sendErr {
		out[k] = v
	}
	return out
}

// Run steps the sessions until ctx ends or Abandon is called. When ctx
// ends it sends AdminDown to every peer (an orderly stop: RFC 5880 6.8.16,
// the peers must not take it for a failure, RFC 5882 3.2), closes the
// sockets and returns; after Abandon it sends nothing more. Its goroutines
// (epoll.Set.Run's, one on each listener and one on the timer) park in
// the Go runtime's poller between wake-ups (internal/epoll's NewParked):
// the BFD process runs nothing else, so nothing runs ahead of them. It
// stays in one epoll.Set.Run for its life, so a wake-up that consumed
// everything it was told about parks again without the read that would
// only find the socket empty.
func (r *Runner) Run(ctx context.Context) error {
	if r.pollErr != nil {
		return r.pollErr
	}
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.kick()
		r.mu.Unlock()
	})
	defer func() {
		stop()
		r.mu.Lock()
		r.poll.Close()
		r.poll = nil
		r.mu.Unlock()
	}()
	r.mu.Lock()
	p := r.poll
	r.armLocked(p)
	r.mu.Unlock()
	err := p.Run(func(evs []unix.EpollEvent) (quiet, stop bool) {
		if ctx.Err() != nil {
			return false, true
		}
		return r.step(time.Now(), evs)
	})
	r.shutdown()
	if err != nil {
		return fmt.Errorf("bfd: epoll_wait: %w", err)
	}
	return nil
}

// step is one wake-up of Run at now with the events the Set returned:
// every socket that is ready is read before the timers are advanced, so a
// packet that was queued while this process could not run (the timer fired
// late) counts before the detection time is checked: a stall of this
// process is not blamed on the peer. Then it sends what the sessions ask
// for, arms the timer for the next deadline and delivers state changes.
// It reports whether it consumed everything the events announced
// (epoll.Set.Run's quiet), and stop once Abandon was called (then it
// does nothing). The steady state (packets sent and received,
// no state change) allocates nothing (TestRunnerStepAllocatesNothing).
func (r *Runner) step(now time.Time, evs []unix.EpollEvent) (drained, stop bool) {
	drained = true
	r.mu.Lock()
	if r.abandoned {
		r.mu.Unlock()
		return false, true
	}
	p := r.poll
	// The deadline that passed, whichever of the Set's goroutines runs
	// this step: after a stall a socket's may run first and re-arm, and
	// the timer's then finds nothing due.
	var due time.Time
	if armed := p.Armed(); !armed.IsZero() && !now.Before(armed) {
		r.measureLocked(now, armed)
		due = armed
	}
	for _, ev := range evs {
		switch fd := int(ev.Fd); fd {
		case epoll.TagTimer:
			p.TimerFired()
		case epoll.TagWake:
			// what the Wake announced is in r's state, read below
		default:
			if !r.readLocked(now, fd) {
				drained = false
			}
		}
	}
	if !due.IsZero() {
		// Woken late: a detection time that ran out while this process
		// could not run is not the peer's failure (bfd.Set.Resumed).
		r.set.Resumed(now, due)
	}
	r.set.Advance(now)
	out := append(r.pending, r.flushLocked(now)...)
	r.pending = nil
	r.armLocked(p)
	r.mu.Unlock()
	r.deliver(out)
	return drained, false
}

// armLocked arms p for the sessions' next deadline, with their earliest
// detection time beside it (epoll.Set.Arm).
func (r *Runner) armLocked(p *epoll.Set) {
	next, detect := r.set.Deadline()
	p.Arm(next, detect)
}

// readLocked reads one listener until its queue is empty (true) or a
// bound is reached (false: more may be queued).
func (r *Runner) readLocked(now time.Time, fd int) bool {
	var l *listener
	for _, x := range r.lis {
		if x != nil && x.fd == fd {
			l = x
		}
	}
	if l == nil {
		return true
	}
	for i := 0; i < 64; i++ {
		n, err := l.readBatch()
		if err != nil {
			return true // EAGAIN, or an error the next wake-up meets again
		}
		for j := 0; j < n; j++ {
			p := l.packet(j)
			if err := r.set.Receive(now, bfd.Packet{Data: p.data, Src: p.src, Dst: p.dst, TTL: p.ttl}); err != nil {
				r.log.Debug("bfd packet dropped", "from", p.src.String(), "err", err)
			}
			// Answer a Poll at once, and send on a state change.
			r.set.Advance(now)
			r.pending = append(r.pending, r.flushLocked(now)...)
		}
		if n < rxBatch {
			return true
		}
	}
	return false
}

// measureLocked records how late the timer fired for a transmit deadline.
func (r *Runner) measureLocked(now, due time.Time) {
	late := now.Sub(due)
	r.late.Sends++
	if late > r.late.Max {
		r.late.Max = late
	}
	if iv := r.set.MinTxInterval(); iv > 0 && late > iv {
		r.late.Over++
	}
}

// deliver calls the subscribers of each event, without the lock (a
// subscriber may ask the Runner for status).
func (r *Runner) deliver(evs []Event) {
	for _, ev := range evs {
		r.mu.Lock()
		var fns []func(Event)
		for _, key := range []string{ev.Session, ""} {
			ids := make([]int, 0, len(r.subs[key]))
			for id := range r.subs[key] {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			for _, id := range ids {
				fns = append(fns, r.subs[key][id])
			}
		}
		r.mu.Unlock()
		for _, fn := range fns {
			fn(ev)
		}
	}
}

// flushLocked sends what the engine asks for and returns the state changes.
func (r *Runner) flushLocked(now time.Time) []Event {
	var evs []Event
	out, trs := r.set.Ready()
	buf := r.txbuf[:0]
	for _, o := range out {
		snd := r.senders[o.Session]
		if snd == nil {
			continue
		}
		buf = buf[:o.Packet.Len()]
		if err := o.Packet.MarshalTo(buf); err != nil {
			continue
		}
		if err := snd.send(buf); err != nil {
			if r.sendErr[o.Session] != err.Error() {
				r.log.Warn("bfd send", "session", o.Session, "err", err)
			}
			r.sendErr[o.Session] = err.Error()
		} else if len(r.sendErr) > 0 {
			delete(r.sendErr, o.Session)
		}
	}
	for _, tr := range trs {
		r.log.Info("bfd session changed", "session", tr.Session, "from", tr.From.String(), "to", tr.To.String(),
			"diag", tr.Diag.String(), "reason", tr.Reason)
		evs = append(evs, Event{Session: tr.Session, Up: tr.To == wire.Up, Transition: tr})
	}
	return evs
}

// Abandon makes Run end without a word to the peers: every socket closes
// at once, no AdminDown goes out, and Run returns. It is for a BFD process
// whose daemon is gone (it crashed or was killed): the daemon did not ask
// for the sessions to stop, so the peers must see them fail, and they do
// only if the packets just stop (they detect Down after their detection
// time, diagnostic 1). An AdminDown would tell them the opposite: RFC 5882
// 3.2 has a peer that hears AdminDown not treat it as a path failure, so
// keepalived's track_bfd and FRR's clients keep their state and nothing
// takes over. The sessions' subscribers hear nothing either.
func (r *Runner) Abandon() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.abandoned {
		return
	}
	r.abandoned = true
	for name, s := range r.senders {
		s.Close()
		delete(r.senders, name)
	}
	r.pending = nil
	r.kick()
}

func (r *Runner) shutdown() {
	r.mu.Lock()
	now := time.Now()
	for name := range r.cfgs {
		if r.abandoned {
			r.forgetLocked(name) // its sender already closed by Abandon
			continue
		}
		r.stopLocked(now, name)
	}
	for i, l := range r.lis {
		if l != nil {
			r.poll.Del(l.fd)
			l.Close()
			r.lis[i] = nil
		}
	}
	r.pending = nil
	r.mu.Unlock()
}

// Port is the local port the named session sends from.
func (r *Runner) Port(name string) (uint16, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.senders[name]; s != nil {
		return s.port, true
	}
	return 0, false
}
