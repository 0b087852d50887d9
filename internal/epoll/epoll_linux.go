// Package epoll is what vigil's two event loops wait on, the daemon's VRRP
// loop and the BFD runner: one epoll(7) instance holding the loop's
// sockets, one timerfd for the loop's next deadline and one eventfd that
// other goroutines write when they queued work for the loop.
//
// The loop's goroutine parks in the Go runtime's poller on the epoll
// instance itself, which is readable when any of its descriptors is: no
// reader goroutine, channel or Go timer is in the path. Against
// a select loop (a reader goroutine per socket handing each packet over a
// channel, and a Go timer) that is one thread wake-up per packet instead of
// three, and under CPU saturation each extra wake-up is another wait for a
// CPU: a VRRP backup or a BFD session that waits too long declares its peer
// dead (docs/benchmarks.md, host stalls).
package epoll

import (
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The tags Wait returns for the timerfd and the eventfd; a socket's tag is
// what Add was given (its descriptor, which is never negative).
const (
	TagTimer = -1
	TagWake  = -2
)

// Set is one epoll instance with its timerfd and eventfd. Wake may be
// called from any goroutine; everything else belongs to the loop.
type Set struct {
	ep, tfd, efd int
	file         *os.File        // ep, registered with the runtime's poller (NewParked)
	rc           syscall.RawConn // file's
	readFn       func(uintptr) bool
	n            int
	werr         error
	events       [32]unix.EpollEvent
	armed        time.Time // the deadline the timerfd holds; zero: none
	fired        bool      // the timerfd expired and has not been set since: it reads ready until then
	spec         unix.ItimerSpec
	one          [8]byte
	buf          [8]byte // the loop's reads of the timerfd and eventfd
	empty        int     // epoll_waits of Run that found nothing (tests)
}

// NewParked returns a Set whose Wait parks the calling goroutine in the Go
// runtime's poller (the epoll instance is readable when any descriptor in
// it is): the goroutine's P goes idle, so an idle process's threads all
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
	s.readFn = s.readEvents
	if err := s.Add(s.tfd, TagTimer); err != nil {
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

// Add watches fd for input; tag comes back from Wait (a socket's fd, never
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
// armed costs no system call.
func (s *Set) Arm(next time.Time) {
	if next.Equal(s.armed) && !s.fired {
		return
	}
	s.armed, s.fired = next, false
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

// Wait blocks until something is ready and returns the events, whose Fd
// is the tag: TagTimer, TagWake or what Add was given. The slice is reused
// by the next Wait.
func (s *Set) Wait() ([]unix.EpollEvent, error) {
	if s.fired {
		// Not set again since it fired (no Arm): consume the expiry, or
		// it reads ready for ever.
		rawCall(unix.SYS_READ, uintptr(s.tfd), uintptr(unsafe.Pointer(&s.buf[0])), 8, 0)
		s.fired = false
	}
	s.n, s.werr = 0, nil
	err := s.rc.Read(s.readFn) // a method value made once: no allocation per wait
	if err == nil {
		err = s.werr
	}
	if err != nil {
		return nil, err
	}
	return s.events[:s.n], nil
}

// Run waits and calls body with each batch of ready events (as Wait
// returns them) until body returns stop, or a wait fails (its error). The
// loop's own work, Arm included, belongs in body.
//
// body returns quiet when it consumed everything the events announced:
// every socket read until it would block, DrainWake called for TagWake,
// and Arm called after TimerFired. Then the Set parks the
// goroutine at once, without the epoll_wait that would only find the
// Set empty: what became ready since the last epoll_wait woke the
// runtime's poller (a nested epoll instance signals its waiters each time
// one of its descriptors becomes ready), and the poller keeps that
// notice for a goroutine that has not parked yet, as long as it stays in
// one rc.Read, which Run does and a Wait per turn cannot (each Read starts
// by clearing it). Saves one of the six system calls per advert of a
// master at advert_int 10 ms (docs/benchmarks.md, footprint). A batch
// that filled the event array is never quiet: more may be ready.
func (s *Set) Run(body func(evs []unix.EpollEvent) (quiet, stop bool)) error {
	park, stopped := false, false
	s.werr = nil
	err := s.rc.Read(func(fd uintptr) bool {
		for {
			if park {
				park = false
				return false
			}
			if s.fired {
				rawCall(unix.SYS_READ, uintptr(s.tfd), uintptr(unsafe.Pointer(&s.buf[0])), 8, 0)
				s.fired = false
			}
			if !s.readEvents(fd) {
				if s.werr != nil {
					return true
				}
				s.empty++
				return false // nothing ready: park
			}
			quiet, stop := body(s.events[:s.n])
			if stop {
				stopped = true
				return true
			}
			park = quiet && s.n < len(s.events)
		}
	})
	if err == nil && !stopped {
		err = s.werr
	}
	return err
}

// readEvents is what rc.Read calls: take what is ready without blocking;
// false sends the goroutine to wait in the runtime's poller.
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
// The expiry is not read: the next Arm sets the timerfd, which clears it
// (timerfd_settime resets the expiry count), so a read per deadline is
// saved (one of the seven system calls per advert at advert_int 10 ms;
// docs/benchmarks.md, footprint). A Wait without an Arm before it reads it.
func (s *Set) TimerFired() {
	s.armed, s.fired = time.Time{}, true
}

// DrainWake consumes the Wakes so far, before the loop takes what they
// announced.
func (s *Set) DrainWake() {
	rawCall(unix.SYS_READ, uintptr(s.efd), uintptr(unsafe.Pointer(&s.buf[0])), 8, 0)
}

// Wake makes Wait return TagWake; any goroutine.
func (s *Set) Wake() { _, _ = unix.Write(s.efd, s.one[:]) }

// Close closes the epoll instance, the timerfd and the eventfd.
func (s *Set) Close() {
	if s.file != nil {
		_ = s.file.Close() // closes ep
		s.file, s.ep = nil, -1
	}
	for _, fd := range []int{s.ep, s.tfd, s.efd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	s.ep, s.tfd, s.efd = -1, -1, -1
}
