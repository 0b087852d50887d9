package check

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// webServer serves the paths the HTTP tests ask for.
func webMux(block chan struct{}) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello\n") })
	mux.HandleFunc("/unavailable", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(301) })
	mux.HandleFunc("/vhost", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "www.example.test" {
			w.WriteHeader(404)
		}
		io.WriteString(w, "host "+r.Host)
	})
	// /proto answers 200 only when the request has the expected protocol
	// line and Connection header, given in the query.
	mux.HandleFunc("/proto", func(w http.ResponseWriter, r *http.Request) {
		got := r.Proto + " conn=" + r.Header.Get("Connection")
		if got != r.URL.Query().Get("want") {
			w.WriteHeader(400)
		}
		io.WriteString(w, got)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("x", 4096)) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	return mux
}

func TestHTTP(t *testing.T) {
	for _, tt := range httpCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			c, err := NewHTTP(tt.cfg)
			checkWant(t, c, err, tt.up, tt.detail)
			if time.Since(start) > 3*time.Second {
				t.Errorf("check took %v", time.Since(start))
			}
		})
	}
}

// httpCases are TestHTTP's cases, each with its target set, against a web
// server (webMux) that lives as long as the test.
func httpCases(t *testing.T) []checkCase[HTTPConfig] {
	block := make(chan struct{})
	srv := httptest.NewServer(webMux(block))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	closed := closedPort(t)
	codes := func(s string) StatusCodes {
		c, err := ParseStatusCodes(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []checkCase[HTTPConfig]{
		{"2xx by default", HTTPConfig{URLs: []URL{{Path: "/ok"}}}, true, "GET /ok on " + addr.String() + ": ok"},
		{"503 is down", HTTPConfig{URLs: []URL{{Path: "/unavailable"}}}, false, "status 503, want 200-299"},
		{"503 in a list", HTTPConfig{URLs: []URL{{Path: "/unavailable", StatusCodes: codes("200-299 503")}}}, true, ": ok"},
		{"301 single code", HTTPConfig{URLs: []URL{{Path: "/moved", StatusCodes: codes("301")}}}, true, ": ok"},
		{"200 outside range", HTTPConfig{URLs: []URL{{Path: "/ok", StatusCodes: codes("300-399 500")}}}, false, "status 200, want 300-399 500"},
		{"digest match", HTTPConfig{URLs: []URL{{Path: "/ok", Digest: md5hex("hello\n")}}}, true, ": ok"},
		{"digest upper case", HTTPConfig{URLs: []URL{{Path: "/ok", Digest: strings.ToUpper(md5hex("hello\n"))}}}, true, ": ok"},
		{"digest mismatch", HTTPConfig{URLs: []URL{{Path: "/ok", Digest: md5hex("bye\n")}}}, false, "digest " + md5hex("hello\n") + ", want " + md5hex("bye\n")},
		{"virtualhost", HTTPConfig{VirtualHost: "www.example.test", URLs: []URL{{Path: "/vhost"}}}, true, "(Host www.example.test): ok"},
		{"no virtualhost sends the address", HTTPConfig{URLs: []URL{{Path: "/vhost"}}}, false, "status 404"},
		{"url virtualhost overrides", HTTPConfig{VirtualHost: "other.test", URLs: []URL{{Path: "/vhost", VirtualHost: "www.example.test"}}}, true, ": ok"},
		{"protocol 1.0 default", HTTPConfig{URLs: []URL{{Path: "/proto?want=HTTP/1.0+conn="}}}, true, ": ok"},
		{"protocol 1.0C", HTTPConfig{Protocol: HTTP10Close, URLs: []URL{{Path: "/proto?want=HTTP/1.0+conn=close"}}}, true, ": ok"},
		{"protocol 1.1", HTTPConfig{Protocol: HTTP11, URLs: []URL{{Path: "/proto?want=HTTP/1.1+conn=close"}}}, true, ": ok"},
		{"all urls pass", HTTPConfig{URLs: []URL{{Path: "/ok"}, {Path: "/moved", StatusCodes: codes("301")}}}, true, "2 urls ok"},
		{"second url fails", HTTPConfig{URLs: []URL{{Path: "/ok"}, {Path: "/unavailable"}}}, false, "GET /unavailable on " + addr.String() + ": status 503"},
		{"regex match", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("^hel+o")}}}, true, ": ok"},
		{"regex no match", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("bye")}}}, false, `body does not match "bye"`},
		{"regex_no_match", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("hello"), RegexNoMatch: true}}}, false, "regex_no_match"},
		// /big is 4096 "x": offsets bound where a match may start.
		{"regex from min offset", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("hel"), RegexMinOffset: 1}}}, false, `body does not match "hel"`},
		{"regex after min offset", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("llo"), RegexMinOffset: 2}}}, true, ": ok"},
		{"min offset past the body", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("x*"), RegexMinOffset: 100}}}, false, "does not match"},
		{"regex starts before max offset", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("llo"), RegexMaxOffset: 2}}}, true, ": ok"},
		{"regex starts after max offset", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("lo"), RegexMaxOffset: 2}}}, false, `body does not match "lo"`},
		{"regex_no_match outside the window", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("o"), RegexNoMatch: true, RegexMaxOffset: 3}}}, true, ": ok"},
		{"regex_no_match inside the window", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("o"), RegexNoMatch: true, RegexMinOffset: 2, RegexMaxOffset: 4}}}, false, "regex_no_match"},
		{"max offset below min never matches", HTTPConfig{URLs: []URL{{Path: "/ok", Regex: regexp.MustCompile("l"), RegexMinOffset: 3, RegexMaxOffset: 2}}}, false, "does not match"},
		{"bad regex fails the check", HTTPConfig{URLs: []URL{{Path: "/ok", BadRegex: "missing )"}}}, false, "regex cannot be used: missing )"},
		{"body over the cap with digest", HTTPConfig{MaxBody: 1024, URLs: []URL{{Path: "/big", Digest: md5hex(strings.Repeat("x", 4096))}}}, false, "body larger than 1024 bytes"},
		{"body over the cap, status only", HTTPConfig{MaxBody: 1024, URLs: []URL{{Path: "/big"}}}, true, ": ok"},
		{"timeout covers the request", HTTPConfig{Target: Target{Timeout: 300 * time.Millisecond}, URLs: []URL{{Path: "/slow"}}}, false, "read response: timed out after 300ms"},
		{"refused", HTTPConfig{Target: Target{Addr: closed}, URLs: []URL{{Path: "/"}}}, false, "GET / on " + closed.String() + ": connect: connection refused"},
	}
	for k := range tests {
		if !tests[k].cfg.Addr.IsValid() {
			tests[k].cfg.Addr = addr
		}
	}
	return tests
}

