package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"vigil/control"
	"vigil/internal/testenv"
)

// startServer serves s on a loopback listener until the test ends.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, s, ln)
}

func serveOn(t *testing.T, s *Server, ln net.Listener) string {
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

func newTestServer(alive func(context.Context) error) *Server {
	if alive == nil {
		alive = func(context.Context) error { return nil }
	}
	return NewServer(func(context.Context) (control.Status, error) { return fullStatus(), nil }, alive)
}

// phases counts the server's connections by phase.
func (s *Server) phases() map[phase]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[phase]int{}
	for _, st := range s.conns {
		n[st.phase]++
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10 s", what)
		}
	}
}

// heldUntil is a health check that answers when release is closed (or
// its context ends), to hold connections in the answering phase.
func heldUntil(release <-chan struct{}) func(context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawRequest writes req on a new connection to addr and returns all the
// server sends back until it closes the connection.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// httpGet is a scrape as Prometheus makes one: Go's client with
// keep-alive on (its default), bounded by timeout.
func httpGet(client *http.Client, url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// scrapeLater scrapes addr in the background and sends nil once it has
// the metrics, or why not.
func scrapeLater(client *http.Client, addr string) <-chan error {
	got := make(chan error, 1)
	go func() {
		code, body, err := httpGet(client, "http://"+addr+"/metrics")
		if err == nil && (code != 200 || !strings.Contains(body, "vigil_info{")) {
			err = errors.New("not the metrics")
		}
		got <- err
	}()
	return got
}

// TestServerIdleClientsDoNotLockOut: with more idle clients than the
// server takes connections (some silent, some trickling a head that never
// ends), a scrape and a health probe are still answered at once: the
// server drops the oldest idle connection for each newcomer. The head
// timeout is set far beyond the test's patience, so only that eviction
// can serve them.
func TestServerIdleClientsDoNotLockOut(t *testing.T) {
	s := newTestServer(nil)
	s.headTimeout = time.Minute
	addr := startServer(t, s)
	var idle []net.Conn
	for i := 0; i < maxConns+4; i++ {
		c := dial(t, addr)
		if i%2 == 1 {
			if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nX-Slow: "); err != nil {
				t.Fatal(err)
			}
		}
		idle = append(idle, c)
		// Each is accepted before the next connects, so "oldest" is
		// the order of this slice.
		waitUntil(t, "connection accepted", func() bool { return s.phases()[reading] == min(i+1, maxConns) })
	}
	client := &http.Client{Timeout: 3 * time.Second}
	for _, path := range []string{"/metrics", "/healthz", "/metrics"} {
		start := time.Now()
		code, body, err := httpGet(client, "http://"+addr+path)
		if err != nil || code != 200 || path == "/metrics" && !strings.Contains(body, "vigil_info{") || path == "/healthz" && body != "ok\n" {
			t.Fatalf("GET %s with %d idle clients: %d %.80q %v after %v", path, len(idle), code, body, err, time.Since(start))
		}
		// Its connection ends before the next request, which then
		// takes its slot (the count below depends on it).
		waitUntil(t, "the end of the request's connection", func() bool { p := s.phases(); return p[answering]+p[writing]+p[lingering] == 0 })
	}
	// The first clients were the ones dropped: four for the idle
	// clients beyond the cap, one for the first request (after it, its
	// own connection's slot is free for the next).
	deadline := time.Now().Add(200 * time.Millisecond)
	for i, c := range idle {
		_ = c.SetReadDeadline(deadline)
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		timedOut := errors.As(err, &ne) && ne.Timeout()
		if i < 5 && timedOut {
			t.Errorf("idle client %d still connected; want the 5 oldest dropped", i)
		}
		if i >= 5 && !timedOut {
			t.Errorf("idle client %d dropped (%v); want only the 5 oldest dropped", i, err)
		}
	}
	if n := len(s.phases()); n > maxConns {
		t.Errorf("%d connections held, more than %d", n, maxConns)
	}
}

// TestServerWaitsForBusyConnections: when every connection is being
// answered (here, health probes of a loop that answers late) a new scrape
// waits for one of them to end instead of being turned away.
func TestServerWaitsForBusyConnections(t *testing.T) {
	release := make(chan struct{})
	s := newTestServer(heldUntil(release))
	addr := startServer(t, s)
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for i := 0; i < maxConns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, body, err := httpGet(client, "http://"+addr+"/healthz"); code != 200 || err != nil {
				t.Errorf("/healthz: %d %q %v", code, body, err)
			}
		}()
	}
	defer wg.Wait()
	waitUntil(t, "16 probes being answered", func() bool { return s.phases()[answering] == maxConns })
	got := scrapeLater(client, addr)
	time.Sleep(100 * time.Millisecond)
	close(release)
	if err := <-got; err != nil {
		t.Errorf("a scrape while %d probes were answered: %v", maxConns, err)
	}
}

