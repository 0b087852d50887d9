package check

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// smtpServer listens on loopback and holds script with every client: it
// writes greeting, reads one line (handed to got) and answers helo, then
// reads until the client closes. An empty helo leaves the HELO unanswered.
func smtpServer(t *testing.T, greeting, helo string) (netip.AddrPort, <-chan string) {
	t.Helper()
	l := listenTCP(t)
	got := make(chan string, 16)
	stop := make(chan struct{})
	serveTCP(t, l, func(c net.Conn) {
		defer c.Close()
		go func() { <-stop; c.Close() }()
		c.Write([]byte(greeting))
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		got <- line
		if helo == "" {
			<-stop
			return
		}
		c.Write([]byte(helo))
		if line, err := br.ReadString('\n'); err == nil {
			got <- line
		}
	})
	t.Cleanup(func() { close(stop) }) // runs before serveTCP's: unblocks a handler waiting on stop
	return listenAddr(l), got
}

func TestSMTP(t *testing.T) {
	tests := []struct {
		name           string
		greeting, helo string
		up             bool
		detail         string
		heloLine, quit string
	}{
		{"greeting and HELO", "220 mx.example.test ESMTP\r\n", "250 mx.example.test\r\n", true, "greeting and HELO ok", "HELO checker.example.test\r\n", "QUIT\r\n"},
		{"multi-line greeting", "220-mx.example.test\r\n220-welcome\r\n220 ready\r\n", "250-mx\r\n250 ok\r\n", true, "ok", "HELO checker.example.test\r\n", "QUIT\r\n"},
		{"bare code lines", "220\r\n", "250\n", true, "ok", "HELO checker.example.test\r\n", "QUIT\r\n"},
		{"no service", "554 go away\r\n", "", false, "greeting 554 go away, want 220", "", ""},
		{"HELO refused", "220 mx\r\n", "501 bad name\r\n", false, "HELO answered 501 bad name, want 250", "HELO checker.example.test\r\n", ""},
		{"not SMTP", "HTTP/1.1 400 Bad Request\r\n", "", false, "greeting: malformed reply line", "", ""},
		{"code changes inside a reply", "220-a\r\n250 b\r\n", "", false, "changes code from 220 to 250", "", ""},
		{"closed at once", "", "", false, "greeting: connection closed before any reply", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			greeting := tt.greeting
			var addr netip.AddrPort
			var got <-chan string
			if greeting == "" {
				addr = tcpServer(t)
			} else {
				addr, got = smtpServer(t, greeting, tt.helo)
			}
			c, err := NewSMTP(SMTPConfig{Target: Target{Addr: addr, Timeout: 2 * time.Second}, HeloName: "checker.example.test"})
			checkWant(t, c, err, tt.up, tt.detail)
			if t.Failed() {
				return
			}
			for _, want := range []string{tt.heloLine, tt.quit} {
				if want == "" {
					continue
				}
				select {
				case line := <-got:
					if line != want {
						t.Errorf("server read %q, want %q", line, want)
					}
				case <-time.After(2 * time.Second):
					t.Errorf("server never read %q", want)
				}
			}
		})
	}
}

func TestSMTPTimeoutAndRefused(t *testing.T) {
	// A server that greets but never answers HELO: connect_timeout ends it.
	addr, _ := smtpServer(t, "220 mx\r\n", "")
	c, err := NewSMTP(SMTPConfig{Target: Target{Addr: addr, Timeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := c.Check(context.Background())
	if r.Up || !strings.Contains(r.Detail, "HELO: timed out after 300ms") {
		t.Errorf("Check() = up %v %q, want a HELO timeout", r.Up, r.Detail)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %v", d)
	}
	closed := closedPort(t)
	c, _ = NewSMTP(SMTPConfig{Target: Target{Addr: closed}})
	if r := c.Check(context.Background()); r.Up || !strings.Contains(r.Detail, "connect: connection refused") {
		t.Errorf("Check() = up %v %q, want refused", r.Up, r.Detail)
	}
}

func TestNewSMTP(t *testing.T) {
	c, err := NewSMTP(SMTPConfig{Target: Target{Addr: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), 0)}})
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != "SMTP_CHECK 192.0.2.1:25" {
		t.Errorf("String() = %q: want the default port 25", c.String())
	}
	if c.cfg.HeloName == "" {
		t.Error("no default HELO name")
	}
	if _, err := NewSMTP(SMTPConfig{Target: Target{Addr: netip.MustParseAddrPort("192.0.2.1:25")}, HeloName: "a b"}); err == nil {
		t.Error("a HELO name with a space was accepted")
	}
	if _, err := NewSMTP(SMTPConfig{}); err == nil {
		t.Error("no target was accepted")
	}
}
