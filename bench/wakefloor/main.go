// Command wakefloor is the least a Go program parked the way vigil's loop
// parks can spend on a deadline every 10 ms: a goroutine waits in the
// runtime's poller on a timerfd (internal/epoll's timer side), and on each
// expiry re-arms it and parks again; nothing else. bench/wakefloor/c is
// the same loop in C, blocking in epoll_wait as keepalived does.
// bench/footprint_conc.sh runs both beside vigil and keepalived: what
// separates the two floors is the Go runtime's park and wake-up, which no
// change to vigil's own work removes (docs/benchmarks.md, footprint).
package main

import (
	"log"
	"os"
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
