package check

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// connWatch is the one thing the Runner's loop waits on: an epoll
// instance holding the sockets of its pending TCP_CHECK connects and
// HTTP_GETs, its timerfd (the next due check) and an eventfd that the
// worker goroutines and the end of Run's context write to. The loop's
// goroutine parks on it in the Go runtime's poller (an epoll instance is
// readable while it has events) and collects each batch without waiting,
// the way keepalived's single-threaded checker waits on all its sockets
// and timers at once.
//
// One goroutine, one wake-up per event: the timerfd and the sockets had a
// goroutine each (a timer reader and a connect watcher) that passed what
// they saw to the loop over a channel, two goroutine wake-ups per event,
// each often a thread woken; with 3 HTTP_GETs a second those hand-offs
// were most of the Runner's own CPU (docs/benchmarks.md, footprint). A
// blocking epoll_wait would park an OS thread, and every batch would then
// cost a thread hand-off; measured, a tenth of the checker's CPU. The
// timerfd is not a time.Timer for sysmon's sake (see rawsys_linux.go):
// sysmon, asleep while the process is idle, sleeps only until the next Go
// timer and then polls every 20 µs while the check it started runs, and
// re-arming a Go timer earlier than the poller's sleep interrupts it.
//
// Sockets are named by a token, not their descriptor: a descriptor closed
// on timeout may be reused before a stale readiness is delivered, a token
// never is. Tokens count up from 1; the timerfd and the eventfd have the
// two at the top.
type connWatch struct {
	epfd   int
	file   *os.File // epfd, on the runtime's poller
	rc     syscall.RawConn
	tfd    int // the timerfd (tokTimer)
	efd    int // the eventfd (tokWake)
	spec   unix.ItimerSpec
	events []unix.EpollEvent
	tokens []uint64 // poll's, reused
	// ready is w.readReady, made once, and n and werr what its last call
	// found: a closure made in each poll was about three allocations a
	// poll, six an HTTP_GET (TestLoopAllocatesNothing).
	ready func(fd uintptr) bool
	n     int
	werr  error
	one   [8]byte // the eventfd's increment
	// mu keeps wake off a closed (and maybe reused) eventfd: the end of
	// Run's context may wake the loop while it closes.
	mu     sync.Mutex
	closed bool
}

const (
	tokTimer = 1 << 63
	tokWake  = tokTimer + 1
)

func newConnWatch() (w *connWatch, err error) {
	w = &connWatch{tfd: -1, efd: -1, events: make([]unix.EpollEvent, 256)}
	binary.NativeEndian.PutUint64(w.one[:], 1)
	w.ready = w.readReady
	fail := func(what string, err error) (*connWatch, error) {
		w.close()
		return nil, fmt.Errorf("check: %s: %w", what, err)
	}
	if w.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("check: epoll: %w", err)
	}
	// Non-blocking, so that os.NewFile puts it on the runtime's poller.
	if err := unix.SetNonblock(w.epfd, true); err != nil {
		unix.Close(w.epfd)
		return nil, fmt.Errorf("check: epoll: %w", err)
	}
	w.file = os.NewFile(uintptr(w.epfd), "check-epoll")
	if w.rc, err = w.file.SyscallConn(); err != nil {
		return fail("epoll", err)
	}
	if w.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		return fail("timerfd", err)
	}
	if w.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		return fail("eventfd", err)
	}
	if err := rawEpollCtl(w.epfd, unix.EPOLL_CTL_ADD, w.tfd, epollEvent(unix.EPOLLIN, tokTimer)); err != nil {
		return fail("epoll", err)
	}
	if err := rawEpollCtl(w.epfd, unix.EPOLL_CTL_ADD, w.efd, epollEvent(unix.EPOLLIN, tokWake)); err != nil {
		return fail("epoll", err)
	}
	return w, nil
}

