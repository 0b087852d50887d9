package check

import (
	"errors"
	"fmt"
	"time"

	"vigil/internal/enum"
)

// This file is the pure part: keepalived's per-real-server health logic as
// a value stepped with the time of each result. No clock, no goroutines.

// Kind names a checker type, for DefaultSchedule.
type Kind string

// Checker kinds, spelled as in keepalived.conf.
const (
	KindTCP  Kind = "TCP_CHECK"
	KindHTTP Kind = "HTTP_GET"
	KindSSL  Kind = "SSL_GET"
	KindMisc Kind = "MISC_CHECK"
	KindDNS  Kind = "DNS_CHECK"
	KindUDP  Kind = "UDP_CHECK"
	KindPing Kind = "PING_CHECK"
	KindSMTP Kind = "SMTP_CHECK"
	KindFile Kind = "FILE_CHECK"
	// KindDRPath is DR_PATH_CHECK, a vigil extension (drpath.go).
	KindDRPath Kind = "DR_PATH_CHECK"
)

// FollowDelayLoop, as Schedule.Warmup or Schedule.DelayBeforeRetry, takes
// the value of DelayLoop, as keepalived's defaults do.
const FollowDelayLoop time.Duration = -1

// DefaultDelayLoop is keepalived's delay_loop default.
const DefaultDelayLoop = 60 * time.Second

// Schedule is the timing of one checker (the generic checker options of
// keepalived.conf, inherited from virtual and real server by the caller).
type Schedule struct {
	// DelayLoop is the time between checks, counted from the end of one
	// check to the start of the next.
	DelayLoop time.Duration
	// Retry is how many more attempts a check of a server that is up gets
	// after a failure before the server goes down (retry, nb_get_retry).
	// While a server is down there are no retries: one success brings it
	// back.
	Retry int
	// DelayBeforeRetry separates those attempts.
	DelayBeforeRetry time.Duration
	// Warmup is the upper bound of the random delay before the first check
	// (0 checks at once); it scatters checks started together.
	Warmup time.Duration
	// Alpha starts the checker as failed: the server needs a success
	// before it is used. Without it a server is assumed up at start.
	Alpha bool
	// Rise is the number of consecutive successful checks a failed checker
	// needs before it is up again. It is 1 for every checker except
	// HTTP_GET/SSL_GET with several URLs and no fast_recovery, where
	// keepalived checks one URL per delay_loop while recovering: the caller
	// sets Rise to the number of URLs, so that recovery takes as long (vigil
	// checks all URLs each time, which is stricter).
	Rise int
	// LogAllFailures logs every failed check, not only transitions.
	LogAllFailures bool
}

// DefaultSchedule returns keepalived's defaults for a checker kind:
// delay_loop 60 s, warmup up to delay_loop, retry 1 (3 for DNS_CHECK, 0 for
// MISC_CHECK), delay_before_retry 1 s (3 s for HTTP_GET/SSL_GET, delay_loop
// for DNS_CHECK).
func DefaultSchedule(k Kind) Schedule {
	s := Schedule{DelayLoop: DefaultDelayLoop, Retry: 1, DelayBeforeRetry: time.Second, Warmup: FollowDelayLoop, Rise: 1}
	switch k {
	case KindHTTP, KindSSL:
		s.DelayBeforeRetry = 3 * time.Second
	case KindDNS:
		s.Retry, s.DelayBeforeRetry = 3, FollowDelayLoop
	case KindMisc:
		s.Retry = 0
	}
	return s
}

// resolved validates s and replaces FollowDelayLoop.
func (s Schedule) resolved() (Schedule, error) {
	if s.DelayLoop <= 0 {
		return s, fmt.Errorf("delay_loop %v must be positive", s.DelayLoop)
	}
	if s.Retry < 0 {
		return s, fmt.Errorf("retry %d is negative", s.Retry)
	}
	if s.Rise == 0 {
		s.Rise = 1
	}
	if s.Rise < 0 {
		return s, fmt.Errorf("rise %d is negative", s.Rise)
	}
	if s.Warmup == FollowDelayLoop {
		s.Warmup = s.DelayLoop
	}
	if s.DelayBeforeRetry == FollowDelayLoop {
		s.DelayBeforeRetry = s.DelayLoop
	}
	if s.Warmup < 0 || s.DelayBeforeRetry < 0 {
		return s, errors.New("warmup and delay_before_retry must not be negative")
	}
	return s, nil
}

// EventKind says what changed.
type EventKind int

const (
	// ServerUp: every checker of the server passes (notify_up; add the
	// server, or restore its weight under inhibit_on_failure).
	ServerUp EventKind = iota + 1
	// ServerDown: a checker failed for good (notify_down; remove the
	// server, or set weight 0 under inhibit_on_failure).
	ServerDown
	// ServerWeight: a MISC_CHECK with misc_dynamic changed the weight of a
	// server that is up.
	ServerWeight
)

var eventKindNames = []string{ServerUp: "server up", ServerDown: "server down", ServerWeight: "server weight"}

func (k EventKind) String() string { return enum.Name(eventKindNames, k, "EventKind") }

// Event is a transition of a real server for the daemon: run notify_up or
// notify_down and update the load-balancing model.
type Event struct {
	Server string // the ID the daemon gave the server
	Kind   EventKind
	// Initial marks the state a server starts in (up, or down under
	// alpha): set the model, run no notify script.
	Initial bool
	// Shutdown marks the ServerDown that omega asks for when vigil stops.
	Shutdown bool
	// Weight is the server's effective weight: the configured one, or what
	// misc_dynamic made of it.
	Weight int
	// Checker and Detail name the check that caused the event and what it
	// saw, e.g. "TCP_CHECK 198.51.100.11:80" and
	// "connect 198.51.100.11:80: connection refused".
	Checker string
	Detail  string
	At      time.Time
}

