package check

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"vigil/internal/testenv"
)

// resetCounter listens on loopback and reads every accepted connection to
// its end, counting how it ended: a reset (what a check must send) or a
// FIN.
type resetCounter struct {
	ap           netip.AddrPort
	resets, fins atomic.Int64
}

func newResetCounter(t *testing.T) *resetCounter { return newResetCounterOn(t, "127.0.0.1:0") }

func newResetCounterOn(t *testing.T, addr string) *resetCounter {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		testenv.Unavailable(t, fmt.Sprintf("cannot listen on %s: %v", addr, err))
	}
	rc := &resetCounter{ap: netip.MustParseAddrPort(l.Addr().String())}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // after serveTCP's cleanup has closed l
	serveTCP(t, l, func(c net.Conn) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := io.Copy(io.Discard, c)
			switch {
			case errors.Is(err, syscall.ECONNRESET):
				rc.resets.Add(1)
			case err == nil:
				rc.fins.Add(1)
			}
		}()
	})
	return rc
}

func (rc *resetCounter) waitResets(t *testing.T, n int64) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); rc.resets.Load() < n && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := rc.resets.Load(); got < n || rc.fins.Load() != 0 {
		t.Errorf("server saw %d resets and %d FINs, want %d resets and no FIN", got, rc.fins.Load(), n)
	}
}

// A connect that completes at once hands its socket back to the pool,
// reset; the next check connects the same socket again. IPv4 and IPv6.
func TestSockPoolReuseSync(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) { testSockPoolReuseSync(t, "127.0.0.1:0") })
	t.Run("ipv6", func(t *testing.T) { testSockPoolReuseSync(t, "[::1]:0") })
}

func testSockPoolReuseSync(t *testing.T, addr string) {
	srv := newResetCounterOn(t, addr)
	c, err := NewTCP(TCPConfig{Target{Addr: srv.ap, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	p := newSockPool()
	defer p.close()
	var first int
	for i := range 5 {
		fd, _, done, err := c.startPooled(p)
		if !done || err != nil || fd != -1 {
			t.Fatalf("check %d against a loopback listener: fd %d done %v err %v, want done at once", i, fd, done, err)
		}
		if p.n != 1 {
			t.Fatalf("check %d: pool holds %d sockets, want 1", i, p.n)
		}
		s := p.free[c.key][0]
		if i == 0 {
			first = s.fd
		} else if s.fd != first {
			t.Fatalf("check %d used socket %d, not the pooled %d", i, s.fd, first)
		}
	}
	srv.waitResets(t, 5)
}

// A connect still under way is waited for on the Runner's epoll; when it
// completes, the socket goes back watched, and its next wait is a rearm.
func TestSockPoolReuseWatched(t *testing.T) {
	srv := newResetCounter(t)
	c, err := NewTCP(TCPConfig{Target{Addr: srv.ap, Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	c.syncDone.Store(false) // as for a remote server: no getpeername shortcut
	w, err := newConnWatch()
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	p := newSockPool()
	defer p.close()
	for i := range 4 {
		fd, watched, done, err := c.startPooled(p)
		if done || err != nil {
			t.Fatalf("check %d: done %v err %v, want a connect to wait for", i, done, err)
		}
		if watched != (i > 0) {
			t.Fatalf("check %d: watched %v, want %v", i, watched, i > 0)
		}
		arm := w.watch
		if watched {
			arm = w.rearm
		}
		if err := arm(fd, uint64(i+1)); err != nil {
			t.Fatalf("check %d: arming the watch: %v", i, err)
		}
		if b := pollWithin(t, w, 2*time.Second); len(b) != 1 || b[0] != uint64(i+1) {
			t.Fatalf("check %d: ready %v", i, b)
		}
		if pending, err := finish(fd); pending || err != nil {
			t.Fatalf("check %d: pending %v err %v", i, pending, err)
		}
		p.release(c.key, pooledSock{fd, true})
		if p.n != 1 {
			t.Fatalf("check %d: pool holds %d", i, p.n)
		}
	}
	srv.waitResets(t, 4)
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		testenv.Unavailable(t, "no /proc/self/fd to count descriptors")
	}
	return len(ents)
}

// Under the Runner, with every connect waited for on epoll, many checks
// reuse a handful of sockets, every connection ends with a reset, and no
// descriptor outlives Run. Refused checks run among them and must not
// disturb the good ones.
func TestRunnerReusesSockets(t *testing.T) {
	srv := newResetCounter(t)
	closed := closedPort(t)
	before := openFDs(t)
	var servers []Server
	var checkers []*TCP
	for i := range 25 {
		ap := srv.ap
		if i%5 == 4 {
			ap = closed
		}
		c, err := NewTCP(TCPConfig{Target{Addr: ap, Timeout: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		c.syncDone.Store(false)
		checkers = append(checkers, c)
		servers = append(servers, Server{ID: fmt.Sprintf("rs%d", i), Checks: []Watch{{c, fast(0)}}})
	}
	var ups, downs, refused atomic.Int64
	var maxFDs atomic.Int64
	_, stop := runRunner(t, servers, RunnerOptions{OnResult: func(rep Report) {
		switch {
		case rep.Result.Up:
			ups.Add(1)
		case strings.Contains(rep.Checker, closed.String()):
			refused.Add(1)
		default:
			downs.Add(1)
			t.Errorf("%s: %s", rep.Server, rep.Result.Detail)
		}
	}})
	for end := time.Now().Add(400 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if n := int64(openFDs(t)); n > maxFDs.Load() {
			maxFDs.Store(n)
		}
	}
	stop()
	for _, c := range checkers {
		if c.syncDone.Load() {
			t.Fatalf("a checker took the synchronous path; the test means the epoll one")
		}
	}
	if downs.Load() != 0 || ups.Load() < 200 || refused.Load() < 20 {
		t.Fatalf("%d up, %d refused and %d down results, want hundreds up, dozens refused, none down",
			ups.Load(), refused.Load(), downs.Load())
	}
	srv.waitResets(t, ups.Load())
	// The server's own accepted connections come and go too; the checks'
	// sockets must not grow with the number of checks.
	if extra := maxFDs.Load() - int64(before); extra > 100 {
		t.Errorf("up to %d more descriptors open during %d checks", extra, ups.Load())
	}
	time.Sleep(50 * time.Millisecond)
	if after := openFDs(t); after > before {
		t.Errorf("%d descriptors open after Run, %d before", after, before)
	}
}