// TestServerSlowReadersDoNotLockOut: clients that ask for the metrics
// and do not read them (socket buffers too small for the answer, so the
// server's writes block) hold their connections no longer than slowWrite
// once a scrape wants a slot, although the answer timeout is far off.
func TestServerSlowReadersDoNotLockOut(t *testing.T) {
	s := newTestServer(nil)
	s.slowWrite = 300 * time.Millisecond
	s.answerTimeout = time.Minute
	bufSize := func(opt int) func(string, string, syscall.RawConn) error {
		return func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, 2048) })
			return errors.Join(err, serr)
		}
	}
	// Accepted sockets inherit the listener's send buffer.
	ln, err := (&net.ListenConfig{Control: bufSize(syscall.SO_SNDBUF)}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOn(t, s, ln)
	slow := &net.Dialer{Control: bufSize(syscall.SO_RCVBUF)}
	for i := 0; i < maxConns; i++ {
		c, err := slow.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "16 answers stuck in their writes", func() bool { return s.phases()[writing] == maxConns })
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	code, body, err := httpGet(client, "http://"+addr+"/metrics")
	if err != nil || code != 200 || !strings.Contains(body, "vigil_info{") {
		t.Fatalf("a scrape with %d clients not reading their answers: %d %.80q %v after %v", maxConns, code, body, err, time.Since(start))
	}
	// The scrape's own connection may still be writing for a moment
	// after its client has it all.
	waitUntil(t, "one slow reader cut for the scrape", func() bool { return s.phases()[writing] == maxConns-1 })
}

