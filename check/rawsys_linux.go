package check

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls of a TCP_CHECK's and an HTTP_GET's steady state
// (connect, getpeername, getsockopt SO_ERROR, the connect watcher's
// epoll_ctl and epoll_wait, the pool's disconnect, an HTTP_GET's read,
// write and close) are made without telling the Go runtime
// (RawSyscall): none of them blocks, on a non-blocking socket or with a
// zero timeout. A Syscall's entersyscall wakes the runtime's sysmon
// thread whenever it sleeps, and a woken sysmon polls every 20 µs until
// the process is idle again: with 3 TCP_CHECKs at delay_loop 1, those
// five or six calls per check made sysmon most of the process's ~45
// wake-ups a second (docs/benchmarks.md, footprint).

// rawSockaddr is a target address as connect(2) takes it.
type rawSockaddr struct {
	b [unix.SizeofSockaddrInet6]byte
	n uintptr
}

// toRawSockaddr converts what sockaddr returns.
func toRawSockaddr(sa unix.Sockaddr) rawSockaddr {
	var r rawSockaddr
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		raw := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.b[0]))
		raw.Family, raw.Port, raw.Addr = unix.AF_INET, netPort(sa.Port), sa.Addr
		r.n = unix.SizeofSockaddrInet4
	case *unix.SockaddrInet6:
		raw := (*unix.RawSockaddrInet6)(unsafe.Pointer(&r.b[0]))
		raw.Family, raw.Port, raw.Addr, raw.Scope_id = unix.AF_INET6, netPort(sa.Port), sa.Addr, sa.ZoneId
		r.n = unix.SizeofSockaddrInet6
	}
	return r
}

// netPort is port as sin_port and sin6_port hold it: in network byte order.
func netPort(port int) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], uint16(port))
	return binary.NativeEndian.Uint16(b[:])
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// rawConnect is connect(2) on a non-blocking socket.
func rawConnect(fd int, sa *rawSockaddr) error {
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa.b[0])), sa.n)
	return errnoErr(e)
}

// rawGetpeername succeeds when fd is connected.
func rawGetpeername(fd int) error {
	var sa [unix.SizeofSockaddrInet6]byte
	n := uint32(len(sa))
	_, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&n)))
	return errnoErr(e)
}

// rawSoError reads (and clears) fd's pending error.
func rawSoError(fd int) (int, error) {
	var v int32
	n := uint32(unsafe.Sizeof(v))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_ERROR, uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&n)), 0)
	return int(v), errnoErr(e)
}

// rawEpollCtl is epoll_ctl(2).
func rawEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	return errnoErr(e)
}

// rawEpollPoll is epoll_wait(2) with a zero timeout: it never blocks.
func rawEpollPoll(epfd int, evs []unix.EpollEvent) (int, error) {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
	return int(r), errnoErr(e)
}

// rawRead is read(2) on a non-blocking socket.
func rawRead(fd int, b []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(r), errnoErr(e)
}

// rawWrite is write(2) on a non-blocking socket.
func rawWrite(fd int, b []byte) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	return int(r), errnoErr(e)
}

// rawClose is close(2) of a socket without SO_LINGER, which never blocks.
func rawClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}
