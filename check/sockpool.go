package check

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockPool keeps the Runner's TCP sockets between checks. A TCP_CHECK's
// connection is dissolved with connect(AF_UNSPEC) (tcp_disconnect: a
// reset goes to the server, as SO_LINGER 0 would send, and the socket
// returns to CLOSE, its ephemeral port released) and the socket waits here
// for the next check. That spares, per check, the socket(2) and close(2)
// with the kernel's allocation and teardown of a socket, the setsockopts,
// and the epoll registration, which stays in place (one-shot, rearmed per
// connect): about a third of a check's cost when the servers are remote.
//
// Only sockets that connected go back: one whose connect failed or timed
// out is closed, so that no error state or half-done handshake can carry
// over to another server's check (failures are rare enough that their
// cost does not matter). The pool holds at most maxPooled sockets; the
// steady state needs about as many as checks in flight.
type sockPool struct {
	mu   sync.Mutex
	free map[poolKey][]pooledSock
	n    int
}

// pooledSock is a disconnected socket; watched says it is registered with
// the Runner's connWatch (disarmed), so its next wait is a rearm.
type pooledSock struct {
	fd      int
	watched bool
}

// poolKey is what a socket carries from one check to the next: its family
// and the options set on it once (SO_MARK, SO_BINDTODEVICE). Checkers with
// a bindto address or port never share sockets.
type poolKey struct {
	fam  int
	mark uint32
	dev  string
}

const maxPooled = 1024

func newSockPool() *sockPool { return &sockPool{free: map[poolKey][]pooledSock{}} }

// get returns a pooled socket, if there is one.
func (p *sockPool) get(k poolKey) (pooledSock, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	socks := p.free[k]
	if len(socks) == 0 {
		return pooledSock{fd: -1}, false
	}
	s := socks[len(socks)-1]
	p.free[k] = socks[:len(socks)-1]
	p.n--
	return s, true
}

// release dissolves the connection of a connected socket (resetting it)
// and keeps the socket, or closes it when that fails or the pool is full.
func (p *sockPool) release(k poolKey, s pooledSock) {
	if disconnect(s.fd) == nil {
		p.mu.Lock()
		if p.free != nil && p.n < maxPooled {
			p.free[k] = append(p.free[k], s)
			p.n++
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	unix.Close(s.fd)
}

// close closes every pooled socket; later releases close theirs.
func (p *sockPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, socks := range p.free {
		for _, s := range socks {
			unix.Close(s.fd)
		}
	}
	p.free, p.n = nil, 0
}

// disconnect is connect(2) with an AF_UNSPEC address, which x/sys/unix
// has no Sockaddr for. On a connected TCP socket it sends a reset.
func disconnect(fd int) error {
	var sa [unix.SizeofSockaddrInet6]byte // sa_family 0: AF_UNSPEC
	// Raw: non-blocking, see rawsys_linux.go.
	_, _, errno := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(len(sa)))
	if errno != 0 {
		return errno
	}
	return nil
}
