package check

import (
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdTimer is the check loop's one timer, a timerfd that a goroutine waits
// on in the runtime's poller and whose expiries it sends on C (buffered,
// never blocking; a stale expiry only makes the loop look at its heap once
// more). Against a time.Timer it saves the wake-ups of the runtime's sysmon
// thread: sysmon, asleep while the process is idle, sleeps only until the
// next Go timer, wakes at it and then polls every 20 µs while the check it
// started runs; and re-arming a Go timer earlier than the deadline the
// runtime's poller is sleeping for interrupts that sleep (a write to the
// runtime's eventfd and a wake-up). A timerfd is neither. Measured with 3
// TCP_CHECKs at delay_loop 1 (docs/benchmarks.md, footprint).
type fdTimer struct {
	C    chan time.Time
	fd   int
	f    *os.File // fd, parked in the runtime's poller
	rc   syscall.RawConn
	spec unix.ItimerSpec
	done chan struct{}
}

func newFDTimer() (*fdTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	t := &fdTimer{C: make(chan time.Time, 1), fd: fd, f: os.NewFile(uintptr(fd), "check-timer"), done: make(chan struct{})}
	if t.rc, err = t.f.SyscallConn(); err != nil {
		t.f.Close()
		return nil, err
	}
	go t.run()
	return t, nil
}

func (t *fdTimer) run() {
	defer close(t.done)
	var b [8]byte
	read := func(fd uintptr) bool {
		// Raw: the descriptor is non-blocking (see rawsys_linux.go).
		_, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		return e != unix.EAGAIN && e != unix.EINTR
	}
	for {
		if err := t.rc.Read(read); err != nil {
			return // closed by Stop
		}
		select {
		case t.C <- time.Now():
		default:
		}
	}
}

// Reset arms the timer to fire d from now (d <= 0: at once), replacing
// what it was armed for.
func (t *fdTimer) Reset(d time.Duration) {
	if d <= 0 {
		d = 1 // a zero value would disarm it
	}
	t.spec.Value = unix.NsecToTimespec(int64(d))
	unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(t.fd), 0, uintptr(unsafe.Pointer(&t.spec)), 0, 0, 0)
}

// Stop closes the timer and waits for its goroutine.
func (t *fdTimer) Stop() {
	t.f.Close()
	<-t.done
}
