package speaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vigil/bgp"
	"vigil/internal/childproc"
	"vigil/internal/labtest"
)

// The tests run the Speaker against a real helper process: this test
// binary, re-executed with fakeHelperEnv set, serves the protocol with
// fakeEngine (no BGP: the real engine is tested end to end in e2e).
const fakeHelperEnv = "VIGIL_SPEAKER_FAKE_HELPER"

func TestMain(m *testing.M) {
	childproc.MainIfChild(fakeHelperEnv, func(conn net.Conn) error { return Serve(conn, newFake) })
	os.Exit(m.Run())
}

// fakeEngine establishes every enabled neighbor at once and announces
// every route except those in 198.51.100.0/24, which it refuses.
type fakeEngine struct {
	cfg     Config
	log     *slog.Logger
	changed func()

	mu       sync.Mutex
	disabled map[netip.Addr]bool
	routes   []bgp.Route
}

func newFake(cfg Config, log *slog.Logger, changed func()) Engine {
	return &fakeEngine{cfg: cfg, log: log, changed: changed, disabled: map[netip.Addr]bool{}}
}

func (f *fakeEngine) Start(context.Context) error {
	if f.cfg.LocalAS == 0 {
		return errors.New("local AS 0")
	}
	f.log.Info("fake started", "pid", os.Getpid())
	f.log.Debug("fake debug line")
	return nil
}

func (f *fakeEngine) SetNeighbors(_ context.Context, ns []Neighbor) error {
	f.mu.Lock()
	f.cfg.Neighbors = ns
	f.mu.Unlock()
	f.changed()
	return nil
}

func (f *fakeEngine) SetEnabled(_ context.Context, a netip.Addr, enabled bool, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.ContainsFunc(f.cfg.Neighbors, func(n Neighbor) bool { return n.Addr == a }) {
		return fmt.Errorf("no neighbor %s", a)
	}
	f.disabled[a] = !enabled
	f.changed()
	return nil
}

func (f *fakeEngine) Reconcile(want []bgp.Route) []bgp.Route {
	refused := netip.MustParsePrefix("198.51.100.0/24")
	var got []bgp.Route
	for _, r := range want {
		if !refused.Contains(r.Prefix.Addr()) {
			got = append(got, r)
		}
	}
	f.mu.Lock()
	f.routes = got
	f.mu.Unlock()
	return got
}

func (f *fakeEngine) Sessions() []Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Session
	for _, n := range f.cfg.Neighbors {
		st := "Established"
		if f.disabled[n.Addr] {
			st = "Idle"
		}
		out = append(out, Session{Neighbor: n.Addr.String(), RemoteAS: n.RemoteAS, State: st, Announced: len(f.routes),
			LastError: fmt.Sprintf("pid %d", os.Getpid())})
	}
	return out
}

func (f *fakeEngine) Stop() { f.log.Info("fake stopped") }

func useFakeHelper(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(HelperEnv, exe)
	t.Setenv(fakeHelperEnv, "1")
}

func route(p string) bgp.Route {
	return bgp.Route{Instance: "E", Prefix: netip.MustParsePrefix(p)}
}

var (
	n1 = Neighbor{Addr: netip.MustParseAddr("192.0.2.1"), RemoteAS: 65000}
	n2 = Neighbor{Addr: netip.MustParseAddr("192.0.2.2"), RemoteAS: 65000}
)

// startFake starts a Speaker on the fake helper with Run going.
func startFake(t *testing.T, log *slog.Logger) *Speaker {
	t.Helper()
	useFakeHelper(t)
	s := New(Config{Name: "E", LocalAS: 65001, Neighbors: []Neighbor{n1, n2}}, log)
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	t.Cleanup(func() { s.Stop(); cancel(); <-done })
	return s
}

