// Package epoll is what vigil's two event loops wait on, the daemon's VRRP
// loop and the BFD runner: the loop's sockets, a timerfd for its next
// deadline, and a wake-up other goroutines give when they queued work for
// it.
//
// The loop's goroutines park in the Go runtime's poller, each on its own
// descriptor: one on each socket, one on the timerfd (which also takes the
// Wakes); they take turns running the loop's body. No reader goroutine
// per socket handing packets over a channel, and no Go timer, is in the
// path: the goroutine the kernel's readiness wakes is the one that runs
// the body. Against a select loop (a reader goroutine per socket handing
// each packet over a channel, and a Go timer) that is one thread wake-up
// per packet instead of three, and under CPU saturation each extra
// wake-up is another wait for a CPU: a VRRP backup or a BFD session that
// waits too long declares its peer dead (docs/benchmarks.md, host stalls).
//
// The name is what it replaced: an epoll(7) instance of the loop's own,
// holding the sockets and an eventfd, on which one goroutine parked (the
// runtime's poller watching the nested instance). Each packet then cost
// an epoll_wait of the loop's to learn which socket was ready, on top of
// the runtime's, and the nested instance's wake-up chain in the kernel:
// a VRRP backup at advert_int 10 ms made five system calls per advert
// where keepalived makes four (docs/benchmarks.md, footprint).
package epoll

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The tags Run passes for the timer and for Wakes; a socket's tag is what
// Add was given (its descriptor, which is never negative).
const (
	TagTimer = -1
	TagWake  = -2
)

// Set is a loop's sockets and its timerfd. Wake, Add and Del may be called
// from any goroutine; everything else belongs to the loop (its body, in
// Run).
type Set struct {
	tfd   int
	tfile *os.File        // tfd, registered with the runtime's poller
	trc   syscall.RawConn // tfile's
	armed time.Time       // the deadline the timerfd holds; zero: none
	// detectAt is the earliest deadline that declares a peer dead
	// (given to Arm with the deadline); zero: none.
	detectAt time.Time
	spec     unix.ItimerSpec
	// late is a batch of several tags (the timer side's, a socket's after
	// a detection time): the sockets with input first (readLate), then
	// TagWake, TagTimer or the passing socket's tag.
	late []unix.EpollEvent
	// pfds is readLate's poll(2) array. Add grows it and nsocks, and
	// resetBatch grows late to nsocks+2 before a pass, so that a late
	// wake-up in the steady state allocates nothing
	// (bfd/link's TestRunnerStepAllocatesNothing).
	pfds   []unix.PollFd
	nsocks atomic.Int32
	body   func(evs []unix.EpollEvent) (quiet, stop bool)

	// smu guards socks and running: the BFD runner adds and removes its
	// listeners from its own goroutines while Run runs.
	smu     sync.Mutex
	socks   []*sock // Add order
	running bool

	// woken is a Wake the timer side has not passed yet.
	woken atomic.Bool
	// checks counts the readiness checks of the sockets' goroutines
	// (tests: each is a system call the quiet path saves).
	checks atomic.Int64

	// mu is held while the body runs: the goroutines take turns.
	mu      sync.Mutex
	stopped atomic.Bool // Run is ending: every goroutine returns
	wg      sync.WaitGroup
	errMu   sync.Mutex
	werr    error // the first failed wait
}

// sock is one socket of the Set and the goroutine parked on it.
type sock struct {
	fd   int
	ev   [1]unix.EpollEvent // its tag, the batch its goroutine passes
	file *os.File           // a duplicate of fd, registered with the runtime's poller
	rc   syscall.RawConn    // file's
	dead atomic.Bool        // Del: its goroutine closes file and returns
}

// NewParked returns a Set whose Run parks its goroutines in the Go
// runtime's poller: their P goes idle, so an idle process's threads all
// sleep until the next deadline. Blocking in epoll_wait as a system call
// instead keeps a P busy, which keeps the runtime's sysmon thread polling
// and handing the P around: 46 wake-ups a second for a daemon with one
// deadline a second, and 1,028 (CPU 4.0%) for one VRRP master at 10 ms
// (bench/footprint.sh). The daemon's loop and the BFD process use it.
func NewParked() (*Set, error) {
	s := &Set{tfd: -1}
	var err error
	if s.tfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		return nil, err
	}
	s.tfile = os.NewFile(uintptr(s.tfd), "timerfd")
	if s.trc, err = s.tfile.SyscallConn(); err != nil {
		s.tfile.Close()
		return nil, err
	}
	return s, nil
}

