// Package speaker is the daemon's handle on one bgp_instance's BGP
// sessions (RFC 4271; RFC 4760 for IPv6 routes; RFC 2385 TCP MD5): it
// keeps the routes announced equal to what the daemon last asked for and
// reports the sessions for status, metrics and doctor.
//
// The sessions run in a helper process, vigil-bgp (cmd/vigil-bgp, which
// runs Serve with the gobgp engine of bgp/speaker/gobgp), one per
// bgp_instance, talking to the Speaker over a socketpair (proto.go). gobgp,
// gRPC, protobuf and viper are linked into that binary only: their package
// initialisation alone made every vigil process 13.5 MB larger in RSS,
// with or without BGP (docs/benchmarks.md). A Speaker is created only for
// a bgp_instance block, so a configuration without one starts no BGP
// process, goroutine, socket or table.
//
// The helper exits when the daemon's end of the socket closes, so a kill -9
// of the daemon closes the BGP sessions' TCP connections at once and the
// routers drop its routes, as when the sessions lived in the daemon. If
// the helper dies on its own, the Speaker reports it in the sessions'
// last error and starts it again a second later with the same neighbors,
// disabled neighbors and routes.
package speaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"vigil/bgp"
	"vigil/internal/childproc"
)

// Neighbor is one configured BGP neighbor.
type Neighbor struct {
	Addr     netip.Addr
	RemoteAS uint32
	HoldTime time.Duration
	Password string
	Port     uint16
}

// Unchanged reports whether neighbor a is in old and in new with the same
// settings: SetNeighbors leaves it, and its session, as they are. Any
// other neighbor of new is a new one (it starts enabled).
func Unchanged(old, new []Neighbor, a netip.Addr) bool {
	i := slices.IndexFunc(old, func(n Neighbor) bool { return n.Addr == a })
	j := slices.IndexFunc(new, func(n Neighbor) bool { return n.Addr == a })
	return i >= 0 && j >= 0 && old[i] == new[j]
}

// Config is one bgp_instance.
type Config struct {
	Name      string
	LocalAS   uint32
	RouterID  netip.Addr
	Neighbors []Neighbor
	// ConnectRetry is how often a neighbor that does not answer is
	// dialled again (default 5s; gobgp's own default is 120s, too slow
	// for a director coming back).
	ConnectRetry time.Duration
}

// Session is a neighbor's state, for status, metrics and doctor.
type Session struct {
	Neighbor string `json:"neighbor"`
	RemoteAS uint32 `json:"remote_as"`
	// State is RFC 4271's: Idle, Connect, Active, OpenSent, OpenConfirm or Established.
	State string `json:"state"`
	// Since is when the session reached its current state.
	Since time.Time `json:"since"`
	// Flaps counts the times an established session went down.
	Flaps uint64 `json:"flaps"`
	// LastError is the last reason the session failed or could not be
	// opened: a NOTIFICATION sent or received (with its RFC 4271 code and
	// subcode), a connection error, a hold timer expiry.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// Announced counts the prefixes this neighbor is sent.
	Announced int `json:"announced"`
}

// HelperEnv names the environment variable that overrides where vigil-bgp is.
const HelperEnv = "VIGIL_BGP_HELPER"

// HelperInstalled is where the Debian package installs vigil-bgp.
const HelperInstalled = "/usr/lib/vigil/vigil-bgp"

// restartDelay is how long a Speaker waits before starting a helper that
// died again.
const restartDelay = time.Second

// Speaker is a running bgp_instance, as the daemon sees it.
type Speaker struct {
	cfg Config
	log *slog.Logger

	want chan routesBody // the latest desired routes and their generation (capacity 1)

	mu       sync.Mutex
	ctx      context.Context
	h        *childproc.Child // the running helper; nil before Start, after Stop, between restarts
	stopped  bool
	sessions []Session
	routes   []bgp.Route // announced, as the helper last reported
	// applied is signalled after a reconcile, for Sync.
	applied chan struct{}
	gen     uint64 // generation of the routes in want
	done    uint64 // generation reconciled
	// sent and sentGen are the routes last handed to a helper, and
	// disabled the neighbors held down: both are replayed to a restarted
	// helper.
	sent     []bgp.Route
	sentGen  uint64
	disabled map[netip.Addr]string
	exited   chan struct{} // closed when the supervisor ends (after Stop)
}

// New returns a speaker for cfg; it starts nothing.
func New(cfg Config, log *slog.Logger) *Speaker {
	if cfg.ConnectRetry == 0 {
		cfg.ConnectRetry = 5 * time.Second
	}
	s := &Speaker{cfg: cfg, log: log.With("bgp_instance", cfg.Name), want: make(chan routesBody, 1),
		applied: make(chan struct{}), disabled: map[netip.Addr]string{}, exited: make(chan struct{})}
	s.markIdle("")
	return s
}

