package check

import (
	"container/heap"
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
// min-heap of due times and one timer, a goroutine per running check (at
// most MaxInFlight), results stepped through each server's State in
// arrival order. A Runner runs once.
type Runner struct {
	servers []Server
	states  []*State
	opt     RunnerOptions
	log     *slog.Logger
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
	r := &Runner{servers: servers, opt: opt, log: log}
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
		st, err := NewState(s.ID, s.Weight, s.Omega, names, scheds)
		if err != nil {
			return nil, err
		}
		r.states = append(r.states, st)
	}
	return r, nil
}

// job names checker i of server s.
type job struct {
	due  time.Time
	s, i int32
}

type jobHeap []job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(a, b int) bool { return h[a].due.Before(h[b].due) }
func (h jobHeap) Swap(a, b int)      { h[a], h[b] = h[b], h[a] }
func (h *jobHeap) Push(x any)        { *h = append(*h, x.(job)) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	*h = old[:len(old)-1]
	return j
}

type done struct {
	s, i int32
	res  Result
	at   time.Time
}

// Run checks until ctx ends, then cancels the checks in flight, waits for
// them, delivers omega's shutdown events and returns nil. Every goroutine
// it started has ended when it returns.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("check: Runner.Run called twice")
	}
	r.started = true
	r.mu.Unlock()

	checkCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan done, r.opt.MaxInFlight)
	var wg sync.WaitGroup
	inFlight := 0
	var waiting []job // due, but over MaxInFlight
	launch := func(j job) {
		inFlight++
		wg.Add(1)
		c := r.servers[j.s].Checks[j.i].Checker
		go func() {
			defer wg.Done()
			start := time.Now()
			res := c.Check(checkCtx)
			at := time.Now()
			if res.Latency == 0 {
				res.Latency = at.Sub(start)
			}
			// Never blocks: the buffer holds MaxInFlight results.
			results <- done{j.s, j.i, res, at}
		}()
	}

	var h jobHeap
	now := time.Now()
	for si, st := range r.states {
		due, ev := st.Start(now, r.opt.Rand)
		r.emit(ev)
		for i, d := range due {
			h = append(h, job{d, int32(si), int32(i)})
		}
	}
	heap.Init(&h)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var armed time.Time // when the timer fires; zero when idle
	for {
		now = time.Now()
		for len(h) > 0 && !h[0].due.After(now.Add(coalesce)) {
			j := heap.Pop(&h).(job)
			if inFlight < r.opt.MaxInFlight {
				launch(j)
			} else {
				if len(waiting) == 0 {
					r.log.Warn("health checks queue behind the in-flight limit", "limit", r.opt.MaxInFlight)
				}
				waiting = append(waiting, j)
			}
		}
		if len(h) > 0 && (armed.IsZero() || h[0].due.Before(armed)) {
			armed = h[0].due
			timer.Reset(armed.Sub(now))
		}
		select {
		case <-ctx.Done():
			cancel()
			for ; inFlight > 0; inFlight-- {
				<-results
			}
			wg.Wait()
			now = time.Now()
			for _, st := range r.states {
				for _, ev := range st.Shutdown(now) {
					r.emit(ev)
				}
			}
			return nil
		case d := <-results:
			inFlight--
			h.pushNext(r.observe(d))
			// Take whatever else has finished before looking at the clock.
			for more := true; more; {
				select {
				case d := <-results:
					inFlight--
					h.pushNext(r.observe(d))
				default:
					more = false
				}
			}
			for len(waiting) > 0 && inFlight < r.opt.MaxInFlight {
				launch(waiting[0])
				waiting = waiting[1:]
			}
		case <-timer.C:
			armed = time.Time{}
		}
	}
}

func (h *jobHeap) pushNext(j job) { heap.Push(h, j) }

// observe steps the server's state with a result and returns the
// checker's next run.
func (r *Runner) observe(d done) job {
	st := r.states[d.s]
	w := r.servers[d.s].Checks[d.i]
	if r.opt.OnResult != nil {
		r.opt.OnResult(Report{Server: st.id, Checker: w.Checker.String(), Result: d.res, At: d.at})
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
	return job{next, d.s, d.i}
}

func (r *Runner) emit(ev Event) {
	if !ev.Initial {
		r.log.Info(ev.Kind.String(), "server", ev.Server, "checker", ev.Checker, "detail", ev.Detail, "weight", ev.Weight)
	}
	if r.opt.OnEvent != nil {
		r.opt.OnEvent(ev)
	}
}