// rawServer answers every connection with the given bytes and closes, and
// hands each request it read to got.
func rawServer(t *testing.T, response string) (netip.AddrPort, <-chan string) {
	t.Helper()
	l := listenTCP(t)
	got := make(chan string, 16)
	serveTCP(t, l, func(c net.Conn) {
		br := bufio.NewReader(c)
		var req strings.Builder
		for {
			line, err := br.ReadString('\n')
			req.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		select {
		case got <- req.String():
		default:
		}
		io.WriteString(c, response)
		c.Close()
	})
	return listenAddr(l), got
}

// The digest covers the raw bytes after the header, chunk framing
// included, and the request has keepalived's shape. The expected digest is
// what keepalived 2.2.7's genhash printed for this very response.
func TestHTTPRawBodyAndRequest(t *testing.T) {
	addr, got := rawServer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	c, err := NewHTTP(HTTPConfig{Target: Target{Addr: addr}, Protocol: HTTP11, VirtualHost: "www.example", URLs: []URL{{Path: "/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(context.Background(), c.cfg.URLs[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := "79e9489e3bd3f0cb0158215341de046d"; resp.Digest != want {
		t.Errorf("digest = %s, want %s (keepalived's genhash)", resp.Digest, want)
	}
	wantReq := "GET /x HTTP/1.1\r\nUser-Agent: KeepAliveClient (vigil)\r\nConnection: close\r\nHost: www.example\r\n\r\n"
	if diff := cmp.Diff(wantReq, <-got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}

	c, _ = NewHTTP(HTTPConfig{Target: Target{Addr: addr}, URLs: []URL{{Path: "/y"}}})
	c.Check(context.Background())
	wantReq = "GET /y HTTP/1.0\r\nUser-Agent: KeepAliveClient (vigil)\r\nHost: " + addr.String() + "\r\n\r\n"
	if diff := cmp.Diff(wantReq, <-got); diff != "" {
		t.Errorf("HTTP/1.0 request (-want +got):\n%s", diff)
	}
}

// brokenResponses are TestHTTPBrokenResponses' cases: what a server
// answers and closes, and the words of the failure ("" for up).
var brokenResponses = []struct {
	name, response, detail string
}{
	{"closed at once", "", "connection closed before any response"},
	{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", "malformed status line"},
	{"cut header", "HTTP/1.0 200 OK\r\nServer: x", "connection closed inside the response header"},
	{"short content", "HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nabc", ""},
	{"LF line ends", "HTTP/1.0 200 OK\nContent-Length: 2\n\nok", ""},
	{"empty header", "\r\n", "empty response header"},
	{"header over 64 KiB", "HTTP/1.0 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 70) + "\r\n", "response header longer than 64 KiB"},
}

func TestHTTPBrokenResponses(t *testing.T) {
	tests := brokenResponses
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := rawServer(t, tt.response)
			c, err := NewHTTP(HTTPConfig{Target: Target{Addr: addr}, URLs: []URL{{Path: "/"}}})
			if err != nil {
				t.Fatal(err)
			}
			r := c.Check(context.Background())
			if tt.detail == "" {
				if !r.Up {
					t.Errorf("Check() down: %s", r.Detail)
				}
				return
			}
			if r.Up || !strings.Contains(r.Detail, tt.detail) {
				t.Errorf("Check() = up %v %q, want down containing %q", r.Up, r.Detail, tt.detail)
			}
		})
	}
}

func TestSSLGet(t *testing.T) {
	var mu sync.Mutex
	var sni []string
	srv := httptest.NewUnstartedServer(webMux(nil))
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		sni = append(sni, h.ServerName)
		mu.Unlock()
		return nil, nil
	}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the plain-HTTP probe below makes it complain
	srv.StartTLS()
	defer srv.Close()
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	tests := []struct {
		name    string
		cfg     HTTPConfig
		up      bool
		wantSNI string
	}{
		{"no sni", HTTPConfig{VirtualHost: "www.example.test", URLs: []URL{{Path: "/vhost"}}}, true, ""},
		{"sni from virtualhost", HTTPConfig{SNI: true, VirtualHost: "www.example.test", URLs: []URL{{Path: "/vhost"}}}, true, "www.example.test"},
		{"sni from url virtualhost", HTTPConfig{SNI: true, URLs: []URL{{Path: "/ok", VirtualHost: "url.example.test"}}}, true, "url.example.test"},
		{"status over tls", HTTPConfig{URLs: []URL{{Path: "/unavailable"}}}, false, ""},
		{"digest over tls", HTTPConfig{URLs: []URL{{Path: "/ok", Digest: md5hex("hello\n")}}}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Addr, tt.cfg.TLS = addr, true
			c, err := NewHTTP(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			sni = nil
			mu.Unlock()
			r := c.Check(context.Background())
			if r.Up != tt.up {
				t.Errorf("Check() = up %v %q, want up %v", r.Up, r.Detail, tt.up)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(sni) != 1 || sni[0] != tt.wantSNI {
				t.Errorf("server saw SNI %q, want [%q]", sni, tt.wantSNI)
			}
			if !strings.HasPrefix(c.String(), "SSL_GET ") {
				t.Errorf("String() = %q", c.String())
			}
		})
	}
	// A plain HTTP_GET against the TLS port fails with a readable reason.
	c, _ := NewHTTP(HTTPConfig{Target: Target{Addr: addr}, URLs: []URL{{Path: "/ok"}}})
	if r := c.Check(context.Background()); r.Up || r.Detail == "" {
		t.Errorf("HTTP_GET against TLS = up %v %q", r.Up, r.Detail)
	}
	// And an SSL_GET against a plain server fails in the handshake.
	plain := httptest.NewServer(webMux(nil))
	defer plain.Close()
	c, _ = NewHTTP(HTTPConfig{TLS: true, Target: Target{Addr: netip.MustParseAddrPort(plain.Listener.Addr().String())}, URLs: []URL{{Path: "/ok"}}})
	if r := c.Check(context.Background()); r.Up || !strings.Contains(r.Detail, "TLS handshake") {
		t.Errorf("SSL_GET against plain HTTP = up %v %q", r.Up, r.Detail)
	}
}

func TestNewHTTPErrors(t *testing.T) {
	a := Target{Addr: netip.MustParseAddrPort("127.0.0.1:80")}
	tests := []struct {
		name string
		cfg  HTTPConfig
		want string
	}{
		{"no url", HTTPConfig{Target: a}, "HTTP_GET: no url block"},
		{"no path", HTTPConfig{Target: a, URLs: []URL{{}}}, "url 1 has no path"},
		{"bad digest", HTTPConfig{Target: a, URLs: []URL{{Path: "/", Digest: "abc"}}}, `digest "abc" is not 32 hex digits`},
		{"bad protocol", HTTPConfig{Target: a, Protocol: "2", URLs: []URL{{Path: "/"}}}, `http_protocol "2"`},
		{"sni without tls", HTTPConfig{Target: a, SNI: true, URLs: []URL{{Path: "/"}}}, "enable_sni needs SSL_GET"},
		{"space in path", HTTPConfig{Target: a, URLs: []URL{{Path: "/a b"}}}, "white space"},
		{"ssl names itself", HTTPConfig{TLS: true, Target: a}, "SSL_GET: no url block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHTTP(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewHTTP() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseStatusCodes(t *testing.T) {
	tests := []struct {
		in      []string
		want    StatusCodes
		wantErr string
	}{
		{[]string{"200"}, StatusCodes{{200, 200}}, ""},
		{[]string{"200-299", "301"}, StatusCodes{{200, 299}, {301, 301}}, ""},
		{[]string{"200-299 400-499 503 505"}, StatusCodes{{200, 299}, {400, 499}, {503, 503}, {505, 505}}, ""},
		{[]string{"200,204"}, StatusCodes{{200, 200}, {204, 204}}, ""},
		{[]string{"299-200"}, nil, "low before high"},
		{[]string{"99"}, nil, "from 100 to 599"},
		{[]string{"2xx"}, nil, "not a code or range"},
		{nil, nil, "no codes"},
	}
	for _, tt := range tests {
		got, err := ParseStatusCodes(tt.in...)
		if wantErr(t, fmt.Sprintf("ParseStatusCodes(%q)", tt.in), err, tt.wantErr) {
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseStatusCodes(%q) (-want +got):\n%s", tt.in, diff)
		}
		if back, _ := ParseStatusCodes(got.String()); !cmp.Equal(back, got) {
			t.Errorf("String() %q does not parse back", got.String())
		}
	}
	if s := DefaultStatusCodes; !s.Contains(200) || !s.Contains(299) || s.Contains(300) || s.Contains(199) {
		t.Errorf("default codes %s are not 200-299", s)
	}
	_ = fmt.Sprint()
}
