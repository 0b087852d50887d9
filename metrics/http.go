package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
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
// docs/benchmarks.md). What a scraper or a probe sends is small; the
// server reads at most maxHead bytes of request head, answers within
// timeout, and serves at most maxConns connections at once.
type Server struct {
	c       *Collector
	alive   func(ctx context.Context) error
	timeout time.Duration // for the whole exchange on one connection

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

const (
	maxHead  = 8 << 10
	maxConns = 16
)

// NewServer returns a Server of status and alive; Serve starts it.
func NewServer(status StatusFunc, alive func(ctx context.Context) error) *Server {
	snap := func() (control.Status, bool) {
		ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
		defer cancel()
		s, err := status(ctx)
		return s, err == nil
	}
	return &Server{c: New(snap), alive: alive, timeout: 10 * time.Second, conns: map[net.Conn]struct{}{}}
}

// ErrServerClosed is what Serve returns after Close.
var ErrServerClosed = errors.New("metrics: server closed")

// Serve accepts connections on ln until Close; it closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.ln = ln
	s.mu.Unlock()
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		s.mu.Lock()
		if s.closed || len(s.conns) >= maxConns {
			s.mu.Unlock()
			conn.Close()
			continue
		}
		s.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
		}()
	}
}

// Close stops Serve and ends the connections being served.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// serveConn answers one request on conn and closes it.
func (s *Server) serveConn(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(s.timeout))
	method, path, err := readHead(bufio.NewReaderSize(conn, 4096))
	if err != nil {
		if errors.Is(err, errHeadTooLarge) {
			writeResponse(conn, 431, "text/plain; charset=utf-8", []byte("request header too large\n"), true)
		} else if !errors.Is(err, errNoRequest) {
			writeResponse(conn, 400, "text/plain; charset=utf-8", []byte("bad request: "+err.Error()+"\n"), true)
		}
		return
	}
	withBody := method != "HEAD"
	if method != "GET" && method != "HEAD" {
		writeResponse(conn, 405, "text/plain; charset=utf-8", []byte("method not allowed: GET or HEAD\n"), true)
		return
	}
	switch path {
	case "/metrics":
		var b bytes.Buffer
		_ = s.c.WriteText(&b)
		writeResponse(conn, 200, "text/plain; version=0.0.4; charset=utf-8", b.Bytes(), withBody)
	case "/healthz":
		ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
		err := s.alive(ctx)
		cancel()
		if err != nil {
			writeResponse(conn, 503, "text/plain; charset=utf-8", []byte("vigil's event loop does not answer: "+err.Error()+"\n"), withBody)
			return
		}
		writeResponse(conn, 200, "text/plain; charset=utf-8", []byte("ok\n"), withBody)
	default:
		writeResponse(conn, 404, "text/plain; charset=utf-8", []byte("not found: vigil serves /metrics and /healthz\n"), withBody)
	}
}

var (
	errHeadTooLarge = errors.New("request head too large")
	errNoRequest    = errors.New("connection closed before a request")
)

// readHead reads an HTTP/1.x request line and its header lines (at most
// maxHead bytes in all) and returns the method and the target's path.
func readHead(r *bufio.Reader) (method, path string, err error) {
	n := 0
	line := func() (string, error) {
		var b []byte
		for {
			frag, isPrefix, err := r.ReadLine()
			n += len(frag) + 2
			if n > maxHead {
				return "", errHeadTooLarge
			}
			if err != nil {
				return "", err
			}
			b = append(b, frag...)
			if !isPrefix {
				return string(b), nil
			}
		}
	}
	first, err := line()
	if err != nil {
		if errors.Is(err, errHeadTooLarge) {
			return "", "", err
		}
		return "", "", errNoRequest
	}
	parts := strings.Split(first, " ")
	if len(parts) != 3 || parts[0] == "" || !strings.HasPrefix(parts[1], "/") || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return "", "", fmt.Errorf("request line %q: want METHOD /path HTTP/1.x", first)
	}
	for {
		h, err := line()
		if err != nil {
			if errors.Is(err, errHeadTooLarge) {
				return "", "", err
			}
			return "", "", errors.New("the request head does not end")
		}
		if h == "" {
			break
		}
	}
	path, _, _ = strings.Cut(parts[1], "?")
	return parts[0], path, nil
}

var statusText = map[int]string{200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}

// writeResponse writes a complete response and says the connection ends.
func writeResponse(conn net.Conn, code int, ctype string, body []byte, withBody bool) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n", code, statusText[code], ctype, len(body))
	if code == 405 {
		b.WriteString("Allow: GET, HEAD\r\n")
	}
	b.WriteString("\r\n")
	if withBody {
		b.Write(body)
	}
	_, _ = conn.Write(b.Bytes())
}
