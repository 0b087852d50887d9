// Package epoll is what vigil's two event loops wait on, the daemon's VRRP
// loop and the BFD runner: one epoll(7) instance holding the loop's
// sockets and one eventfd that other goroutines write when they queued
// work for the loop, and one timerfd for the loop's next deadline.
//
// The loop's goroutines park in the Go runtime's poller: one on the epoll
// instance itself, which is readable when any of its descriptors is, one
// on the timerfd; they take turns running the loop's body. No reader
// goroutine per socket, channel or Go timer is in the path. Against a
// select loop (a reader goroutine per socket handing each packet over a
// channel, and a Go timer) that is one thread wake-up per packet instead of
// three, and under CPU saturation each extra wake-up is another wait for a
// CPU: a VRRP backup or a BFD session that waits too long declares its peer
// dead (docs/benchmarks.md, host stalls).
package epoll

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The tags Run passes for the timerfd and the eventfd; a socket's tag is
// what Add was given (its descriptor, which is never negative).
const (
	TagTimer = -1
	TagWake  = -2
)

// Set is one epoll instance with its eventfd, and a timerfd. Wake may be
// called from any goroutine; everything else belongs to the loop (its
// body, in Run).
type Set struct {
	ep, tfd, efd int
	file         *os.File        // ep, registered with the runtime's poller (NewParked)
	rc           syscall.RawConn // file's
	tfile        *os.File        // tfd, registered with the runtime's poller
	trc          syscall.RawConn // tfile's
	n            int
	werr         error
	events       [32]unix.EpollEvent
	late         [33]unix.EpollEvent // the timer side's batch when it woke late: sockets, then TagTimer
	armed        time.Time           // the deadline the timerfd holds; zero: none
	spec         unix.ItimerSpec
	one          [8]byte
	buf          [8]byte // the loop's reads of the eventfd
	empty        int     // epoll_waits of Run that found nothing (tests)

	// mu is held while the body runs (Run): the socket side and the
	// timer side take turns. stopped ends both.
	mu      sync.Mutex
	stopped bool
}

// NewParked returns a Set whose Run parks its goroutines in the Go
// runtime's poller (the epoll instance is readable when any descriptor in
// it is): their P goes idle, so an idle process's threads all
// sleep until the next deadline. Blocking in epoll_wait as a system call
// instead keeps a P busy, which keeps the runtime's sysmon thread polling
// and handing the P around: 46 wake-ups a second for a daemon with one
// deadline a second, and 1,028 (CPU 4.0%) for one VRRP master at 10 ms
// (bench/footprint.sh). The daemon's loop and the BFD process use it.
func NewParked() (*Set, error) {
	s := &Set{ep: -1, tfd: -1, efd: -1}
	var err error
	if s.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	if s.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		s.Close()
		return nil, err
	}
	if s.efd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		s.Close()
		return nil, err
	}
	if err := unix.SetNonblock(s.ep, true); err != nil {
		s.Close()
		return nil, err
	}
	s.file = os.NewFile(uintptr(s.ep), "epoll")
	if s.rc, err = s.file.SyscallConn(); err != nil {
		s.Close()
		return nil, err
	}
	// The timerfd is not in the epoll instance: its goroutine parks on it
	// alone, so a deadline needs no epoll_wait to say what woke it.
	s.tfile = os.NewFile(uintptr(s.tfd), "timerfd")
	if s.trc, err = s.tfile.SyscallConn(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Add(s.efd, TagWake); err != nil {
		s.Close()
		return nil, err
	}
	s.one[0] = 1 // eventfd counts in host order; any non-zero value wakes
	return s, nil
}

// Add watches fd for input; tag comes back from Run (a socket's fd, never
// TagTimer or TagWake).
func (s *Set) Add(fd, tag int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tag)}
	return unix.EpollCtl(s.ep, unix.EPOLL_CTL_ADD, fd, &ev)
}

// Del stops watching fd.
func (s *Set) Del(fd int) {
	_ = unix.EpollCtl(s.ep, unix.EPOLL_CTL_DEL, fd, nil)
}

