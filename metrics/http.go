package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"vigil/control"
)

// StatusFunc asks the daemon for a snapshot.
type StatusFunc func(ctx context.Context) (control.Status, error)

// snapshotTimeout bounds how long a scrape or a health probe waits for
// the daemon's loop: a loop that does not answer in that time is stuck.
const snapshotTimeout = 2 * time.Second

// Server serves /metrics (vigil's metrics from status, with the Go
// runtime and process families) and /healthz (200 while alive says the
// daemon's event loop answers, 503 otherwise, for watchdogs and load
// balancer probes; it reads no counters) over HTTP/1.1, one request per
// connection. Every other path is 404 and every method but GET and HEAD
// 405, so metrics are scraped from one address only.
//
// It is written on the net package rather than net/http: the daemon's
// binary linked net/http (with HTTP/2, its header tables and their
// initialisation) for these two paths alone, and every daemon process
// held 0.4-0.8 MB more of the binary resident for it (issue #7,
// docs/benchmarks.md).
//
// What a scraper or a probe sends is a small head right after it
// connects, so the server is built to keep answering them whatever else
// connects: it serves at most maxConns connections at once (one
// goroutine each), gives a client headTimeout from its connection to the
// end of its request head and, separately, answerTimeout to take its
// answer; and when a connection arrives at the cap it closes one that
// has had its answer already, or else the oldest that has not sent a
// complete head, or else one whose client has not read its answer within
// slowWrite, instead of turning the newcomer away, so idle, slow-loris
// or non-reading clients cannot lock a scrape out (see admit). Every
// answer says Connection: close; keeping connections open between
// scrapes would tie up a slot and a goroutine per scraper for nothing.
type Server struct {
	// Scraped, if set before Serve, is called after each /metrics
	// answer with a body is written (from the connection's goroutine).
	Scraped func()

	c     *Collector
	alive func(ctx context.Context) error

	headTimeout   time.Duration // from the accept to the end of the request head
	answerTimeout time.Duration // from the end of the head to the end of the answer
	lingerTimeout time.Duration // for the client to close after its answer (see linger)
	slowWrite     time.Duration // a write this old can be cut when its slot is wanted (see admit)

	mu     sync.Mutex
	slot   sync.Cond // on mu: a connection ended or was evicted, or Close was called
	ln     net.Listener
	conns  map[net.Conn]*connState
	closed bool
	done   chan struct{} // closed by Close: ends Serve's back-off
	wg     sync.WaitGroup
}

const (
	maxHead  = 8 << 10
	maxConns = 16

	// headTimeout: a real client sends its head in the packet after the
	// handshake, within a round trip; two seconds leave room for a slow
	// network while an idle client is dropped soon (and earlier still
	// when its slot is wanted).
	headTimeout = 2 * time.Second
	// answerTimeout: the snapshot waits at most snapshotTimeout for the
	// daemon's loop; the rest is for the client to take the text.
	answerTimeout = 10 * time.Second
	// slowWrite: a client that has not taken its answer in this time,
	// when its slot is wanted, is not reading it (a scrape of 1,000
	// instances, about 1.5 MB, takes 1.2 s at 10 Mbit/s).
	slowWrite = 2 * time.Second
	// lingerTimeout and maxLinger bound the lingering close (see linger),
	// as net/http's 500 ms does.
	lingerTimeout = 500 * time.Millisecond
	maxLinger     = 256 << 10
)

// connState is a connection's phase, for choosing one to evict.
type connState struct {
	since time.Time // accepted, or entered its phase
	phase phase
}

type phase uint8

const (
	reading   phase = iota // no complete request head yet: evictable
	answering              // head read, the answer is being made
	writing                // the answer is being written: evictable after slowWrite
	lingering              // answered, waiting for the client's close: evictable
)

// NewServer returns a Server of status and alive; Serve starts it.
func NewServer(status StatusFunc, alive func(ctx context.Context) error) *Server {
	snap := func() (control.Status, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
		defer cancel()
		s, err := status(ctx)
		return s, err == nil
	}
	s := &Server{c: New(snap), alive: alive, headTimeout: headTimeout, answerTimeout: answerTimeout,
		lingerTimeout: lingerTimeout, slowWrite: slowWrite, conns: map[net.Conn]*connState{}, done: make(chan struct{})}
	s.slot.L = &s.mu
	return s
}

// ErrServerClosed is what Serve returns after Close.
var ErrServerClosed = errors.New("metrics: server closed")

