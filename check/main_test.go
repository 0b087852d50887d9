package check

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"vigil/internal/testenv"
)

// listenerEnv makes the test binary the scale benchmark's listener child;
// scaleChild is that child, set only when the benchmark is built
// (scale_bench_test.go, build tag vigil_bench).
const listenerEnv = "VIGIL_BENCH_LISTENERS"

var scaleChild func()

// Every test must leave no goroutine behind: the Runner, the checkers and
// the in-test servers all stop when their owner says so. The in-test
// servers listen on a loopback of the tests' own (testenv.PrivateLoopback).
func TestMain(m *testing.M) {
	testenv.PrivateLoopback()
	if scaleChild != nil && os.Getenv(listenerEnv) != "" {
		scaleChild() // the scale benchmark's child process
	}
	goleak.VerifyTestMain(m)
}

// listenTCP listens on a free loopback port.
func listenTCP(tb testing.TB) net.Listener {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// listenAddr is where l listens.
func listenAddr(l net.Listener) netip.AddrPort { return netip.MustParseAddrPort(l.Addr().String()) }

// closedPort returns a loopback address where nothing listens: a port the
// kernel just handed out and that was released again.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	l := listenTCP(t)
	l.Close()
	return listenAddr(l)
}

// wantErr checks the error of a parse, what, against want: one containing
// want, or none when want is "". It reports whether the case ends there
// (an error was wanted, or came).
func wantErr(t *testing.T, what string, err error, want string) bool {
	t.Helper()
	switch {
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s error = %v, want %q", what, err, want)
	case want == "" && err != nil:
		t.Errorf("%s: %v", what, err)
	}
	return want != "" || err != nil
}

// checkCase is a row of a checker's table test: a configuration, and
// whether one check is then up with a detail containing detail
// (checkWant).
type checkCase[C any] struct {
	name   string
	cfg    C
	up     bool
	detail string
}

// checkWant runs checker c (c and err as its constructor returned them)
// once and wants it up or down with a detail containing detail.
func checkWant(t *testing.T, c Checker, err error, up bool, detail string) Result {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	r := c.Check(context.Background())
	if r.Up != up || !strings.Contains(r.Detail, detail) {
		t.Errorf("Check() = up %v %q, want up %v containing %q", r.Up, r.Detail, up, detail)
	}
	return r
}

// tcpServer listens on 127.0.0.1, accepts and closes every connection.
func tcpServer(tb testing.TB) netip.AddrPort {
	tb.Helper()
	l := listenTCP(tb)
	serveTCP(tb, l, func(c net.Conn) { c.Close() })
	return listenAddr(l)
}

// serveTCP hands each connection l accepts to handle, in the accepting
// goroutine, until the test ends: then it closes l and waits for that
// goroutine.
func serveTCP(tb testing.TB, l net.Listener, handle func(net.Conn)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			handle(c)
		}
	}()
	tb.Cleanup(func() { l.Close(); <-done })
}