// Arm sets the timerfd to fire at next (zero: never); a deadline already
// armed costs no system call, and neither does zero after TimerFired: the
// one-shot timerfd is spent (or, the clock having passed the deadline
// first, about to be, and its expiry finds Armed zero).
func (s *Set) Arm(next time.Time) {
	if next.Equal(s.armed) {
		return
	}
	s.armed = next
	s.spec = unix.ItimerSpec{}
	if !next.IsZero() {
		d := time.Until(next)
		if d <= 0 {
			d = 1 // a zero value would disarm it
		}
		s.spec.Value = unix.NsecToTimespec(int64(d))
	}
	rawCall(unix.SYS_TIMERFD_SETTIME, uintptr(s.tfd), 0, uintptr(unsafe.Pointer(&s.spec)), 0)
}

// Armed is the deadline the timerfd holds (zero: none); after TagTimer it
// is the deadline that fired, until TimerFired.
func (s *Set) Armed() time.Time { return s.armed }

// Run calls body with each batch of ready events until body returns stop,
// or a wait fails (its error). The tags are a socket's (what Add was
// given), TagWake, and TagTimer once the armed deadline has passed (alone,
// or after the sockets' events when its side woke late: runTimer). body
// runs on one of two goroutines, never on both at once: the caller's,
// parked on the epoll instance (sockets and Wakes), and one parked on the
// timerfd. The loop's own work, Arm included, belongs in body.
//
// Why two: a VRRP master at advert_int 10 ms wakes only for its deadline.
// Parked on the epoll instance with the timerfd in it, each wake-up took an
// epoll_wait to learn that it was the timer, a fifth system call per advert
// where keepalived makes four (the runtime's two polls, sendmsg and
// timerfd_settime); parked on the timerfd itself, the wake-up says so
// (docs/benchmarks.md, footprint). The timer side checks the clock against
// the deadline before calling body, so a wake-up that is not the
// deadline's (a stale expiry) costs nothing but the check.
//
// body returns quiet when it consumed everything the events announced:
// every socket read until it would block, DrainWake called for TagWake.
// Then the socket side parks at once, without the epoll_wait that would
// only find the set empty: what became ready since the last epoll_wait woke
// the runtime's poller (a nested epoll instance signals its waiters each
// time one of its descriptors becomes ready), and the poller keeps that
// notice for a goroutine that has not parked yet, as long as it stays in
// one rc.Read, which Run does and a wait per turn cannot (each Read starts
// by clearing it). A batch that filled the event array is never quiet:
// more may be ready.
func (s *Set) Run(body func(evs []unix.EpollEvent) (quiet, stop bool)) error {
	s.mu.Lock()
	s.stopped, s.werr = false, nil
	s.mu.Unlock()
	var terr error
	tdone := make(chan struct{})
	go func() {
		defer close(tdone)
		terr = s.runTimer(body)
	}()
	err := s.runSockets(body)
	s.stop(s.tfile)
	<-tdone
	_ = s.file.SetReadDeadline(time.Time{})
	_ = s.tfile.SetReadDeadline(time.Time{})
	if err == nil {
		err = terr
	}
	return err
}

// stop ends Run: the other side, parked in f, wakes for a deadline in the
// past and sees stopped.
func (s *Set) stop(f *os.File) {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	_ = f.SetReadDeadline(time.Unix(1, 0))
}

// ended reports whether a wait's error is only stop's deadline.
func (s *Set) ended(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped && errors.Is(err, os.ErrDeadlineExceeded)
}

// runSockets is Run's side on the epoll instance.
func (s *Set) runSockets(body func(evs []unix.EpollEvent) (quiet, stop bool)) error {
	park, stopped := false, false
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			if park {
				park = false
				return false
			}
			if !s.readEvents(fd) {
				if s.werr != nil {
					return true
				}
				s.empty++
				return false // nothing ready: park
			}
			s.mu.Lock()
			if s.stopped {
				s.mu.Unlock()
				stopped = true
				return true
			}
			quiet, stop := body(s.events[:s.n])
			s.mu.Unlock()
			if stop {
				stopped = true
				return true
			}
			park = quiet && s.n < len(s.events)
		}
	})
	if stopped || s.ended(err) {
		return nil
	}
	if err == nil {
		err = s.werr
	}
	return err
}