// Add watches fd for input; tag comes back from Run (a socket's fd, never
// TagTimer or TagWake). The Set parks a goroutine on a duplicate of fd
// (the runtime's poller registers descriptors only through an *os.File,
// which owns and closes what it holds); fd must be non-blocking.
func (s *Set) Add(fd, tag int) error {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	k := &sock{fd: fd, file: os.NewFile(uintptr(dup), "socket")}
	k.ev[0] = unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tag)}
	if k.rc, err = k.file.SyscallConn(); err != nil {
		k.file.Close()
		return err
	}
	s.smu.Lock()
	defer s.smu.Unlock()
	s.socks = append(s.socks, k)
	if cap(s.pfds) < len(s.socks) {
		s.pfds = make([]unix.PollFd, 0, 2*len(s.socks))
	}
	s.nsocks.Store(int32(len(s.socks)))
	// Not once Run is ending: its WaitGroup may be at zero in Wait. stop
	// sets stopped before it takes smu, so an Add that sees it unset
	// counts its goroutine before Run waits; the next Run starts it.
	if s.running && !s.stopped.Load() {
		s.wg.Add(1)
		go s.runSocket(k)
	}
	return nil
}

// Del stops watching fd. Its goroutine closes the duplicate as it leaves
// the runtime's poller, at once if it is parked, else when the body it
// waits for or runs returns: the socket outlives Del by that long. A Set
// that is not running closes it at once.
func (s *Set) Del(fd int) {
	s.smu.Lock()
	defer s.smu.Unlock()
	for i, k := range s.socks {
		if k.fd != fd {
			continue
		}
		s.socks = append(s.socks[:i], s.socks[i+1:]...)
		s.nsocks.Store(int32(len(s.socks)))
		if !s.running {
			k.file.Close()
			return
		}
		k.dead.Store(true)
		_ = k.file.SetReadDeadline(time.Unix(1, 0)) // out of the poller
		return
	}
}

