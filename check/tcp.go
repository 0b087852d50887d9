package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// TCPConfig configures a TCP_CHECK: the server is up when a TCP connection
// to Target.Addr completes within connect_timeout. TCP_CHECK has no options
// of its own.
type TCPConfig struct {
	Target
}

// TCP is a TCP_CHECK.
//
// The connection is reset (SO_LINGER 0) rather than closed with a FIN once
// it is established, as HAProxy does for its connect checks: 10,000 checks
// a second closed gracefully would keep 600,000 sockets in TIME_WAIT on the
// director, far past the kernel's usual tcp_max_tw_buckets. A server sees
// a reset of a connection that never carried data.
type TCP struct {
	cfg  TCPConfig
	sa   unix.Sockaddr // the target, ready for connect(2)
	raw  rawSockaddr   // the same, for rawConnect
	bind unix.Sockaddr // bindto/bind_port, or nil
	fam  int
	// The words of every Result, made once: at 10,000 checks a second
	// building them per check is a measurable share of the cost.
	name, okDetail, failPrefix string
	// pooled: the Runner may reuse sockets for this checker (no bindto);
	// key says which ones.
	pooled bool
	key    poolKey
	// syncDone: the last connect completed inside connect(2) (a server on
	// this host), so the next one is worth a getpeername before waiting.
	syncDone atomic.Bool
}

// NewTCP validates cfg and returns the checker; it opens nothing.
func NewTCP(cfg TCPConfig) (*TCP, error) {
	if err := cfg.Target.validate(true); err != nil {
		return nil, fmt.Errorf("TCP_CHECK: %w", err)
	}
	c := &TCP{cfg: cfg, name: "TCP_CHECK " + cfg.Addr.String(),
		okDetail: "connected to " + cfg.Addr.String(), failPrefix: "connect " + cfg.Addr.String() + ": "}
	var err error
	if c.fam, c.sa, err = sockaddr(cfg.Addr.Addr(), cfg.Addr.Port(), cfg.BindIf); err != nil {
		return nil, fmt.Errorf("TCP_CHECK: %w", err)
	}
	c.raw = toRawSockaddr(c.sa)
	if cfg.BindAddr.IsValid() || cfg.BindPort != 0 {
		b := cfg.BindAddr
		if !b.IsValid() {
			b = unspecified(c.fam)
		}
		if _, c.bind, err = sockaddr(b, cfg.BindPort, cfg.BindIf); err != nil {
			return nil, fmt.Errorf("TCP_CHECK: bindto: %w", err)
		}
	}
	c.pooled = c.bind == nil
	c.key = poolKey{fam: c.fam, mark: c.cfg.Fwmark, dev: c.cfg.BindIf}
	c.syncDone.Store(true) // until a connect says otherwise
	return c, nil
}

func (c *TCP) String() string { return c.name }

// Check connects and resets at once: a completed three-way handshake is the
// whole test. It drives connect(2) itself through the runtime's poller
// rather than net.Dialer, which spends as much again on address parsing,
// getsockname/getpeername and allocations, all of it per check. (The
// Runner does not call Check at all: it runs start and finish from its own
// loop, see connwatch.go.)
func (c *TCP) Check(ctx context.Context) Result {
	start := time.Now()
	return c.result(c.connect(ctx, start), start)
}

func (c *TCP) result(err error, start time.Time) Result {
	if err != nil {
		return down(c.failPrefix+describe(err), start)
	}
	return up(c.okDetail, start)
}

// start opens a non-blocking socket and begins to connect. done reports
// that the attempt is over already, with err saying how; the socket is
// then closed. Otherwise fd is connecting, for finish.
func (c *TCP) start() (fd int, done bool, err error) {
	if fd, err = c.socket(); err != nil {
		return -1, true, err
	}
	if pending, err := c.dial(fd); pending || err != nil {
		if err != nil {
			unix.Close(fd)
			return -1, true, err
		}
		return fd, false, nil
	}
	resetClose(fd)
	return -1, true, nil
}

// startPooled is start for the Runner, with a socket from p when there is
// one; watched says the socket is registered with the Runner's connWatch
// already. Returns as start; a connection completed at once goes back to p.
func (c *TCP) startPooled(p *sockPool) (fd int, watched, done bool, err error) {
	s, ok := p.get(c.key)
	if !ok {
		if s.fd, err = c.socket(); err != nil {
			return -1, false, true, err
		}
	}
	if pending, err := c.dial(s.fd); pending || err != nil {
		if err != nil {
			unix.Close(s.fd)
			return -1, false, true, err
		}
		return s.fd, s.watched, false, nil
	}
	p.release(c.key, s)
	return -1, false, true, nil
}

// socket opens a non-blocking socket with the checker's options (fwmark,
// bind_if, bindto).
func (c *TCP) socket() (int, error) {
	fd, err := unix.Socket(c.fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := setsockopts(fd, c.cfg.Fwmark, c.cfg.BindIf, c.cfg.BindPort != 0); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if c.bind != nil {
		if err := unix.Bind(fd, c.bind); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("bind: %w", err)
		}
	}
	return fd, nil
}

// dial begins connecting fd: pending while the handshake is under way,
// neither pending nor err when it completed inside connect(2). A server on
// this host completes the handshake there and still answers EINPROGRESS:
// one getpeername spares the wait and its epoll calls. For a remote server
// that call only fails, so it is made only while this checker's connects
// complete synchronously.
func (c *TCP) dial(fd int) (pending bool, err error) {
	err = rawConnect(fd, &c.raw)
	if err == unix.EINPROGRESS {
		if !c.syncDone.Load() {
			return true, nil
		}
		if perr := rawGetpeername(fd); perr != nil {
			c.syncDone.Store(false)
			return true, nil
		}
		err = nil
	}
	if err == nil {
		c.syncDone.Store(true)
	}
	return false, err
}

// finish asks a connecting socket how it went, once it is writable (or on
// any wake-up): pending while the handshake is still under way. It does
// not close the socket.
func finish(fd int) (pending bool, err error) {
	if err := rawGetpeername(fd); err == nil {
		return false, nil
	}
	soerr, err := rawSoError(fd)
	switch {
	case err != nil:
		return false, err
	case soerr != 0:
		return false, unix.Errno(soerr)
	}
	return true, nil
}

// connect is the blocking form for Check: it waits on the runtime's poller.
func (c *TCP) connect(ctx context.Context, start time.Time) error {
	deadline := start.Add(c.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	fd, done, err := c.start()
	if done {
		return err
	}
	// The file registers the socket with the runtime's poller, so that
	// waiting costs no thread, and owns the descriptor from here on.
	f := os.NewFile(uintptr(fd), "tcp-check")
	connected := false
	defer func() {
		if connected {
			unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		}
		f.Close()
	}()
	f.SetWriteDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var connErr error
	// RawConn.Write forgets a readiness that arrived before it was called,
	// so each call asks the socket rather than trusting the wake-up.
	werr := rc.Write(func(fd uintptr) bool {
		pending, err := finish(int(fd))
		if pending {
			return false
		}
		connErr, connected = err, err == nil
		return true
	})
	if werr != nil {
		if errors.Is(werr, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return context.Canceled
			}
			return errTimeout
		}
		return werr
	}
	return connErr
}

// resetClose closes a connected socket with a reset (see TCP).
func resetClose(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)
}