// TestServerWakesWhenAnAnswerIsDone: a scrape waiting at the cap behind
// connections being answered is admitted as soon as one of them has its
// answer (and so becomes evictable), not when a connection ends. Here the
// clients never close, and the linger and slow-write times are far beyond
// the scrape's patience: only the wake-up on the phase change serves it.
func TestServerWakesWhenAnAnswerIsDone(t *testing.T) {
	release := make(chan struct{})
	s := newTestServer(heldUntil(release))
	s.lingerTimeout, s.slowWrite = time.Minute, time.Minute
	addr := startServer(t, s)
	for i := 0; i < maxConns; i++ {
		if _, err := io.WriteString(dial(t, addr), "GET /healthz HTTP/1.1\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "16 probes being answered", func() bool { return s.phases()[answering] == maxConns })
	got := scrapeLater(&http.Client{Timeout: 5 * time.Second}, addr)
	time.Sleep(100 * time.Millisecond) // the scrape waits in admit
	close(release)
	if err := <-got; err != nil {
		t.Errorf("a scrape at the cap once the probes were answered: %v", err)
	}
}

// TestServerHeadAndAnswerTimeouts: the head timeout counts from the
// accept (a trickling client is dropped on time however it paces its
// bytes), and the answer has its own time after it, so a request whose
// head came late is still answered when its answer takes a while.
func TestServerHeadAndAnswerTimeouts(t *testing.T) {
	s := newTestServer(func(ctx context.Context) error { time.Sleep(1200 * time.Millisecond); return nil })
	s.headTimeout = 1500 * time.Millisecond
	addr := startServer(t, s)

	// A head sent 0.6 s after the connection, answered 1.2 s later: the
	// exchange outlasts the head timeout.
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET /heal"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if _, err := io.WriteString(c, "thz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(b), "\r\n\r\nok\n") || err != nil {
		t.Errorf("a late head with a slow answer: %q %v", b, err)
	}

	// A client trickling a byte every 50 ms is dropped at the head
	// timeout, without an answer.
	s = newTestServer(nil)
	s.headTimeout = 300 * time.Millisecond
	c = dial(t, startServer(t, s))
	start := time.Now()
	var closed time.Duration
	for i := 0; closed == 0 && i < 100; i++ {
		if _, err := c.Write([]byte{"GET /metrics HTTP/1.1\r\nX: "[i%25]}); err != nil {
			closed = time.Since(start)
		}
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Read(make([]byte, 64))
		if n > 0 {
			t.Fatalf("the server answered a trickling client")
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			closed = time.Since(start)
		}
	}
	if closed < 250*time.Millisecond || closed > 3*time.Second {
		t.Errorf("a trickling client was dropped after %v; want the head timeout, 300 ms", closed)
	}
}

// TestServerLingeringClose: a client whose request carries more than the
// server reads (a body, an oversized head) still gets its answer and an
// orderly end of the connection, not a reset.
func TestServerLingeringClose(t *testing.T) {
	addr := startServer(t, newTestServer(nil))
	for _, c := range []struct{ req, status string }{
		{"POST /metrics HTTP/1.1\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("x", 200000), "HTTP/1.1 405 "},
		{"GET /metrics HTTP/1.1\r\nX: " + strings.Repeat("a", 3*maxHead) + "\r\n\r\n", "HTTP/1.1 431 "},
		{"GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n" + strings.Repeat("GET / HTTP/1.1\r\n\r\n", 2000), "HTTP/1.1 200 OK"},
	} {
		conn := dial(t, addr)
		go func() { _, _ = io.WriteString(conn, c.req) }()
		time.Sleep(50 * time.Millisecond) // the answer is in before the client reads
		b, err := io.ReadAll(conn)
		if !strings.HasPrefix(string(b), c.status) || err != nil {
			t.Errorf("%.40q: %.80q, %v; want %q and the connection's end", c.req, b, err, c.status)
		}
	}
}

// TestServerKeepAliveClients: Prometheus' client keeps connections
// alive; the server answers Connection: close and ends each one, and the
// client makes a new one for its next scrape.
func TestServerKeepAliveClients(t *testing.T) {
	addr := startServer(t, newTestServer(nil))
	client := &http.Client{Timeout: 5 * time.Second} // keep-alive on
	for i := 0; i < 3; i++ {
		req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
		req.Header.Set("Connection", "keep-alive")
		req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1")
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("scrape %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || !resp.Close || resp.Header.Get("Content-Encoding") != "" ||
			resp.Header.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" || resp.Header.Get("Date") == "" ||
			!slices.Equal(resp.TransferEncoding, []string{"chunked"}) || !strings.Contains(string(b), "vigil_info{") ||
			!strings.HasSuffix(string(b), "\n") || strings.Count(string(b), "# TYPE go_goroutines ") != 1 {
			t.Fatalf("scrape %d: %d %v %v %v (close %v), %d bytes", i, resp.StatusCode, err, resp.Header, resp.TransferEncoding, resp.Close, len(b))
		}
	}
	// HTTP/1.0 with keep-alive asked for: the same answer, then the end.
	c := dial(t, addr)
	if _, err := io.WriteString(c, "HEAD /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200 OK\r\n") || !strings.Contains(string(b), "\r\nConnection: close\r\n") ||
		!strings.Contains(string(b), "\r\nContent-Length: 3\r\n") || !strings.HasSuffix(string(b), "\r\n\r\n") {
		t.Errorf("HEAD with keep-alive: %q %v; want the head of 200 ok and the connection closed", b, err)
	}
}

// TestServerScrapeFraming: a scrape is sent in chunks to an HTTP/1.1
// client, whole up to the connection's end to an HTTP/1.0 one, and as
// its head alone for HEAD; the text is the same as WriteText's.
func TestServerScrapeFraming(t *testing.T) {
	s := newTestServer(nil)
	addr := startServer(t, s)
	var want bytes.Buffer
	if err := s.c.WriteText(&want); err != nil {
		t.Fatal(err)
	}
	// Runtime series (goroutines, memory) move between two scrapes.
	vigilOnly := func(text string) string {
		var keep []string
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "vigil_") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	raw := func(req string) (head, body string) {
		t.Helper()
		c := dial(t, addr)
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		head, body, _ = strings.Cut(string(b), "\r\n\r\n")
		return head + "\r\n", body
	}

	head, body := raw("GET /metrics HTTP/1.1\r\n\r\n")
	if !strings.Contains(head, "\r\nTransfer-Encoding: chunked\r\n") || strings.Contains(head, "Content-Length") {
		t.Errorf("HTTP/1.1 scrape's head:\n%s", head)
	}
	var text strings.Builder
	chunks := 0
	for {
		size, rest, ok := strings.Cut(body, "\r\n")
		n, err := strconv.ParseUint(size, 16, 32)
		if !ok || err != nil || uint64(len(rest)) < n+2 || rest[n:n+2] != "\r\n" {
			t.Fatalf("chunk %d does not parse: %.40q", chunks, body)
		}
		if n == 0 {
			if rest != "\r\n" {
				t.Errorf("after the last chunk: %q, want the empty line alone", rest)
			}
			break
		}
		chunks++
		text.WriteString(rest[:n])
		body = rest[n+2:]
	}
	if chunks < 2 || vigilOnly(text.String()) != vigilOnly(want.String()) || !strings.Contains(text.String(), "\ngo_goroutines ") {
		t.Errorf("%d chunks of %d bytes, vigil's series differ from WriteText's:\n%s", chunks, text.Len(), text.String())
	}

	head, body = raw("GET /metrics HTTP/1.0\r\n\r\n")
	if strings.Contains(head, "Transfer-Encoding") || strings.Contains(head, "Content-Length") ||
		vigilOnly(body) != vigilOnly(want.String()) || !strings.Contains(body, "\ngo_goroutines ") {
		t.Errorf("HTTP/1.0 scrape:\n%s\n%.200s", head, body)
	}

	head, body = raw("HEAD /metrics HTTP/1.1\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") || !strings.Contains(head, "\r\nTransfer-Encoding: chunked\r\n") || body != "" {
		t.Errorf("HEAD /metrics: %q then %q, want the head of a scrape alone", head, body)
	}
}

// fakeListener returns the scripted Accept results, then blocks until
// Close.
type fakeListener struct {
	mu      sync.Mutex
	script  []error // nil: a connection
	times   []time.Time
	closed  chan struct{}
	nclosed int
}

func newFakeListener(script ...error) *fakeListener {
	return &fakeListener{script: script, closed: make(chan struct{})}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.times = append(l.times, time.Now())
	if len(l.script) == 0 {
		l.mu.Unlock()
		<-l.closed
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
	}
	err := l.script[0]
	if len(l.script) > 1 || err == nil {
		l.script = l.script[1:]
	} // the last error repeats
	l.mu.Unlock()
	if err == nil {
		a, b := net.Pipe()
		go func() { _, _ = io.WriteString(b, "GET /healthz HTTP/1.1\r\n\r\n"); _, _ = io.ReadAll(b); b.Close() }()
		return a, nil
	}
	return nil, err
}

func (l *fakeListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.nclosed == 0 {
		close(l.closed)
	}
	l.nclosed++
	return nil
}

func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestServeAcceptErrors: a temporary Accept error (out of descriptors, a
// timeout) is waited out with a doubling delay and serving goes on; a
// permanent one ends Serve with that error; either way, and on Close,
// the listener is closed when Serve returns.
func TestServeAcceptErrors(t *testing.T) {
	t.Run("temporary then permanent", func(t *testing.T) {
		permanent := acceptErr(syscall.EBADF)
		ln := newFakeListener(acceptErr(syscall.EMFILE), acceptErr(syscall.ENFILE), timeoutErr{}, acceptErr(syscall.EMFILE), nil, acceptErr(syscall.ENOBUFS), permanent)
		s := newTestServer(nil)
		defer s.Close()
		if err := s.Serve(ln); !errors.Is(err, syscall.EBADF) {
			t.Errorf("Serve returned %v, want the permanent %v", err, permanent)
		}
		if ln.nclosed == 0 {
			t.Errorf("Serve returned and left its listener open")
		}
		if len(ln.times) != 7 {
			t.Fatalf("%d Accepts, want 7: Serve stops at the permanent error", len(ln.times))
		}
		// Lower bounds only: a loaded machine stretches the waits.
		for i, want := range []time.Duration{5, 10, 20, 40, 0, 5} {
			if got := ln.times[i+1].Sub(ln.times[i]); got < want*time.Millisecond {
				t.Errorf("Accept %d came %v after the error before it, want at least %d ms", i+2, got, want)
			}
		}
	})
	t.Run("closed listener", func(t *testing.T) {
		ln := newFakeListener(&net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed})
		if err := newTestServer(nil).Serve(ln); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Serve on a listener closed elsewhere returned %v, want net.ErrClosed", err)
		}
	})
	t.Run("Close during the back-off", func(t *testing.T) {
		ln := newFakeListener(acceptErr(syscall.EMFILE)) // for ever
		s := newTestServer(nil)
		done := make(chan error, 1)
		go func() { done <- s.Serve(ln) }()
		time.Sleep(400 * time.Millisecond) // the wait is up to 320 ms
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v after Close, want ErrServerClosed", err)
		}
		if ln.nclosed == 0 {
			t.Errorf("Serve returned and left its listener open")
		}
	})
}

// TestPrometheusScrapes: a real Prometheus server scrapes the server
// (with its own client, headers and keep-alive) and stores the series.
func TestPrometheusScrapes(t *testing.T) {
	testenv.RequireTool(t, "prometheus")
	t.Parallel() // most of its time is Prometheus starting
	addr := startServer(t, newTestServer(nil))
	// A free port for Prometheus' own API, found as the kernel hands one
	// out; it is free again a moment later.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	web := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: vigil
    static_configs:
      - targets: ["`+addr+`"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("prometheus", "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	query := func(q string) string {
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	var got string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got = query(`up{job="vigil"} == 1 and on() scrape_samples_scraped{job="vigil"} > 50 and on() count(vigil_info) == 1`)
		if strings.Contains(got, `"result":[{`) {
			break
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			up := query(`up`)
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("after 30 s Prometheus has not scraped vigil_info from the server: %s\nup: %s\n%s", got, up, out.String())
		}
	}
}

// status1000 is a snapshot of 1,000 VRRP instances, each with its own
// counters, as the daemon's are.
func status1000() control.Status {
	st := fullStatus()
	one := st.Instances[0]
	st.Instances = nil
	for i := 0; i < 1000; i++ {
		in := one
		in.Name, in.VRID = fmt.Sprintf("VI_%d", i), 1+i%255
		in.Counters = maps.Clone(one.Counters)
		in.ForeignVRIDs = maps.Clone(one.ForeignVRIDs)
		st.Instances = append(st.Instances, in)
	}
	return st
}

// BenchmarkGather1000: the samples of a scrape of 1,000 instances, which
// are live together while it is written; live-B is what they hold.
func BenchmarkGather1000(b *testing.B) {
	st := status1000()
	c := New(func() (control.Status, bool) { return st, true })
	var ms runtime.MemStats
	var live uint64
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		before := ms.HeapAlloc
		f := c.gather()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		live = ms.HeapAlloc - before
		bw := bufio.NewWriter(io.Discard)
		f.writeText(bw)
		runtime.KeepAlive(f)
	}
	b.ReportMetric(float64(live), "live-B")
}

// BenchmarkScrape1000: a whole scrape over loopback of a daemon with
// 1,000 VRRP instances; B/op is the server's allocations (the client
// reads into one reused buffer).
func BenchmarkScrape1000(b *testing.B) {
	st := status1000()
	s := NewServer(func(context.Context) (control.Status, error) { return st, nil }, func(context.Context) error { return nil })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	defer s.Close()
	buf := make([]byte, 64<<10)
	var size int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\n\r\n"); err != nil {
			b.Fatal(err)
		}
		size = 0
		for {
			n, err := c.Read(buf)
			size += n
			if err != nil {
				break
			}
		}
		c.Close()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

// TestTextEscapes: label values with quotes, backslashes and newlines,
// and values that are not finite, read back as written.
func TestTextEscapes(t *testing.T) {
	m := &metric{Def: Def{Name: "vigil_test_value", Kind: Gauge, Help: `a \ and a` + "\nnewline", Labels: []string{"b", "a"}}}
	var f Families
	odd := "q\"uote b\\ackslash new\nline"
	f.emit(m, math.Inf(1), odd, "1")
	f.emit(m, math.Inf(-1), "x", "2")
	f.emit(m, math.NaN(), "x", "3")
	f.emit(m, 0.25, "x", "4")
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	f.write(w, []*metric{m})
	w.Flush()
	mfs, err := parse(b.String())
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 4 {
		t.Fatalf("%v %v\n%s", err, mfs, b.String())
	}
	got := map[string]string{}
	for _, s := range mfs[0].GetMetric() {
		got[s.GetLabel()[0].GetValue()+"|"+s.GetLabel()[1].GetValue()] = fmt.Sprint(s.GetGauge().GetValue())
	}
	want := map[string]string{"1|" + odd: "+Inf", "2|x": "-Inf", "3|x": "NaN", "4|x": "0.25"}
	if fmt.Sprint(got) != fmt.Sprint(want) || mfs[0].GetHelp() != m.Help {
		t.Errorf("read back %v (help %q), want %v (help %q)\n%s", got, mfs[0].GetHelp(), want, m.Help, b.String())
	}
}

// TestServerScrapedHook: Scraped runs after each scrape's answer is
// written (the daemon hands the scrape's garbage back to the kernel after
// it), and only then: not for HEAD, /healthz or an error.
func TestServerScrapedHook(t *testing.T) {
	s := newTestServer(nil)
	var n atomic.Int32
	s.Scraped = func() { n.Add(1) }
	addr := startServer(t, s)
	for _, req := range []string{
		"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
		"GET /nope HTTP/1.1\r\n\r\n",
	} {
		rawRequest(t, addr, req)
	}
	if got := n.Load(); got != 0 {
		t.Fatalf("Scraped ran %d times without a scrape", got)
	}
	for k := 1; k <= 2; k++ {
		if out := rawRequest(t, addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.Contains(out, "vigil_info") {
			t.Fatalf("scrape %d: %.200q", k, out)
		}
		waitUntil(t, "Scraped after the scrape", func() bool { return n.Load() == int32(k) })
	}
}