func TestSpeakerThroughHelper(t *testing.T) {
	buf := &labtest.Buffer{}
	s := startFake(t, slog.New(slog.NewTextHandler(buf, nil)))
	labtest.WaitFor(t, 10*time.Second, "sessions established", func() bool {
		ss := s.Sessions()
		return len(ss) == 2 && ss[0].State == "Established" && ss[1].State == "Established"
	})

	s.Set([]bgp.Route{route("203.0.113.1/32")})
	s.Set([]bgp.Route{route("203.0.113.1/32"), route("203.0.113.2/32"), route("198.51.100.7/32")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	got := s.Routes()
	if len(got) != 2 || got[0].Prefix.String() != "203.0.113.1/32" || got[1].Prefix.String() != "203.0.113.2/32" {
		t.Errorf("announced after Sync = %v, want the two the engine took", got)
	}
	labtest.WaitFor(t, 10*time.Second, "announced counts", func() bool { return s.Sessions()[0].Announced == 2 })

	if err := s.SetEnabled(ctx, n2.Addr, false, "BFD session B is not up"); err != nil {
		t.Fatal(err)
	}
	labtest.WaitFor(t, 10*time.Second, "neighbor 2 disabled", func() bool { return s.Sessions()[1].State == "Idle" })
	if err := s.SetEnabled(ctx, netip.MustParseAddr("192.0.2.99"), false, "x"); err == nil || !strings.Contains(err.Error(), "no neighbor 192.0.2.99") {
		t.Errorf("the engine's error did not come back: %v", err)
	}

	if !strings.Contains(buf.String(), "fake started") || !strings.Contains(buf.String(), "bgp_instance=E") {
		t.Errorf("the helper's log did not reach the daemon's logger with bgp_instance:\n%s", buf)
	}
	if strings.Contains(buf.String(), "fake debug line") {
		t.Errorf("a debug line reached an info logger:\n%s", buf)
	}
}

func TestSpeakerStartError(t *testing.T) {
	useFakeHelper(t)
	s := New(Config{Name: "E", Neighbors: []Neighbor{n1}}, slog.New(slog.DiscardHandler))
	err := s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bgp_instance E: local AS 0") {
		t.Fatalf("Start = %v, want the engine's error", err)
	}
	s.Stop()
}

func TestSpeakerNoHelper(t *testing.T) {
	t.Setenv(HelperEnv, "/nonexistent/vigil-bgp")
	s := New(Config{Name: "E", LocalAS: 1}, slog.New(slog.DiscardHandler))
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "/nonexistent/vigil-bgp") {
		t.Fatalf("Start = %v, want an error naming the helper", err)
	}
}

// TestSpeakerRestartsHelper: a helper killed under the daemon is started
// again with the neighbor held down and the routes it had.
func TestSpeakerRestartsHelper(t *testing.T) {
	buf := &labtest.Buffer{}
	s := startFake(t, slog.New(slog.NewTextHandler(buf, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.Set([]bgp.Route{route("203.0.113.1/32")})
	if err := s.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEnabled(ctx, n1.Addr, false, "BFD down"); err != nil {
		t.Fatal(err)
	}
	h, err := s.current()
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("pid %d", h.Pid())
	labtest.WaitFor(t, 10*time.Second, "the helper's sessions", func() bool { return s.Sessions()[1].LastError == old })
	if err := syscall.Kill(h.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	labtest.WaitFor(t, 10*time.Second, "the exit reported", func() bool { return strings.Contains(s.Sessions()[0].LastError, "vigil-bgp exited") })
	labtest.WaitFor(t, 10*time.Second, "a new helper", func() bool {
		ss := s.Sessions()
		return ss[1].State == "Established" && ss[1].LastError != old && strings.HasPrefix(ss[1].LastError, "pid ")
	})
	labtest.WaitFor(t, 10*time.Second, "the disabled neighbor held down again", func() bool { return s.Sessions()[0].State == "Idle" })
	labtest.WaitFor(t, 10*time.Second, "routes replayed", func() bool { return len(s.Routes()) == 1 })
	if !strings.Contains(buf.String(), "restarting") {
		t.Errorf("the restart is not logged:\n%s", buf)
	}
}