func (e Event) String() string {
	s := e.Kind.String()
	switch {
	case e.Initial:
		s += " (initial)"
	case e.Shutdown:
		s += " (shutdown)"
	}
	if e.Kind == ServerWeight {
		s += fmt.Sprintf(" %d", e.Weight)
	}
	if e.Checker != "" {
		s += ": " + e.Checker
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// probe is the state of one checker of a server.
type probe struct {
	name    string
	sched   Schedule
	up      bool
	retries int // failed attempts since the last success, while up
	rises   int // successes since the last failure, while down
	weight  int // last dynamic weight, -1 when none
}

// State is keepalived's health logic for one real server and its checkers:
// the server is up when every checker is up (a server without checkers is
// always up). It is a pure value: Start, Observe and Shutdown take the time
// and return what happened; the Runner steps it.
type State struct {
	id     string
	weight int // configured weight
	omega  bool
	probes []probe
	up     bool
}

// NewState returns the state of server id with configured weight and one
// checker per schedule (names are the checkers' String()).
func NewState(id string, weight int, omega bool, names []string, scheds []Schedule) (*State, error) {
	if len(names) != len(scheds) {
		return nil, errors.New("check: names and schedules differ in number")
	}
	if weight < 0 {
		return nil, fmt.Errorf("server %s: weight %d is negative", id, weight)
	}
	s := &State{id: id, weight: weight, omega: omega}
	for i, sc := range scheds {
		r, err := sc.resolved()
		if err != nil {
			return nil, fmt.Errorf("server %s: %s: %w", id, names[i], err)
		}
		s.probes = append(s.probes, probe{name: names[i], sched: r, up: !r.Alpha, weight: -1})
	}
	s.up = s.allUp()
	return s, nil
}

func (s *State) allUp() bool {
	for _, p := range s.probes {
		if !p.up {
			return false
		}
	}
	return true
}

// Up reports whether the server is up.
func (s *State) Up() bool { return s.up }

// Weight is the effective weight: the configured weight plus, for each
// checker that reported a dynamic weight w, w minus the configured weight.
// With one MISC_CHECK it is simply the last weight it reported, as
// keepalived.conf(5) describes for misc_dynamic. Never negative.
func (s *State) Weight() int {
	w := s.weight
	for _, p := range s.probes {
		if p.weight >= 0 {
			w += p.weight - s.weight
		}
	}
	return max(w, 0)
}

// Start returns when each checker should first run (now plus a random
// share of its warmup, from rnd, which returns a value in [0, n)) and the
// initial event.
func (s *State) Start(now time.Time, rnd func(n time.Duration) time.Duration) (due []time.Time, initial Event) {
	due = make([]time.Time, len(s.probes))
	for i, p := range s.probes {
		due[i] = now
		if p.sched.Warmup > 0 {
			due[i] = now.Add(rnd(p.sched.Warmup))
		}
	}
	initial = Event{Server: s.id, Kind: ServerDown, Initial: true, Weight: s.Weight(), At: now}
	if s.up {
		initial.Kind = ServerUp
	} else {
		initial.Detail = "alpha: down until checked"
	}
	return due, initial
}

// Observe records the result r of checker i, completed at now. It returns
// when that checker should run next and the events it caused, if any.
func (s *State) Observe(now time.Time, i int, r Result) (next time.Time, events []Event) {
	p := &s.probes[i]
	next = now.Add(p.sched.DelayLoop)
	if r.Up {
		p.retries = 0
		if !p.up {
			p.rises++
			if p.rises < p.sched.Rise {
				return next, nil
			}
			p.up, p.rises = true, 0
		}
		oldWeight := s.Weight()
		if r.Weight >= 0 {
			p.weight = r.Weight
		}
		if !s.up && s.allUp() {
			s.up = true
			return next, []Event{s.event(ServerUp, p, r, now)}
		}
		if s.up && s.Weight() != oldWeight {
			return next, []Event{s.event(ServerWeight, p, r, now)}
		}
		return next, nil
	}
	p.rises = 0
	if !p.up {
		return next, nil
	}
	if p.retries < p.sched.Retry {
		p.retries++
		return now.Add(p.sched.DelayBeforeRetry), nil
	}
	p.up, p.retries = false, 0
	if s.up {
		s.up = false
		return next, []Event{s.event(ServerDown, p, r, now)}
	}
	return next, nil
}

// Retrying reports whether checker i has failed but still has retries
// before the server goes down.
func (s *State) Retrying(i int) bool { return s.probes[i].retries > 0 }

func (s *State) event(k EventKind, p *probe, r Result, now time.Time) Event {
	return Event{Server: s.id, Kind: k, Weight: s.Weight(), Checker: p.name, Detail: r.Detail, At: now}
}

// Shutdown returns the ServerDown that omega asks for when vigil stops and
// the server is up; without omega, nothing.
func (s *State) Shutdown(now time.Time) []Event {
	if !s.omega || !s.up {
		return nil
	}
	s.up = false
	return []Event{{Server: s.id, Kind: ServerDown, Shutdown: true, Weight: s.Weight(), Detail: "vigil is stopping (omega)", At: now}}
}