func epollEvent(events uint32, token uint64) *unix.EpollEvent {
	ev := &unix.EpollEvent{Events: events}
	// Fd and Pad together are the 64-bit user data of struct epoll_event.
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], token)
	ev.Fd = int32(binary.NativeEndian.Uint32(b[0:4]))
	ev.Pad = int32(binary.NativeEndian.Uint32(b[4:8]))
	return ev
}

func eventToken(ev *unix.EpollEvent) uint64 {
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:4], uint32(ev.Fd))
	binary.NativeEndian.PutUint32(b[4:8], uint32(ev.Pad))
	return binary.NativeEndian.Uint64(b[:])
}

// watch reports fd once when it becomes writable (or fails). The
// registration is one-shot; rearm asks again for a spurious wake-up.
func (w *connWatch) watch(fd int, token uint64) error {
	return w.watchFor(fd, token, unix.EPOLLOUT)
}

func (w *connWatch) rearm(fd int, token uint64) error {
	return w.rearmFor(fd, token, unix.EPOLLOUT)
}

// watchFor and rearmFor are watch and rearm for the readiness in events
// (EPOLLOUT or EPOLLIN): an HTTP_GET waits to write its request, then to
// read the response.
func (w *connWatch) watchFor(fd int, token uint64, events uint32) error {
	return rawEpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, epollEvent(events|unix.EPOLLONESHOT, token))
}

func (w *connWatch) rearmFor(fd int, token uint64, events uint32) error {
	return rawEpollCtl(w.epfd, unix.EPOLL_CTL_MOD, fd, epollEvent(events|unix.EPOLLONESHOT, token))
}

// poll waits, parked in the runtime's poller, until something is ready
// and returns the tokens, in a slice w reuses at the next poll: sockets'
// tokens, tokTimer (the timer is then spent) and tokWake (the wake-ups so
// far consumed). An error means w was closed.
func (w *connWatch) poll() ([]uint64, error) {
	w.n, w.werr = 0, nil
	err := w.rc.Read(w.ready)
	if err == nil {
		err = w.werr
	}
	if err != nil {
		return nil, err
	}
	tokens := w.tokens[:0]
	var b [8]byte
	for i := range w.events[:w.n] {
		t := eventToken(&w.events[i])
		switch t {
		case tokTimer:
			unix.RawSyscall(unix.SYS_READ, uintptr(w.tfd), uintptr(unsafe.Pointer(&b[0])), 8)
		case tokWake:
			unix.RawSyscall(unix.SYS_READ, uintptr(w.efd), uintptr(unsafe.Pointer(&b[0])), 8)
		}
		tokens = append(tokens, t)
	}
	w.tokens = tokens
	return tokens, nil
}

// readReady collects what the epoll instance epfd has ready into w.events
// (w.n of them) and says whether poll's wait is over: events or an error
// (w.werr). RawConn.Read forgets a readiness that came before it was
// called, so each call asks the epoll instance first.
func (w *connWatch) readReady(epfd uintptr) bool {
	w.n, w.werr = rawEpollPoll(int(epfd), w.events)
	if w.werr == unix.EINTR {
		w.werr = nil
		return false
	}
	return w.werr != nil || w.n > 0
}

// reset arms the timer to fire d from now (d <= 0: at once), replacing
// what it was armed for.
func (w *connWatch) reset(d time.Duration) {
	if d <= 0 {
		d = 1 // a zero value would disarm it
	}
	w.spec.Value = unix.NsecToTimespec(int64(d))
	unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(w.tfd), 0, uintptr(unsafe.Pointer(&w.spec)), 0, 0, 0)
}

// wake makes poll return tokWake; any goroutine, after it has put what
// the loop is to take where the loop looks (the results channel).
func (w *connWatch) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		unix.RawSyscall(unix.SYS_WRITE, uintptr(w.efd), uintptr(unsafe.Pointer(&w.one[0])), 8)
	}
}

// close closes the epoll instance (a poll under way returns an error),
// the timerfd and the eventfd; the loop's, after the workers are gone.
// Again, it does nothing.
func (w *connWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	if w.file != nil {
		w.file.Close()
	}
	for _, fd := range []int{w.tfd, w.efd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
