// Command wakefloor is the least a Go program parked the way vigil's loop
// parks can spend on a deadline every 10 ms: a goroutine waits in the
// runtime's poller on a timerfd (internal/epoll's timer side), and on each
// expiry re-arms it and parks again; nothing else. bench/wakefloor/c is
// the same loop in C, blocking in epoll_wait as keepalived does.
// bench/footprint_conc.sh runs both beside vigil and keepalived: what
// separates the two floors is the Go runtime's park and wake-up, which no
// change to vigil's own work removes (docs/benchmarks.md, footprint).
// `wakefloor block` waits the C way instead, on a thread of its own
// blocked in epoll_pwait; it costs twice as much (same section).
package main

import (
	"log"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}
	rc, err := os.NewFile(uintptr(tfd), "timerfd").SyscallConn()
	if err != nil {
		log.Fatal(err)
	}
	const interval = 10 * time.Millisecond
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(interval))}
	arm := func() {
		unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(tfd), 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	}
	due := time.Now().Add(interval)
	arm()
	if len(os.Args) > 1 && os.Args[1] == "block" {
		block(tfd, arm)
	}
	// As internal/epoll: the expiry is never read (the poller watches the
	// timerfd edge-triggered); the re-arm clears it.
	err = rc.Read(func(uintptr) bool {
		for {
			now := time.Now()
			if now.Before(due) {
				return false
			}
			due = now.Add(interval)
			arm()
		}
	})
	log.Fatal(err)
}

// block is the other way a Go program can wait: its goroutine locked to a
// thread that blocks in epoll_pwait itself, outside the runtime's poller,
// so that the expiry wakes that thread and no scheduler runs between the
// wake-up and the re-arm. Measured, it does not pay: sysmon retakes the
// P during the wait and is woken again at its exit (docs/benchmarks.md).
func block(tfd int, arm func()) {
	runtime.LockOSThread()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, tfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tfd)}); err != nil {
		log.Fatal(err)
	}
	var evs [8]unix.EpollEvent
	for {
		if _, err := unix.EpollWait(ep, evs[:], -1); err != nil && err != unix.EINTR {
			log.Fatal(err)
		}
		arm()
	}
}
