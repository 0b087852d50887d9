package check

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Watch is one checker of a real server with its timing.
type Watch struct {
	Checker  Checker
	Schedule Schedule
}

// Server is a real server as the Runner sees it.
type Server struct {
	// ID is the daemon's key for the server; events carry it back.
	ID string
	// Weight is the configured weight, the base misc_dynamic adjusts.
	Weight int
	// Omega reports the server down when the Runner stops (omega).
	Omega  bool
	Checks []Watch
}

// Report is one finished check, for OnResult.
type Report struct {
	Server  string
	Checker string
	Result  Result
	At      time.Time
}

// RunnerOptions are the Runner's collaborators and limits.
type RunnerOptions struct {
	// Logger receives transitions at Info and failed checks at Debug (Info
	// with log_all_failures); nil discards.
	Logger *slog.Logger
	// OnEvent receives every server event in order, from the Runner's own
	// goroutine: it must not block for long (hand the event to the daemon's
	// loop). The initial state of every server is delivered first.
	OnEvent func(Event)
	// OnResult, if set, receives every check result, from the same goroutine.
	OnResult func(Report)
	// MaxInFlight bounds the checks running at once; checks due beyond it
	// wait their turn. Zero means DefaultMaxInFlight.
	MaxInFlight int
	// Rand returns a random duration in [0, n) for warmup; nil uses
	// math/rand/v2.
	Rand func(n time.Duration) time.Duration
}

// DefaultMaxInFlight bounds concurrent checks: 10,000 servers checked every
// second on a healthy network keep a few dozen in flight; the bound only
// matters when many targets black-hole packets until connect_timeout.
const DefaultMaxInFlight = 4096

// coalesce is how early a due check may start so that one wake-up of the
// scheduler starts every check due in the same millisecond.
const coalesce = time.Millisecond

// Runner schedules the checkers of many real servers from one goroutine: a
// min-heap of due times and one timer, results stepped through each
// server's State in arrival order, events handed to OnEvent. That
// goroutine waits on one epoll instance (connwatch.go) for everything: its
// timer, its sockets, and the workers' results. Checks run off that
// goroutine:
//   - TCP_CHECKs (the common case, and the one that must scale) are started
//     in batches by a few workers, since a non-blocking connect never
//     blocks; connects still under way wait on one epoll instance
//     (connwatch.go), and the Runner finishes them or times them out. A TCP
//     check costs no goroutine of its own and no per-check hand-off.
//   - Plain HTTP_GETs run on the Runner's goroutine the same way: a
//     non-blocking socket on that epoll instance, the request written and
//     the response read as it becomes ready (httploop.go).
//   - Every other checker runs on a pool of worker goroutines that grows to
//     the peak concurrency, at most MaxInFlight, and lives as long as Run.
//
// A Runner runs once; a reload builds a new one.
type Runner struct {
	servers []Server
	states  []*State
	opt     RunnerOptions
	log     *slog.Logger
	tcp     [][]*TCP  // the TCP_CHECKs, which the Runner drives itself
	http    [][]*HTTP // the HTTP_GETs it drives itself (httploop.go)
	started bool
	mu      sync.Mutex
}