// markIdle sets every configured neighbor's session Idle (keeping its
// flaps and last error, unless lastErr replaces it); s.mu held.
func (s *Speaker) markIdle(lastErr string) {
	had := map[string]Session{}
	for _, ss := range s.sessions {
		had[ss.Neighbor] = ss
	}
	now := time.Now()
	out := make([]Session, 0, len(s.cfg.Neighbors))
	for _, n := range s.cfg.Neighbors {
		ss, ok := had[n.Addr.String()]
		if !ok {
			ss = Session{Neighbor: n.Addr.String(), RemoteAS: n.RemoteAS}
		}
		if ss.State != "Idle" {
			ss.State, ss.Since = "Idle", now
		}
		ss.Announced = 0
		if lastErr != "" {
			ss.LastError, ss.LastErrorAt = lastErr, now
		}
		out = append(out, ss)
	}
	s.sessions = out
}

// Config returns the configuration the speaker runs. Any goroutine:
// SetNeighbors replaces the neighbors (a reload, on the daemon's BGP
// worker) while the daemon's loop reads the rest and a respawn reads all.
func (s *Speaker) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg // SetNeighbors replaces the slice, never edits it
}

// Start starts the helper and its sessions. The speaker runs until ctx
// ends or Stop; Run hands it the routes.
func (s *Speaker) Start(ctx context.Context) error {
	h, err := s.spawn()
	if err != nil {
		return fmt.Errorf("bgp_instance %s: %w", s.Config().Name, err)
	}
	s.mu.Lock()
	s.ctx = ctx
	s.h = h
	s.mu.Unlock()
	go s.supervise(h)
	return nil
}

// HelperPath finds vigil-bgp: $VIGIL_BGP_HELPER, beside this executable,
// or where the package installs it; the error names where it looked.
func HelperPath() (string, error) {
	if p := os.Getenv(HelperEnv); p != "" {
		if err := unix.Access(p, unix.X_OK); err != nil {
			return "", fmt.Errorf("the BGP speaker %s (%s) cannot be run: %w", p, HelperEnv, err)
		}
		return p, nil
	}
	var tried []string
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "vigil-bgp")
		if unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if unix.Access(HelperInstalled, unix.X_OK) == nil {
		return HelperInstalled, nil
	}
	tried = append(tried, HelperInstalled)
	return "", fmt.Errorf("the BGP speaker vigil-bgp is not installed (looked for %s; %s overrides)", strings.Join(tried, " and "), HelperEnv)
}

// spawn starts a helper and sends it the start request; it returns once
// the helper has started its sessions (or failed to).
func (s *Speaker) spawn() (*childproc.Child, error) {
	path, err := HelperPath()
	if err != nil {
		return nil, err
	}
	// No Pdeathsig: the helper exits when the daemon's end of the socket
	// closes; a daemon stopping normally withdraws and drains first.
	h, err := childproc.Start(exec.Command(path), "vigil-bgp", s.log, s.event)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.Call(ctx, opStart, startBody{Config: s.Config(), Debug: s.log.Enabled(ctx, slog.LevelDebug)}, nil); err != nil {
		h.Kill()
		return nil, err
	}
	return h, nil
}

// event takes in an event of the helper.
func (s *Speaker) event(m childproc.Msg) {
	switch m.Op {
	case opSessions:
		var ss []Session
		if json.Unmarshal(m.Body, &ss) == nil {
			s.mu.Lock()
			s.sessions = ss
			s.mu.Unlock()
		}
	case opApplied:
		var rb routesBody
		if json.Unmarshal(m.Body, &rb) == nil {
			s.mu.Lock()
			s.routes = rb.Routes
			s.done = max(s.done, rb.Gen)
			close(s.applied)
			s.applied = make(chan struct{})
			s.mu.Unlock()
		}
	}
}

// supervise waits for the helper to end; one that ends without Stop is
// started again, with what the daemon had asked of the one before.
func (s *Speaker) supervise(h *childproc.Child) {
	defer close(s.exited)
	for {
		<-h.Gone()
		h.Kill() // a helper that closed its socket is of no use
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			return
		}
		s.h = nil
		s.routes = nil
		s.markIdle("vigil-bgp exited; restarting it")
		ctx := s.ctx
		s.mu.Unlock()
		s.log.Error("bgp speaker process exited; restarting it", "in", restartDelay)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(restartDelay):
			}
			nh, err := s.spawn()
			if err == nil {
				err = s.replay(ctx, nh)
				if err != nil {
					nh.Kill()
				}
			}
			if err == nil {
				h = nh
				break
			}
			s.log.Error("bgp speaker process restart", "err", err)
			s.mu.Lock()
			stopped := s.stopped
			s.mu.Unlock()
			if stopped {
				return
			}
		}
	}
}

