// Package labtest is what the tests of several packages share: a
// namespace lab (or a one-segment lab) built and removed around a test,
// the daemons they run in it (vigil built from this tree, the real
// keepalived, FRR) and vigil's status, a buffer that collects a child
// process's output while the test reads it, the wait for a condition, a
// collector of what a component reports from its goroutines, running a
// component until the test ends (and checking that it stops promptly),
// and the /bin/sh scripts tests run.
package labtest

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// New builds the empty lab prefix and deletes it, and every process
// started in it, when the test ends; a failed cleanup fails the test.
func New(t testing.TB, prefix string) *netlab.Lab {
	t.Helper()
	l, err := netlab.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab cleanup: %v", err)
		}
	})
	return l
}

// AddSegments adds the named segments (bridges) to l; an error fails the
// test.
func AddSegments(t testing.TB, l *netlab.Lab, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := l.AddSegment(n); err != nil {
			t.Fatal(err)
		}
	}
}

// AddHost adds the host name to l; an error fails the test.
func AddHost(t testing.TB, l *netlab.Lab, name string) *netlab.Host {
	t.Helper()
	h, err := l.AddHost(name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Connect plugs h into segment seg as ifname with the addresses (see
// netlab's Connect) and returns the switch-side port; an error fails the
// test.
func Connect(t testing.TB, l *netlab.Lab, h *netlab.Host, ifname, seg string, addrs ...string) string {
	t.Helper()
	port, err := l.Connect(h, ifname, seg, addrs...)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// LAN builds the lab prefix with one segment "lan" and the named hosts, in
// order, each with eth0 on the segment addressed from addrs[name]. It
// returns the lab, the hosts and their switch-side ports (for Cut and
// Isolate), and deletes everything when the test ends. It needs root and
// ip (skipping for users, failing under CI=true without them).
func LAN(t testing.TB, prefix string, addrs map[string][]string, names ...string) (*netlab.Lab, map[string]*netlab.Host, map[string]string) {
	t.Helper()
	testenv.RequireLab(t)
	l := New(t, prefix)
	AddSegments(t, l, "lan")
	hosts, ports := map[string]*netlab.Host{}, map[string]string{}
	for _, n := range names {
		h := AddHost(t, l, n)
		hosts[n], ports[n] = h, Connect(t, l, h, "eth0", "lan", addrs[n]...)
	}
	return l, hosts, ports
}

// OneHost builds the lab prefix with one host, "a", whose eth0 has
// 192.0.2.1/24 on segment "lan", as LAN does, and returns the host.
func OneHost(t testing.TB, prefix string) *netlab.Host {
	t.Helper()
	_, hosts, _ := LAN(t, prefix, map[string][]string{"a": {"192.0.2.1/24"}}, "a")
	return hosts["a"]
}

// MustRun runs a command in h and returns its output; a failure fails the
// test.
func MustRun(t testing.TB, h *netlab.Host, name string, args ...string) string {
	t.Helper()
	out, err := h.Run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Buffer is a bytes.Buffer safe for a process writing while a test reads.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor polls cond every 5 ms until it holds, and returns how long that
// took; if timeout passes first it fails the test, naming what it waited
// for.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}