// Serve accepts connections on ln until Close or a permanent error of
// Accept, which it returns; it closes ln when it returns. A temporary
// error of Accept (EMFILE, ENFILE, ENOBUFS, ENOMEM, a timeout) is waited
// out, from 5 ms doubling to 1 s between tries as net/http does: a daemon
// short of descriptors for a moment keeps its metrics endpoint and does
// not spin on Accept.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	var delay time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if !temporary(err) {
				return err
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.done: // the next Accept fails on the closed listener
				t.Stop()
			}
			continue
		}
		delay = 0
		st, ok := s.admit(conn)
		if !ok {
			conn.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.wg.Done()
			s.serveConn(conn, st)
			s.mu.Lock()
			delete(s.conns, conn)
			s.slot.Signal()
			s.mu.Unlock()
		}()
	}
}

// temporary reports whether an Accept error passes: a timeout, or a lack
// of descriptors or memory that a closing connection elsewhere may end.
// Anything else (a closed or broken listener) would fail again.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// admit makes room for conn and registers it; false if the server closed.
//
// At the cap it closes, in this order of preference: the connection that
// has waited longest for its client's close after its answer; the one
// that has waited longest for a complete request head; the one whose
// client has been slowest to take its answer, once that is slowWrite.
// The first two cost their clients nothing they were owed (the first has
// its answer; the second had the time sixteen later connections took to
// arrive, where a real scraper sends its head at once), the third is a
// client not reading, or too slow to be served before the others; and a
// new scrape or probe is served at once rather than refused or queued
// behind idle clients. Only while every connection is being answered
// does conn wait (in the accept loop, with later connections in the
// listen backlog) for one to end or to become one of these, which
// snapshotTimeout and slowWrite bound.
func (s *Server) admit(conn net.Conn) (*connState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed && len(s.conns) >= maxConns {
		retry, ok := s.evictLocked(time.Now())
		if ok {
			break
		}
		// A phase change or a connection's end signals slot; so does
		// this timer when the oldest write turns slow.
		var t *time.Timer
		if retry > 0 {
			t = time.AfterFunc(retry, func() { s.mu.Lock(); s.slot.Broadcast(); s.mu.Unlock() })
		}
		s.slot.Wait()
		if t != nil {
			t.Stop()
		}
	}
	if s.closed {
		return nil, false
	}
	st := &connState{since: time.Now()}
	s.conns[conn] = st
	s.wg.Add(1)
	return st, true
}

// evictLocked closes the connection admit prefers to lose, if any, or
// says in how long a write becomes slow enough to lose (0: none). The
// connection leaves s.conns here, so its goroutine, whose next read or
// write fails, no longer counts against the cap while it ends.
func (s *Server) evictLocked(now time.Time) (retry time.Duration, ok bool) {
	rank := func(st *connState) int {
		switch {
		case st.phase == lingering:
			return 3
		case st.phase == reading:
			return 2
		case st.phase == writing && now.Sub(st.since) >= s.slowWrite:
			return 1
		}
		return 0
	}
	var victim net.Conn
	var vs *connState
	for c, st := range s.conns {
		r := rank(st)
		if r == 0 {
			if st.phase == writing {
				if d := st.since.Add(s.slowWrite).Sub(now); retry == 0 || d < retry {
					retry = d
				}
			}
			continue
		}
		if vs == nil || r > rank(vs) || r == rank(vs) && st.since.Before(vs.since) {
			victim, vs = c, st
		}
	}
	if victim == nil {
		return retry, false
	}
	delete(s.conns, victim)
	victim.Close()
	return 0, true
}

// enter moves conn to phase p; false if it was evicted or the server
// closed. A connection at the cap may be waiting for the change (admit).
func (s *Server) enter(conn net.Conn, st *connState, p phase) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[conn] != st {
		return false
	}
	st.phase, st.since = p, time.Now()
	s.slot.Signal()
	return true
}

