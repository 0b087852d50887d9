package check

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullBacklog returns a loopback address whose listen queue is full and
// never drained: further SYNs are dropped, so a connect hangs until its
// timeout, as with a black-holed server.
func fullBacklog(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	// Fill the queue (backlog 0 admits one, the kernel allows one more).
	for i := 0; i < 3; i++ {
		c, err := net.DialTimeout("tcp", ap.String(), 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return ap
}

func TestTCP(t *testing.T) {
	open := tcpServer(t)
	closed := closedPort(t)
	hang := fullBacklog(t)
	tests := []checkCase[TCPConfig]{
		{"listening", TCPConfig{Target{Addr: open}}, true, "connected to " + open.String()},
		{"refused", TCPConfig{Target{Addr: closed}}, false, "connect " + closed.String() + ": connection refused"},
		{"timeout", TCPConfig{Target{Addr: hang, Timeout: 300 * time.Millisecond}}, false, "connect " + hang.String() + ": timed out"},
		{"bindto", TCPConfig{Target{Addr: open, BindAddr: netip.MustParseAddr("127.0.0.2")}}, true, "connected"},
		{"bind_port", TCPConfig{Target{Addr: open, BindAddr: netip.MustParseAddr("127.0.0.3"), BindPort: closed.Port()}}, true, "connected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			c, err := NewTCP(tt.cfg)
			r := checkWant(t, c, err, tt.up, tt.detail)
			if r.Weight != -1 {
				t.Errorf("Weight = %d, want -1 (unchanged)", r.Weight)
			}
			if time.Since(start) > 2*time.Second {
				t.Errorf("check took %v: timeout not honoured", time.Since(start))
			}
		})
	}
}

// The source address and port of the check are the configured ones.
func TestTCPBindSource(t *testing.T) {
	l := listenTCP(t)
	defer l.Close()
	port := closedPort(t).Port()
	c, err := NewTCP(TCPConfig{Target{Addr: listenAddr(l), BindAddr: netip.MustParseAddr("127.0.0.5"), BindPort: port}})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		got <- conn.RemoteAddr().String()
		conn.Close()
	}()
	if r := c.Check(context.Background()); !r.Up {
		t.Fatalf("Check() down: %s", r.Detail)
	}
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.5"), port).String()
	if g := <-got; g != want {
		t.Errorf("server saw source %s, want %s", g, want)
	}
}

// Cancelling the context (the Runner stopping) ends a hanging check at once.
func TestTCPCancel(t *testing.T) {
	c, err := NewTCP(TCPConfig{Target{Addr: fullBacklog(t), Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if r := c.Check(ctx); r.Up {
		t.Fatal("check of a hanging server is up")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancelled check took %v", d)
	}
}

func TestNewTCPErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  TCPConfig
		want string
	}{
		{"no address", TCPConfig{}, "TCP_CHECK: no address to check"},
		{"no port", TCPConfig{Target{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)}}, "no port to check on 127.0.0.1"},
		{"family", TCPConfig{Target{Addr: netip.MustParseAddrPort("127.0.0.1:80"), BindAddr: netip.MustParseAddr("::1")}}, "different address families"},
		{"link-local without bind_if", TCPConfig{Target{Addr: netip.MustParseAddrPort("[fe80::1]:80"), BindAddr: netip.MustParseAddr("fe80::2")}}, "bind_if is required"},
		{"negative timeout", TCPConfig{Target{Addr: netip.MustParseAddrPort("127.0.0.1:80"), Timeout: -1}}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTCP(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewTCP() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	c, err := NewTCP(TCPConfig{Target{Addr: netip.MustParseAddrPort("127.0.0.1:80")}})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Timeout != DefaultConnectTimeout {
		t.Errorf("default timeout = %v, want %v", c.cfg.Timeout, DefaultConnectTimeout)
	}
	if got := c.String(); got != "TCP_CHECK 127.0.0.1:80" {
		t.Errorf("String() = %q", got)
	}
}
