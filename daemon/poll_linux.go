package daemon

import (
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// poller is what the loop waits on: one epoll instance holding the VRRP
// sockets, one timerfd for the loop's next deadline and one eventfd that
// the bridge goroutine writes when it queued other work. The loop's own
// thread blocks in epoll_wait and is the thread the kernel wakes for an
// advert or a deadline; no other goroutine or thread is in that path.
//
// What it saves, against the select loop it replaced (a reader goroutine
// per socket handing each advert over a channel, and a Go timer): each
// advert woke a poller thread, the reader and the loop (three thread
// wake-ups, one copy and allocation); now one. Measured in
// docs/benchmarks.md (issue #7). Under CPU saturation each extra wake-up
// is another wait for a CPU, and a backup that waits too long declares the
// master dead (issue #8, host stalls).
type poller struct {
	ep, tfd, efd int
	file         *os.File        // ep, registered with the runtime's poller
	rc           syscall.RawConn // file's
	readFn       func(uintptr) bool
	n            int
	werr         error
	events       [32]unix.EpollEvent
	armed        time.Time // the deadline the timerfd holds; zero: none
	spec         unix.ItimerSpec
	one          [8]byte
	buf          [8]byte // the loop's reads of the timerfd and eventfd

	mu    sync.Mutex
	inbox []func(now time.Time) // queued by the bridge
	spare []func(now time.Time)
}

const (
	tagTimer = -1
	tagWake  = -2
)

func newPoller() (*poller, error) {
	p := &poller{ep: -1, tfd: -1, efd: -1}
	var err error
	if p.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	if p.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		p.close()
		return nil, err
	}
	if p.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		p.close()
		return nil, err
	}
	if err := unix.SetNonblock(p.ep, true); err != nil {
		p.close()
		return nil, err
	}
	p.file = os.NewFile(uintptr(p.ep), "epoll")
	if p.rc, err = p.file.SyscallConn(); err != nil {
		p.close()
		return nil, err
	}
	p.readFn = p.readEvents
	if err := p.add(p.tfd, tagTimer); err != nil {
		p.close()
		return nil, err
	}
	if err := p.add(p.efd, tagWake); err != nil {
		p.close()
		return nil, err
	}
	p.one[0] = 1 // eventfd counts in host order; any non-zero value wakes
	return p, nil
}

// add watches fd for input; tag comes back from wait (a socket's fd, or
// tagTimer / tagWake).
func (p *poller) add(fd, tag int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tag)}
	return unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, fd, &ev)
}

func (p *poller) del(fd int) {
	_ = unix.EpollCtl(p.ep, unix.EPOLL_CTL_DEL, fd, nil)
}

// arm sets the timerfd to fire at next (zero: never); a deadline already
// armed costs no system call.
func (p *poller) arm(next time.Time) {
	if next.Equal(p.armed) {
		return
	}
	p.armed = next
	p.spec = unix.ItimerSpec{}
	if !next.IsZero() {
		d := time.Until(next)
		if d <= 0 {
			d = 1 // a zero value would disarm it
		}
		p.spec.Value = unix.NsecToTimespec(int64(d))
	}
	rawCall(unix.SYS_TIMERFD_SETTIME, uintptr(p.tfd), 0, uintptr(unsafe.Pointer(&p.spec)), 0)
}

// wait blocks until something is ready and returns the tags.
//
// The epoll instance itself waits in the Go runtime's poller (it is
// readable when any fd in it is): the loop goroutine parks like any other
// and its P goes idle, so an idle vigil's threads all sleep until the
// next deadline. Blocking in epoll_wait as a system call instead kept a P
// busy, which kept the runtime's sysmon thread polling and handing the P
// around: 46 wake-ups a second for a daemon with one deadline a second,
// and 1,028 (CPU 4.0%) for one master at 10 ms (bench/footprint.sh).
func (p *poller) wait() ([]unix.EpollEvent, error) {
	p.n, p.werr = 0, nil
	err := p.rc.Read(p.readFn) // a method value made once: no allocation per wait
	if err == nil {
		err = p.werr
	}
	if err != nil {
		return nil, err
	}
	return p.events[:p.n], nil
}

// readEvents is what rc.Read calls: take what is ready without blocking;
// false sends the goroutine to wait in the runtime's poller.
func (p *poller) readEvents(fd uintptr) bool {
	for {
		r, e := rawCall(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&p.events[0])), uintptr(len(p.events)), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			p.werr = e
			return true
		}
		p.n = int(r)
		return p.n > 0
	}
}

// rawCall makes a system call that never blocks (timeout 0, non-blocking
// descriptors) without telling the runtime: Syscall's entersyscall wakes
// the runtime's sysmon thread each time, an extra wake-up per advert
// (bench/footprint.sh).
func rawCall(trap, a1, a2, a3, a4 uintptr) (uintptr, unix.Errno) {
	r, _, e := unix.RawSyscall6(trap, a1, a2, a3, a4, 0, 0)
	return r, e
}

// timerFired consumes the timerfd's expiry; the deadline is then spent.
func (p *poller) timerFired() {
	rawCall(unix.SYS_READ, uintptr(p.tfd), uintptr(unsafe.Pointer(&p.buf[0])), 8, 0)
	p.armed = time.Time{}
}

// post queues f for the loop and wakes it; any goroutine.
func (p *poller) post(f func(now time.Time)) {
	p.mu.Lock()
	p.inbox = append(p.inbox, f)
	p.mu.Unlock()
	_, _ = unix.Write(p.efd, p.one[:])
}

// take returns what was posted; the loop runs it and calls it again until
// it is empty.
func (p *poller) take() []func(now time.Time) {
	rawCall(unix.SYS_READ, uintptr(p.efd), uintptr(unsafe.Pointer(&p.buf[0])), 8, 0)
	p.mu.Lock()
	fs := p.inbox
	p.inbox = p.spare[:0]
	p.spare = nil
	p.mu.Unlock()
	return fs
}

// recycle hands back the slice take returned.
func (p *poller) recycle(fs []func(now time.Time)) {
	clear(fs)
	p.mu.Lock()
	if p.spare == nil {
		p.spare = fs[:0]
	}
	p.mu.Unlock()
}

func (p *poller) close() {
	if p.file != nil {
		_ = p.file.Close() // closes ep
		p.file, p.ep = nil, -1
	}
	for _, fd := range []int{p.ep, p.tfd, p.efd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	p.ep, p.tfd, p.efd = -1, -1, -1
}