// replay gives a restarted helper the disabled neighbors and the routes.
func (s *Speaker) replay(ctx context.Context, h *childproc.Child) error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return errors.New("stopped")
	}
	disabled := make(map[netip.Addr]string, len(s.disabled))
	for a, r := range s.disabled {
		disabled[a] = r
	}
	rb := routesBody{Gen: s.sentGen, Routes: s.sent}
	s.mu.Unlock()
	for a, reason := range disabled {
		if err := h.Call(ctx, opSetEnabled, enabledBody{Addr: a, Reason: reason}, nil); err != nil {
			return err
		}
	}
	if err := h.Send(opSet, rb); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("stopped")
	}
	s.h = h
	if s.sentGen != rb.Gen {
		// Run took a newer set meanwhile and had no helper to give it to.
		// A failed send fails the connection: supervise sees it.
		_ = h.Send(opSet, routesBody{Gen: s.sentGen, Routes: s.sent})
	}
	return nil
}

// current returns the running helper, or an error saying why there is none.
func (s *Speaker) current() (*childproc.Child, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h == nil {
		return nil, errors.New("vigil-bgp is not running")
	}
	return s.h, nil
}

// SetNeighbors adds and removes neighbors to match ns (a reload); a
// neighbor whose settings changed is replaced.
func (s *Speaker) SetNeighbors(ctx context.Context, ns []Neighbor) error {
	s.mu.Lock()
	for a := range s.disabled {
		if !Unchanged(s.cfg.Neighbors, ns, a) {
			delete(s.disabled, a) // replaced or removed: a new neighbor starts enabled
		}
	}
	s.cfg.Neighbors = slices.Clone(ns)
	s.mu.Unlock()
	h, err := s.current()
	if err != nil {
		return err // a restarted helper starts with the new neighbors
	}
	return h.Call(ctx, opSetNeighbors, ns, nil)
}

// SetEnabled starts or tears down the session to neighbor addr: a BFD
// session that goes down takes the BGP session with it (the router drops
// our routes at once instead of after the hold time), and while it stays
// down the speaker does not reconnect.
func (s *Speaker) SetEnabled(ctx context.Context, addr netip.Addr, enabled bool, reason string) error {
	s.mu.Lock()
	if enabled {
		delete(s.disabled, addr)
	} else {
		s.disabled[addr] = reason
	}
	s.mu.Unlock()
	h, err := s.current()
	if err != nil {
		return err
	}
	return h.Call(ctx, opSetEnabled, enabledBody{Addr: addr, Enabled: enabled, Reason: reason}, nil)
}

// Set hands the speaker the routes it should announce; the latest call
// wins and is applied by Run, off the caller's goroutine.
func (s *Speaker) Set(routes []bgp.Route) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	// Under the lock, so that the generation Run sends is the one of
	// these routes (a Sync must not return on an older set).
	select {
	case <-s.want:
	default:
	}
	s.want <- routesBody{Gen: s.gen, Routes: routes}
}

// Run hands the latest Set to the helper until ctx ends; the helper
// reconciles the newest routes it has and reports what it announces.
func (s *Speaker) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case rb := <-s.want:
			s.mu.Lock()
			s.sent, s.sentGen = rb.Routes, rb.Gen
			h := s.h
			s.mu.Unlock()
			if h == nil {
				continue // replayed when the helper is back
			}
			if err := h.Send(opSet, rb); err != nil {
				s.log.Error("bgp routes to vigil-bgp", "err", err)
			}
		}
	}
}

// Sync waits until the routes of the latest Set have been handed to the
// sessions (or ctx ends).
func (s *Speaker) Sync(ctx context.Context) error {
	for {
		s.mu.Lock()
		ok, ch := s.done >= s.gen, s.applied
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Routes returns the routes announced now.
func (s *Speaker) Routes() []bgp.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.routes)
}

// Sessions returns the neighbors' states, in configuration order.
func (s *Speaker) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sessions)
}

// Stop withdraws every route (a NOTIFICATION Cease to each neighbor, so
// the routers drop our routes at once), stops the helper and waits for it.
func (s *Speaker) Stop() {
	s.mu.Lock()
	if s.stopped || s.ctx == nil {
		s.stopped = true
		s.mu.Unlock()
		return
	}
	s.stopped = true
	h := s.h
	s.mu.Unlock()
	if h != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := h.Call(ctx, opStop, nil, nil); err != nil {
			s.log.Warn("bgp speaker process did not stop cleanly", "err", err)
		}
		cancel()
		// The helper exits after its reply; one that does not is killed.
		select {
		case <-h.Exited():
		case <-time.After(2 * time.Second):
		}
		h.Kill()
	}
	<-s.exited
	s.mu.Lock()
	s.routes = nil
	s.markIdle("")
	s.mu.Unlock()
}