// runTimer is Run's side on the timerfd: body with TagTimer each time the
// armed deadline has passed. Woken more than lateWake after the deadline
// (the process stalled: CPU starvation, a VM pause, SIGSTOP), it first
// takes what the sockets have, in the same batch: the loops read every
// packet that queued meanwhile before they run the timers, so a backup's
// master-down timer or a BFD detection time that ran out during the stall
// is checked against the adverts that did arrive (a stall of our own is
// not the peer's failure). On time, it does not ask: the epoll_wait that
// would is the system call this side saves.
func (s *Set) runTimer(body func(evs []unix.EpollEvent) (quiet, stop bool)) error {
	err := s.trc.Read(func(uintptr) bool {
		for {
			s.mu.Lock()
			if s.stopped {
				s.mu.Unlock()
				return true
			}
			now := time.Now()
			if s.armed.IsZero() || now.Before(s.armed) {
				s.mu.Unlock()
				return false // not yet (or a stale expiry): park
			}
			n := 0
			if now.Sub(s.armed) > lateWake {
				n = s.readLate()
			}
			s.late[n].Fd = TagTimer
			_, stop := body(s.late[:n+1])
			s.mu.Unlock()
			if stop {
				s.stop(s.file)
				return true
			}
		}
	})
	if err != nil && !s.ended(err) {
		s.stop(s.file) // the socket side ends too
		return err
	}
	return nil
}

// lateWake is how late after its deadline the timer side may wake before
// it reads the sockets first: above the timerfd's slack and a wake-up's
// latency on a busy host (tens to hundreds of microseconds), below any
// advert interval.
const lateWake = time.Millisecond

// readLate puts what the sockets have ready (not the eventfd: a Wake is
// the socket side's) at the head of s.late, without blocking, and returns
// how many. The socket side may read the same sockets after; it then finds
// them empty.
func (s *Set) readLate() int {
	for {
		r, e := rawCall(unix.SYS_EPOLL_PWAIT, uintptr(s.ep), uintptr(unsafe.Pointer(&s.late[0])), uintptr(len(s.late)-1), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0 // the socket side's own epoll_wait reports it
		}
		n := 0
		for _, ev := range s.late[:r] {
			if ev.Fd != TagWake {
				s.late[n] = ev
				n++
			}
		}
		return n
	}
}

// readEvents takes what is ready without blocking; false sends the
// goroutine to wait in the runtime's poller.
func (s *Set) readEvents(fd uintptr) bool {
	for {
		r, e := rawCall(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&s.events[0])), uintptr(len(s.events)), 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			s.werr = e
			return true
		}
		s.n = int(r)
		return s.n > 0
	}
}

// rawCall makes a system call that never blocks (timeout 0, non-blocking
// descriptors) without telling the runtime: Syscall's entersyscall wakes
// the runtime's sysmon thread each time, an extra wake-up per packet
// (bench/footprint.sh).
func rawCall(trap, a1, a2, a3, a4 uintptr) (uintptr, unix.Errno) {
	r, _, e := unix.RawSyscall6(trap, a1, a2, a3, a4, 0, 0)
	return r, e
}

// TimerFired records the timerfd's expiry; the deadline is then spent.
// The expiry is never read: the runtime's poller watches the timerfd
// edge-triggered, so an unread expiry wakes nobody again, and the next Arm
// to a deadline sets the timerfd, which clears it (timerfd_settime resets
// the expiry count) and lets its next expiry wake Run's timer side: a read
// per deadline saved (docs/benchmarks.md, footprint).
func (s *Set) TimerFired() {
	s.armed = time.Time{}
}

// DrainWake consumes the Wakes so far, before the loop takes what they
// announced.
func (s *Set) DrainWake() {
	rawCall(unix.SYS_READ, uintptr(s.efd), uintptr(unsafe.Pointer(&s.buf[0])), 8, 0)
}

// Wake makes Run pass TagWake; any goroutine.
func (s *Set) Wake() { _, _ = unix.Write(s.efd, s.one[:]) }

// Close closes the epoll instance, the timerfd and the eventfd.
func (s *Set) Close() {
	if s.file != nil {
		_ = s.file.Close() // closes ep
		s.file, s.ep = nil, -1
	}
	if s.tfile != nil {
		_ = s.tfile.Close() // closes tfd
		s.tfile, s.tfd = nil, -1
	}
	for _, fd := range []int{s.ep, s.tfd, s.efd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	s.ep, s.tfd, s.efd = -1, -1, -1
}