// NewRunner validates the servers and schedules; it starts nothing.
func NewRunner(servers []Server, opt RunnerOptions) (*Runner, error) {
	if opt.MaxInFlight < 0 {
		return nil, fmt.Errorf("check: MaxInFlight %d is negative", opt.MaxInFlight)
	}
	if opt.MaxInFlight == 0 {
		opt.MaxInFlight = DefaultMaxInFlight
	}
	if opt.Rand == nil {
		opt.Rand = func(n time.Duration) time.Duration { return rand.N(n) }
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The caller keeps its slice; the Runner reads its own copy.
	r := &Runner{servers: append([]Server(nil), servers...), opt: opt, log: log}
	seen := make(map[string]bool, len(servers))
	for _, s := range servers {
		if seen[s.ID] {
			return nil, fmt.Errorf("check: server %q listed twice", s.ID)
		}
		seen[s.ID] = true
		names := make([]string, len(s.Checks))
		scheds := make([]Schedule, len(s.Checks))
		for i, w := range s.Checks {
			if w.Checker == nil {
				return nil, fmt.Errorf("check: server %q: checker %d is nil", s.ID, i+1)
			}
			names[i], scheds[i] = w.Checker.String(), w.Schedule
		}
		tcp := make([]*TCP, len(s.Checks))
		web := make([]*HTTP, len(s.Checks))
		for i, w := range s.Checks {
			tcp[i], _ = w.Checker.(*TCP)
			if h, ok := w.Checker.(*HTTP); ok && h.conn != nil {
				web[i] = h
			}
		}
		r.tcp = append(r.tcp, tcp)
		r.http = append(r.http, web)
		st, err := NewState(s.ID, s.Weight, s.Omega, names, scheds)
		if err != nil {
			return nil, err
		}
		r.states = append(r.states, st)
	}
	return r, nil
}

// job names checker i of server s and when it is due, in nanoseconds on
// the Runner's monotonic clock (an int64 compares faster than a time.Time).
type job struct {
	due  int64
	s, i int32
	// token, when not zero, makes this the connect_timeout of the pending
	// TCP connect with that token rather than a check to run.
	token uint64
}

// jobHeap is a min-heap of jobs by due time, typed rather than through
// container/heap, whose interface boxes every push into an allocation.
type jobHeap []job

func (h *jobHeap) push(j job) {
	*h = append(*h, j)
	q := *h
	for c := len(q) - 1; c > 0; {
		p := (c - 1) / 2
		if q[p].due <= q[c].due {
			break
		}
		q[p], q[c] = q[c], q[p]
		c = p
	}
}

func (h *jobHeap) pop() job {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	for p := 0; ; {
		c := 2*p + 1
		if c >= n {
			break
		}
		if c+1 < n && q[c+1].due < q[c].due {
			c++
		}
		if q[p].due <= q[c].due {
			break
		}
		q[p], q[c] = q[c], q[p]
		p = c
	}
	*h = q
	return top
}

type done struct {
	s, i int32
	res  Result
	at   time.Time
}

// Run checks until ctx ends, then cancels the checks in flight, waits for
// them, delivers omega's shutdown events and returns nil. Every goroutine
// it started has ended when it returns. The loop itself is in loop.go.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("check: Runner.Run called twice")
	}
	r.started = true
	r.mu.Unlock()
	l, err := r.newLoop(ctx)
	if err != nil {
		return err
	}
	defer l.close()
	return l.run()
}

// tcpOutcome is a started TCP check: over (fd < 0, with its result) or
// connecting on fd.
type tcpOutcome struct {
	j       job
	fd      int
	watched bool // fd is a pooled socket registered with the connWatch
	start   time.Time
	res     Result
	at      time.Time
}

const (
	maxTCPWorkers = 4   // enough to use every CPU of a small director
	inlineTCP     = 4   // batches up to this size start on the loop (flushTCP)
	maxTCPBatch   = 128 // bounds how long a check waits behind its batch
	tcpQueue      = 64  // batches queued for the workers
)

// observe steps the server's state with a result and returns the
// checker's next run.
func (r *Runner) observe(d done, at func(time.Time) int64) job {
	st := r.states[d.s]
	if r.opt.OnResult != nil {
		r.opt.OnResult(Report{Server: st.id, Checker: st.probes[d.i].name, Result: d.res, At: d.at})
	}
	wasUp := st.probes[d.i].up
	next, events := st.Observe(d.at, int(d.i), d.res)
	p := &st.probes[d.i]
	switch {
	case !d.res.Up && p.sched.LogAllFailures:
		r.log.Info("health check failed", "server", st.id, "checker", p.name, "detail", d.res.Detail, "retrying", st.Retrying(int(d.i)))
	case !d.res.Up:
		r.log.Debug("health check failed", "server", st.id, "checker", p.name, "detail", d.res.Detail, "retrying", st.Retrying(int(d.i)))
	}
	if wasUp != p.up {
		state := "down"
		if p.up {
			state = "up"
		}
		r.log.Info("checker "+state, "server", st.id, "checker", p.name, "detail", d.res.Detail)
	}
	for _, ev := range events {
		r.emit(ev)
	}
	return job{due: at(next), s: d.s, i: d.i}
}

func (r *Runner) emit(ev Event) {
	if !ev.Initial {
		r.log.Info(ev.Kind.String(), "server", ev.Server, "checker", ev.Checker, "detail", ev.Detail, "weight", ev.Weight)
	}
	if r.opt.OnEvent != nil {
		r.opt.OnEvent(ev)
	}
}
