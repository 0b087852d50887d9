package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Checker is one health check of one real server. Check must honour ctx
// (the Runner cancels it on shutdown), fill in every field of the Result,
// Latency included, and be safe to call again once it has returned; the
// Runner never runs the same checker twice at once.
type Checker interface {
	Check(ctx context.Context) Result
	String() string
}

// Result is the outcome of one check.
type Result struct {
	Up bool
	// Weight is the dynamic weight a MISC_CHECK with misc_dynamic reported
	// (exit code − 2); -1 leaves the weight unchanged.
	Weight int
	// Detail says in plain words what happened, e.g.
	// "connect 198.51.100.11:80: connection refused".
	Detail  string
	Latency time.Duration
}

func up(detail string, start time.Time) Result {
	return Result{Up: true, Weight: -1, Detail: detail, Latency: time.Since(start)}
}

func down(detail string, start time.Time) Result {
	return Result{Up: false, Weight: -1, Detail: detail, Latency: time.Since(start)}
}

// DefaultConnectTimeout is keepalived's connect_timeout default.
const DefaultConnectTimeout = 5 * time.Second

// Target holds the connection options every network checker shares:
// keepalived's connect_ip/connect_port (the caller fills them from the real
// server when the checker block does not set them), bindto, bind_port,
// bind_if, fwmark and connect_timeout.
type Target struct {
	Addr     netip.AddrPort // connect_ip:connect_port
	BindAddr netip.Addr     // bindto; zero lets the kernel choose
	BindPort uint16         // bind_port; 0 lets the kernel choose
	BindIf   string         // bind_if; needed for a link-local bindto
	Fwmark   uint32         // fwmark put on every packet of the check
	// Timeout is connect_timeout; zero means DefaultConnectTimeout. For
	// HTTP_GET/SSL_GET it bounds the whole request, as in keepalived.
	Timeout time.Duration
}

func (t *Target) validate(needPort bool) error {
	if !t.Addr.Addr().IsValid() {
		return errors.New("no address to check (connect_ip or the real server address)")
	}
	if needPort && t.Addr.Port() == 0 {
		return fmt.Errorf("no port to check on %s (connect_port or the real server port)", t.Addr.Addr())
	}
	if t.BindAddr.IsValid() && t.BindAddr.Is4() != t.Addr.Addr().Unmap().Is4() {
		return fmt.Errorf("bindto %s and target %s are of different address families", t.BindAddr, t.Addr.Addr())
	}
	if t.BindAddr.IsValid() && t.BindAddr.Is6() && t.BindAddr.IsLinkLocalUnicast() && t.BindIf == "" && t.BindAddr.Zone() == "" {
		return fmt.Errorf("bindto %s is link-local: bind_if is required", t.BindAddr)
	}
	if t.Timeout < 0 {
		return fmt.Errorf("connect_timeout %v is negative", t.Timeout)
	}
	if t.Timeout == 0 {
		t.Timeout = DefaultConnectTimeout
	}
	return nil
}

// dialer builds the dialer for one check: a fresh connection every time
// (keepalived never reuses a connection between checks), bound and marked
// as configured.
func (t *Target) dialer(network string) *net.Dialer {
	d := &net.Dialer{Timeout: t.Timeout, KeepAlive: -1}
	if t.BindAddr.IsValid() || t.BindPort != 0 {
		ap := netip.AddrPortFrom(t.BindAddr, t.BindPort)
		if !t.BindAddr.IsValid() {
			if t.Addr.Addr().Unmap().Is4() {
				ap = netip.AddrPortFrom(netip.IPv4Unspecified(), t.BindPort)
			} else {
				ap = netip.AddrPortFrom(netip.IPv6Unspecified(), t.BindPort)
			}
		}
		switch network {
		case "udp":
			d.LocalAddr = net.UDPAddrFromAddrPort(ap)
		default:
			d.LocalAddr = net.TCPAddrFromAddrPort(ap)
		}
	}
	if t.Fwmark != 0 || t.BindIf != "" || t.BindPort != 0 {
		mark, dev, reuse := t.Fwmark, t.BindIf, t.BindPort != 0
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return sockopts(c, mark, dev, reuse)
		}
	}
	return d
}

// dial connects to the target (bound and marked as configured) within ctx
// and ties the connection's deadline to ctx: its reads and writes fail
// once ctx's time is spent, and at once when ctx is cancelled (shutdown).
// The returned release ends that and closes the connection.
func (t *Target) dial(ctx context.Context, network string) (conn net.Conn, release func(), err error) {
	conn, err = t.dialer(network).DialContext(ctx, network, t.dialAddr())
	if err != nil {
		return nil, nil, err
	}
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return conn, func() { stop(); conn.Close() }, nil
}

// dialUDP connects a UDP socket to the target (bound and marked as
// configured) whose reads and writes fail after connect_timeout or once ctx
// is done. The returned release ends that and closes the socket.
func (t *Target) dialUDP(ctx context.Context) (conn net.Conn, release func(), err error) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	conn, rel, err := t.dial(ctx, "udp")
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return conn, func() { rel(); cancel() }, nil
}

// stepError words why a step of a check failed, for its message: cancelled
// (shutdown), timed out after connect_timeout (ctx carries it), or err as
// describe trims it.
func (t *Target) stepError(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return errors.New("cancelled")
	case ctx.Err() != nil || isTimeout(err):
		return fmt.Errorf("timed out after %v", t.Timeout)
	}
	return errors.New(describe(err))
}

// dialAddr is the address string for net.Dial, with the zone of bind_if
// for a link-local target.
func (t *Target) dialAddr() string {
	a := t.Addr.Addr()
	if a.Is6() && a.IsLinkLocalUnicast() && a.Zone() == "" && t.BindIf != "" {
		a = a.WithZone(t.BindIf)
	}
	return net.JoinHostPort(a.String(), strconv.Itoa(int(t.Addr.Port())))
}

// sockaddr converts an address for the socket calls, with the zone of
// bind_if for a link-local IPv6 address.
func sockaddr(a netip.Addr, port uint16, bindIf string) (family int, sa unix.Sockaddr, err error) {
	a = a.Unmap()
	if a.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(port), Addr: a.As4()}, nil
	}
	sa6 := &unix.SockaddrInet6{Port: int(port), Addr: a.As16()}
	zone := a.Zone()
	if zone == "" && a.IsLinkLocalUnicast() {
		zone = bindIf
	}
	if zone != "" {
		ifi, err := net.InterfaceByName(zone)
		if err != nil {
			return 0, nil, fmt.Errorf("zone of %s: %w", a, err)
		}
		sa6.ZoneId = uint32(ifi.Index)
	}
	return unix.AF_INET6, sa6, nil
}

func unspecified(family int) netip.Addr {
	if family == unix.AF_INET {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// describe trims Go's error chains to the words an operator needs:
// "dial tcp 127.0.0.1:1: connect: connection refused" → "connection refused".
func describe(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errTimeout) || isTimeout(err) {
		return "timed out"
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled"
	}
	return err.Error()
}

var errTimeout = errors.New("timed out")

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