// Arm sets the timerfd to fire at next (zero: never) and gives the
// earliest deadline that declares a peer dead, detectAt (a VRRP backup's
// Master_Down_Timer, a BFD detection time; zero: none), which may be later
// than next. The two come together because every wait needs both: a
// caller that armed a deadline and forgot the detection time would leave
// the last one's in place.
//
// A deadline already armed costs no system call, and neither does zero
// after TimerFired: the one-shot timerfd is spent (or, the clock having
// passed the deadline first, about to be, and its expiry finds Armed
// zero).
//
// Once detectAt has passed, a pass reads the sockets that have input
// before it runs, even when it wakes on time, as it always does when it
// wakes late (readFirst). A packet that arrived just before the deadline
// may still be waiting for its socket's goroutine (readiness seen by the
// poller, the goroutine not yet run: under CPU saturation, for
// milliseconds), and the pass would otherwise take the peer's silence for
// its failure: 3 false failovers in 12 runs of 60 s under 6 busy loops, 0
// in 18 with this (bench/stall.sh, docs/benchmarks.md). It is a time, not
// a mark on the armed deadline: a detection time just after a master's
// advert deadline passes unseen by a mark when the pass that runs both
// wakes for the first. It costs a poll(2) (timeout 0) per pass after such
// a deadline; a master's advert deadlines, which tell nothing about a
// peer, do not ask for it. Arm belongs to the body.
func (s *Set) Arm(next, detectAt time.Time) {
	s.detectAt = detectAt
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

// readFirst says whether a pass at now reads the sockets that have input
// before its own tags: a detection time has passed (Arm's detectAt), or the
// armed deadline passed more than lateWake ago (the process stalled, and
// the loop reads what queued meanwhile before it runs its timers). The
// timer's side and the sockets' ask the same question.
func (s *Set) readFirst(now time.Time) bool {
	return (!s.detectAt.IsZero() && !now.Before(s.detectAt)) ||
		(!s.armed.IsZero() && now.Sub(s.armed) > lateWake)
}

// Armed is the deadline the timerfd holds (zero: none); after TagTimer it
// is the deadline that fired, until TimerFired.
func (s *Set) Armed() time.Time { return s.armed }

// Run calls body with each batch of ready events until body returns stop,
// or a wait fails (its error). The tags are a socket's (what Add was
// given), TagWake, and TagTimer once the armed deadline has passed. body
// runs on one goroutine at a time, never on two at once: the caller's,
// parked on the timerfd (deadlines and Wakes), and one parked on each
// socket. The loop's own work, Arm, Add and Del included, belongs in body.
//
// Why a goroutine per descriptor: a wake-up then says what woke it. A
// VRRP master at advert_int 10 ms wakes only for its deadline, a backup
// only for the master's adverts; each would otherwise take an epoll_wait
// to learn which descriptor it was, a fifth system call per advert where
// keepalived makes four (docs/benchmarks.md, footprint). The timer side
// checks the clock against the deadline before calling body, so a wake-up
// that is not the deadline's (a stale expiry) costs nothing but the check.
//
// A socket's tag says it may have input, not that it has: a readiness
// the poller saw may have been consumed already (by the pass that entered
// the Read, or by the timer's goroutine after a stall), and the body's
// read then finds the socket empty, as a spurious epoll event would.
//
// body returns quiet when it consumed everything the events announced:
// every socket read until it would block. A socket's goroutine then parks
// at once, without a system call that would only find the socket empty:
// what became ready since the body's last read woke the runtime's poller,
// which keeps that notice for a goroutine that has not parked yet, as long
// as it stays in one RawConn.Read. After a body that was not quiet, and on
// entering a Read (which clears the notice: the first time, after a stale
// deadline), it asks the kernel first (poll(2), timeout 0).
func (s *Set) Run(body func(evs []unix.EpollEvent) (quiet, stop bool)) error {
	s.stopped.Store(false)
	s.errMu.Lock()
	s.werr = nil
	s.errMu.Unlock()
	s.body = body
	s.smu.Lock()
	s.running = true
	for _, k := range s.socks {
		_ = k.file.SetReadDeadline(time.Time{})
		s.wg.Add(1)
		go s.runSocket(k)
	}
	s.smu.Unlock()
	terr := s.runTimer()
	s.stop()
	s.wg.Wait()
	s.smu.Lock()
	s.running = false
	for _, k := range s.socks {
		_ = k.file.SetReadDeadline(time.Time{})
	}
	s.smu.Unlock()
	_ = s.tfile.SetReadDeadline(time.Time{})
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if terr != nil {
		return terr
	}
	return s.werr
}

// stop ends Run: every goroutine parked in the poller wakes for a deadline
// in the past and sees stopped.
func (s *Set) stop() {
	s.stopped.Store(true)
	s.smu.Lock()
	defer s.smu.Unlock()
	_ = s.tfile.SetReadDeadline(time.Unix(1, 0))
	for _, k := range s.socks {
		_ = k.file.SetReadDeadline(time.Unix(1, 0))
	}
}

// fail records a failed wait (the first) and ends Run.
func (s *Set) fail(err error) {
	s.errMu.Lock()
	if s.werr == nil {
		s.werr = err
	}
	s.errMu.Unlock()
	s.stop()
}

// runSocket is k's goroutine: the body with k's tag each time the socket
// is readable, until Run ends or Del.
func (s *Set) runSocket(k *sock) {
	defer s.wg.Done()
	for {
		check := true // entering the Read cleared the poller's notice
		err := k.rc.Read(func(fd uintptr) bool {
			for {
				if k.dead.Load() || s.stopped.Load() {
					return true
				}
				if check {
					check = false
					if !s.readable(fd) {
						return false
					}
				}
				s.mu.Lock()
				if k.dead.Load() || s.stopped.Load() {
					s.mu.Unlock()
					return true
				}
				quiet, stop := s.body(s.socketBatch(k))
				s.mu.Unlock()
				if stop {
					s.stop()
					return true
				}
				if quiet {
					return false // park: the poller keeps what came since
				}
				check = true // more may be ready: ask before parking
			}
		})
		switch {
		case k.dead.Load():
			k.file.Close() // out of the Read: no reference is left to wait for
			return
		case s.stopped.Load():
			return
		case err == nil || errors.Is(err, os.ErrDeadlineExceeded):
			// A deadline left from an earlier Run or Del's race with it:
			// enter again (and check the socket first).
			_ = k.file.SetReadDeadline(time.Time{})
		default:
			s.fail(err)
			return
		}
	}
}

// socketBatch is what k's goroutine passes: k's tag, and, when the pass
// reads first (readFirst: a detection time passed, or the armed deadline
// long ago), first the other sockets that have input (readLate). The
// pass runs the loop's timers whatever woke it, so this one would
// otherwise decide the peer is gone with an advert waiting on another
// socket, whose goroutine has not run yet; the timer's goroutine reads
// them first for the same reason (runTimer).
func (s *Set) socketBatch(k *sock) []unix.EpollEvent {
	if s.nsocks.Load() < 2 || !s.readFirst(time.Now()) {
		return k.ev[:]
	}
	s.resetBatch()
	s.readLate()
	for _, ev := range s.late {
		if ev.Fd == k.ev[0].Fd {
			return s.late
		}
	}
	return append(s.late, k.ev[0])
}

// resetBatch empties s.late, grown to hold every socket, TagWake and
// TagTimer, so that filling it allocates nothing.
func (s *Set) resetBatch() {
	if n := int(s.nsocks.Load()) + 2; cap(s.late) < n {
		s.late = make([]unix.EpollEvent, 0, 2*n)
	}
	s.late = s.late[:0]
}

// readable asks the kernel whether fd has input, without blocking. An
// error reads as readable: the body's read reports it.
func (s *Set) readable(fd uintptr) bool {
	s.checks.Add(1)
	pfd := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	r, e := pollNow(pfd[:])
	return e != 0 || r > 0
}

// pollNow is poll(2) on p with a zero timeout, retried on EINTR.
func pollNow(p []unix.PollFd) (uintptr, unix.Errno) {
	for {
		var ts unix.Timespec
		r, e := rawCall(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(unsafe.Pointer(&ts)), 0)
		if e != unix.EINTR {
			return r, e
		}
	}
}

// runTimer is Run's side on the timerfd: body with TagTimer each time the
// armed deadline has passed, and TagWake after Wake. Woken more than
// lateWake after the deadline (the process stalled: CPU starvation, a VM
// pause, SIGSTOP), it first passes the sockets that have input
// (readLate), in the same batch: the loops read every packet that queued
// meanwhile before they run the timers, so a backup's master-down timer
// or a BFD detection time that ran out during the stall is checked
// against the adverts that did arrive (a stall of our own is not the
// peer's failure). On time, it does so only once a detection time has
// passed (Arm's detectAt); otherwise the socket's own goroutine takes what
// arrives.
//
// A Wake sets woken and a read deadline in the past on the timerfd, which
// wakes this goroutine in the runtime without a system call on either
// side (an eventfd cost a write and a read per Wake, and a descriptor in
// the set). The deadline is cleared before woken is read, so a Wake that
// comes meanwhile is seen now or wakes the next park.
func (s *Set) runTimer() error {
	for {
		err := s.trc.Read(func(uintptr) bool {
			for {
				if s.stopped.Load() {
					return true
				}
				s.mu.Lock()
				if s.stopped.Load() {
					s.mu.Unlock()
					return true
				}
				now := time.Now()
				due := !s.armed.IsZero() && !now.Before(s.armed)
				wake := s.woken.Swap(false)
				if !due && !wake {
					s.mu.Unlock()
					return false // not yet (or a stale expiry): park
				}
				s.resetBatch()
				if due && s.readFirst(now) {
					s.readLate()
				}
				if wake {
					s.late = append(s.late, unix.EpollEvent{Fd: TagWake})
				}
				if due {
					s.late = append(s.late, unix.EpollEvent{Fd: TagTimer})
				}
				_, stop := s.body(s.late)
				s.mu.Unlock()
				if stop {
					return true
				}
			}
		})
		if s.stopped.Load() {
			return nil
		}
		if err == nil {
			return nil // the body's stop
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		_ = s.tfile.SetReadDeadline(time.Time{}) // a Wake: then read woken
	}
}

// readLate puts the sockets that have input at the head of s.late, asked
// of the kernel in one poll(2) (timeout 0); by the time the body reads
// one, its own goroutine may have emptied it (Run: a tag says a socket
// may have input). An error passes every socket: the bodies' reads
// report it.
func (s *Set) readLate() {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.pfds = s.pfds[:0]
	for _, k := range s.socks {
		s.pfds = append(s.pfds, unix.PollFd{Fd: int32(k.fd), Events: unix.POLLIN})
	}
	if len(s.pfds) == 0 {
		return
	}
	_, e := pollNow(s.pfds)
	for i, k := range s.socks {
		if e != 0 || s.pfds[i].Revents != 0 {
			s.late = append(s.late, k.ev[0])
		}
	}
}

// lateWake is how late after its deadline the timer side may wake before
// it passes the sockets first: above the timerfd's slack and a wake-up's
// latency on a busy host (tens to hundreds of microseconds), below any
// advert interval.
const lateWake = time.Millisecond

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

// Wake makes Run pass TagWake; any goroutine.
func (s *Set) Wake() {
	s.woken.Store(true)
	_ = s.tfile.SetReadDeadline(time.Unix(1, 0))
}

// Close closes the timerfd and the duplicates of the sockets; not while
// Run runs. A Wake after it does nothing.
func (s *Set) Close() {
	s.smu.Lock()
	for _, k := range s.socks {
		k.file.Close()
	}
	s.socks = nil
	s.smu.Unlock()
	_ = s.tfile.Close() // closes tfd; tfile stays for Wake, which then fails
}
