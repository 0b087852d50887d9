package check

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// runOnce runs c through a Runner, as the daemon does, until its first
// result, and returns that.
func runOnce(t *testing.T, c Checker) Result {
	t.Helper()
	got := make(chan Result, 1)
	_, stop := runRunner(t, []Server{{ID: "s", Checks: []Watch{{c, fast(0)}}}},
		RunnerOptions{OnResult: func(rep Report) {
			select {
			case got <- rep.Result:
			default:
			}
		}})
	defer stop()
	select {
	case r := <-got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no result from the Runner in 10 s")
		return Result{}
	}
}

// sameResult wants the Runner's result of an HTTP_GET to be Check's, word
// for word.
func sameResult(t *testing.T, c *HTTP, wantUp bool, wantDetail string) {
	t.Helper()
	if c.conn == nil {
		t.Fatal("an HTTP_GET the Runner does not drive itself")
	}
	direct := checkWant(t, c, nil, wantUp, wantDetail)
	looped := runOnce(t, c)
	if looped.Up != direct.Up || looped.Detail != direct.Detail {
		t.Errorf("through the Runner: up %v %q; Check: up %v %q", looped.Up, looped.Detail, direct.Up, direct.Detail)
	}
}

// TestHTTPThroughRunner: the Runner drives an HTTP_GET on its own loop
// (httploop.go) to the result HTTP.Check (Get) gives, in the same words,
// for every case of TestHTTP and TestHTTPBrokenResponses.
func TestHTTPThroughRunner(t *testing.T) {
	for _, tt := range httpCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewHTTP(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			sameResult(t, c, tt.up, tt.detail)
		})
	}
	for _, tt := range brokenResponses {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := rawServer(t, tt.response)
			c, err := NewHTTP(HTTPConfig{Target: Target{Addr: addr}, URLs: []URL{{Path: "/"}}})
			if err != nil {
				t.Fatal(err)
			}
			sameResult(t, c, tt.detail == "", tt.detail)
		})
	}
}

// TestHTTPThroughRunnerReads: responses that come in pieces, that stop at
// their Content-Length with the connection left open, and bodies past the
// cap, read by the loop as Get reads them.
func TestHTTPThroughRunnerReads(t *testing.T) {
	body := strings.Repeat("0123456789", 1000)
	resp := "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body
	tests := []struct {
		name   string
		serve  func(net.Conn)
		cfg    HTTPConfig
		up     bool
		detail string
	}{
		{"in pieces, digest", func(c net.Conn) { trickle(c, resp, 97) }, HTTPConfig{URLs: []URL{{Path: "/", Digest: md5hex(body)}}}, true, ": ok"},
		{"in pieces, regex at the end", func(c net.Conn) { trickle(c, resp, 333) }, HTTPConfig{URLs: []URL{{Path: "/", Regex: mustRegexp(t, "789$")}}}, true, ": ok"},
		{"Content-Length, held open", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
			time.Sleep(time.Second)
		}, HTTPConfig{URLs: []URL{{Path: "/", Digest: md5hex("hello")}}}, true, ": ok"},
		{"past the cap, digest", func(c net.Conn) { io.WriteString(c, resp) }, HTTPConfig{MaxBody: 999, URLs: []URL{{Path: "/", Digest: md5hex(body)}}}, false, "body larger than 999 bytes"},
		{"past the cap, held open", func(c net.Conn) {
			io.WriteString(c, resp)
			time.Sleep(time.Second)
		}, HTTPConfig{MaxBody: 999, URLs: []URL{{Path: "/"}}}, true, ": ok"},
		{"no Content-Length, held open", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nhello")
			time.Sleep(time.Second)
		}, HTTPConfig{Target: Target{Timeout: 300 * time.Millisecond}, URLs: []URL{{Path: "/"}}}, false, "read body: timed out after 300ms"},
		{"reset in the body", func(c net.Conn) {
			io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nhel")
			time.Sleep(50 * time.Millisecond)
			c.(*net.TCPConn).SetLinger(0)
		}, HTTPConfig{URLs: []URL{{Path: "/"}}}, false, "read body: connection reset by peer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listenTCP(t)
			var wg sync.WaitGroup
			t.Cleanup(wg.Wait)
			serveTCP(t, l, func(c net.Conn) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					readRequest(c)
					tt.serve(c)
				}()
			})
			tt.cfg.Addr = listenAddr(l)
			c, err := NewHTTP(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			sameResult(t, c, tt.up, tt.detail)
		})
	}
}

// trickle writes s in pieces of n bytes, a millisecond apart.
func trickle(c net.Conn, s string, n int) {
	for len(s) > 0 {
		k := min(n, len(s))
		if _, err := io.WriteString(c, s[:k]); err != nil {
			return
		}
		s = s[k:]
		time.Sleep(time.Millisecond)
	}
}

// readRequest reads a request's header, up to its empty line.
func readRequest(c net.Conn) {
	var b [1]byte
	var last string
	for !strings.HasSuffix(last, "\r\n\r\n") {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
		last += string(b[0])
		if len(last) > 4 {
			last = last[len(last)-4:]
		}
	}
}

func mustRegexp(t *testing.T, re string) *regexp.Regexp {
	t.Helper()
	r, err := regexp.Compile(re)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fastHeadAgrees fails t unless fastHead, where it takes block, reads the
// status, Content-Length and Transfer-Encoding that readHead does.
func fastHeadAgrees(t *testing.T, block []byte) (taken bool) {
	t.Helper()
	status, cl, te, ok := fastHead(block)
	if !ok {
		return false
	}
	r, err := readHead(bufio.NewReader(bytes.NewReader(block)))
	if err != nil {
		t.Fatalf("fastHead took %q, readHead refused it: %v", block, err)
	}
	if status != r.Status || string(cl) != r.Header.Get("Content-Length") || te != (r.Header.Get("Transfer-Encoding") != "") {
		t.Fatalf("%q: fastHead %d %q %v, readHead %d %q %q", block, status, cl, te, r.Status, r.Header.Get("Content-Length"), r.Header.Get("Transfer-Encoding"))
	}
	return true
}

// TestFastHead: the plain headers fastHead takes, it reads as readHead
// does; the others it leaves to readHead.
func TestFastHead(t *testing.T) {
	for _, tt := range []struct {
		block string
		taken bool
	}{
		{"HTTP/1.0 200 OK\r\n\r\n", true},
		{"HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nServer: x\r\n\r\n", true},
		{"HTTP/1.1 200 OK\nconTent-LENGTH:  7 \t\nContent-Length: 9\n\n", true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", true},
		{"HTTP/1.1 200\r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\nX-Utf8: caf\xc3\xa9\r\n\r\n", true},
		{"HTTP/1.1 +20 OK\r\n\r\n", false},
		{"HTTP/1.1 2000 OK\r\n\r\n", false},
		{"ICY 200 OK\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nBad Key: v\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\n\r\r\n", false},
		{"\r\n", false},
	} {
		if got := fastHeadAgrees(t, []byte(tt.block)); got != tt.taken {
			t.Errorf("fastHead(%q) took it: %v, want %v", tt.block, got, tt.taken)
		}
	}
}

// FuzzFastHead: fastHead never reads a header otherwise than readHead.
func FuzzFastHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: x\r\n"))
	f.Add([]byte("HTTP/1.0 503 Busy\nX: y\n"))
	f.Fuzz(func(t *testing.T, head []byte) {
		block := append(head, "\r\n\r\n"...)
		if end := headEnd(block); end > 0 {
			fastHeadAgrees(t, block[:end])
		}
	})
}