// Close stops Serve and ends the connections being served.
func (s *Server) Close() error {
	s.mu.Lock()
	var err error
	if !s.closed {
		s.closed = true
		close(s.done)
		if s.ln != nil {
			if err = s.ln.Close(); errors.Is(err, net.ErrClosed) {
				err = nil // Serve returned on an error and closed it
			}
		}
	}
	for c := range s.conns {
		c.Close()
	}
	s.slot.Broadcast()
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// serveConn answers one request on conn and closes it.
func (s *Server) serveConn(conn net.Conn, st *connState) {
	defer conn.Close()
	// A deadline from the accept, not per read: a client trickling a
	// byte at a time gets no longer than one that sends nothing.
	_ = conn.SetDeadline(st.since.Add(s.headTimeout))
	br := bufio.NewReaderSize(conn, 4096)
	req, err := readHead(br)
	if errors.Is(err, errNoRequest) || !s.enter(conn, st, answering) {
		return // nothing to answer, or evicted meanwhile
	}
	_ = conn.SetDeadline(time.Now().Add(s.answerTimeout))
	r := s.answer(req, err)
	if !s.enter(conn, st, writing) {
		return
	}
	r.write(conn)
	if r.fams != nil && s.Scraped != nil {
		s.Scraped()
	}
	if s.enter(conn, st, lingering) {
		s.linger(conn, br)
	}
}

// response is an answer ready to write.
type response struct {
	code     int
	ctype    string
	body     []byte
	withBody bool // false for HEAD: the head alone, as GET's would be

	// A scrape, written as it is formatted (see write); body is unused.
	metrics bool
	fams    *Families // nil for HEAD
	http10  bool      // the client cannot read chunks
}

const plain = "text/plain; charset=utf-8"

// answer makes the response to a request head (or to its error).
func (s *Server) answer(req request, err error) response {
	if err != nil {
		if errors.Is(err, errHeadTooLarge) {
			return response{code: 431, ctype: plain, body: []byte("request header too large\n"), withBody: true}
		}
		return response{code: 400, ctype: plain, body: []byte("bad request: " + err.Error() + "\n"), withBody: true}
	}
	withBody := req.method != "HEAD"
	if req.method != "GET" && req.method != "HEAD" {
		return response{code: 405, ctype: plain, body: []byte("method not allowed: GET or HEAD\n"), withBody: true}
	}
	switch req.path {
	case "/metrics":
		r := response{code: 200, ctype: "text/plain; version=0.0.4; charset=utf-8", withBody: withBody, metrics: true, http10: req.http10}
		if withBody {
			r.fams = s.c.gather()
		}
		return r
	case "/healthz":
		ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
		err := s.alive(ctx)
		cancel()
		if err != nil {
			return response{code: 503, ctype: plain, body: []byte("vigil's event loop does not answer: " + err.Error() + "\n"), withBody: withBody}
		}
		return response{code: 200, ctype: plain, body: []byte("ok\n"), withBody: withBody}
	}
	return response{code: 404, ctype: plain, body: []byte("not found: vigil serves /metrics and /healthz\n"), withBody: withBody}
}

// linger ends the connection the way net/http does: a FIN after the
// answer, then reading (and dropping) what the client still sends until
// it closes too. Closing a socket with unread input (a request body, a
// head longer than maxHead, a pipelined request) makes the kernel send a
// reset instead of a FIN, and a client that gets the reset before it has
// read the answer loses the answer ("connection reset by peer" where a
// 405 or 431 was due). A client that answers the FIN with its own, as
// HTTP clients told Connection: close do, ends this at once; others get
// lingerTimeout, and their slot can be taken meanwhile (admit).
func (s *Server) linger(conn net.Conn, br *bufio.Reader) {
	// The concrete type and SetDeadline rather than an interface with
	// CloseWrite and SetReadDeadline: a method named through an interface
	// is linked for every type that has it (9 KB of binary here).
	tc, ok := conn.(*net.TCPConn)
	if !ok || tc.CloseWrite() != nil {
		return
	}
	_ = conn.SetDeadline(time.Now().Add(s.lingerTimeout))
	_, _ = br.Discard(maxLinger)
}

var (
	errHeadTooLarge = errors.New("request head too large")
	errNoRequest    = errors.New("connection closed or timed out before a request")
)

// request is what the server reads of a request.
type request struct {
	method, path string
	http10       bool // HTTP/1.0: no chunked answer
}

// readHead reads an HTTP/1.x request line and its header lines (at most
// maxHead bytes in all, the line ends included) and returns the method,
// the target's path and whether the client speaks HTTP/1.0. Headers are
// read past, not parsed: the answer depends on the method and the path
// alone, and the connection ends after it, so neither a body nor a second
// request is ever read as one.
//
// A read error before the head ends (the client reset the connection or
// stayed silent past headTimeout) is errNoRequest, which gets no answer,
// as net/http gives none; an end of input after part of a head is a bad
// request.
func readHead(r *bufio.Reader) (req request, err error) {
	n := 0
	line := func() (string, error) {
		var b []byte
		for {
			frag, err := r.ReadSlice('\n')
			n += len(frag)
			if n > maxHead {
				return "", errHeadTooLarge
			}
			b = append(b, frag...)
			switch {
			case err == nil:
				b = bytes.TrimSuffix(b[:len(b)-1], []byte("\r"))
				return string(b), nil
			case errors.Is(err, bufio.ErrBufferFull):
				continue
			case errors.Is(err, io.EOF) && n > 0:
				return "", errors.New("the request head ends before its empty line")
			default:
				return "", errNoRequest
			}
		}
	}
	var first string
	// RFC 9112, section 2.2: empty lines before the request line are
	// ignored (maxHead still counts them).
	for first == "" {
		if first, err = line(); err != nil {
			return request{}, err
		}
	}
	method, target, version, ok := splitRequestLine(first)
	var path string
	if !ok {
		return request{}, fmt.Errorf("request line %q: want METHOD /path HTTP/1.x", first)
	}
	if len(version) != len("HTTP/1.1") || !strings.HasPrefix(version, "HTTP/1.") || version[7] < '0' || version[7] > '9' {
		return request{}, fmt.Errorf("request line %q: vigil serves HTTP/1.x", first)
	}
	switch {
	case strings.HasPrefix(target, "/"), target == "*":
		path = target
	case len(target) > len("http://") && strings.EqualFold(target[:len("http://")], "http://"),
		len(target) > len("https://") && strings.EqualFold(target[:len("https://")], "https://"):
		// The absolute form, which RFC 9112 (section 3.2.2) has servers
		// accept: the path follows the authority.
		_, rest, _ := strings.Cut(target, "://")
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			path = rest[i:]
		} else {
			path = "/"
		}
	default:
		return request{}, fmt.Errorf("request line %q: want METHOD /path HTTP/1.x", first)
	}
	for {
		h, err := line()
		if err != nil {
			return request{}, err
		}
		if h == "" {
			break
		}
	}
	path, _, _ = strings.Cut(path, "?")
	return request{method: method, path: path, http10: version == "HTTP/1.0"}, nil
}

// splitRequestLine splits "METHOD TARGET VERSION" at its two spaces.
func splitRequestLine(l string) (method, target, version string, ok bool) {
	method, rest, ok1 := strings.Cut(l, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	return method, target, version, ok1 && ok2 && method != "" && target != "" && !strings.Contains(version, " ")
}

var statusText = map[int]string{200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}

// write writes the response and says the connection ends.
//
// A scrape is written as it is formatted, through a 16 KiB buffer, in
// chunks (or, to an HTTP/1.0 client, up to the connection's end), never
// whole in memory: the text of 1,000 instances is 1.3 MB, and the
// buffer it was made in grew to it by doubling, 4 MB of garbage a
// scrape (BenchmarkScrape1000) that the daemon's small heap target
// turned into resident memory: 1,000 instances scraped every second held
// 32.8 MB against 22.3 streamed (bench/rss_ab.sh, docs/benchmarks.md).
// The chunks also tell a client an answer cut short (by answerTimeout or
// an eviction) from a whole one, which a body ended by the connection's
// close cannot.
func (r response) write(conn net.Conn) {
	var b bytes.Buffer
	// Date: RFC 9110 (section 6.6.1) has a server with a clock send it.
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n",
		r.code, statusText[r.code], time.Now().UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"), r.ctype)
	switch {
	case !r.metrics:
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
	case !r.http10:
		b.WriteString("Transfer-Encoding: chunked\r\n")
	}
	b.WriteString("Connection: close\r\n")
	if r.code == 405 {
		b.WriteString("Allow: GET, HEAD\r\n")
	}
	b.WriteString("\r\n")
	if r.fams == nil {
		// The head and a short body in one writev.
		bufs := net.Buffers{b.Bytes()}
		if r.withBody {
			bufs = append(bufs, r.body)
		}
		_, _ = bufs.WriteTo(conn)
		return
	}
	cw := &chunkWriter{conn: conn, head: b.Bytes(), chunked: !r.http10}
	w := bufio.NewWriterSize(cw, 16<<10)
	r.fams.writeText(w)
	if w.Flush() == nil && cw.chunked {
		_, _ = cw.write([]byte("0\r\n\r\n")) // the last chunk, no trailer
	}
}

// chunkWriter writes the response head before its first write, and each
// write as one chunk if chunked (RFC 9112, section 7.1), each in one
// writev.
type chunkWriter struct {
	conn    net.Conn
	head    []byte // not yet written
	chunked bool
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var err error
	if c.chunked {
		var size [18]byte
		_, err = c.write(strconv.AppendUint(size[:0], uint64(len(p)), 16), []byte("\r\n"), p, []byte("\r\n"))
	} else {
		_, err = c.write(p)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// write writes the head if it is still due, then parts.
func (c *chunkWriter) write(parts ...[]byte) (int, error) {
	bufs := make(net.Buffers, 0, 5)
	if c.head != nil {
		bufs = append(bufs, c.head)
		c.head = nil
	}
	bufs = append(bufs, parts...)
	n, err := bufs.WriteTo(c.conn)
	return int(n), err
}
