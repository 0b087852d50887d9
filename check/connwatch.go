package check

import (
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// connWatch waits for the Runner's pending TCP connects on one epoll
// instance, the way keepalived's single-threaded checker waits on all its
// sockets at once. The Runner starts each TCP_CHECK itself (socket and a
// non-blocking connect, which never block), so a TCP check costs no
// goroutine and no hand-off: only a connect still under way is added here,
// and one goroutine reports the sockets that became writable, in batches.
//
// Sockets are named by a token, not their descriptor: a descriptor closed
// on timeout may be reused before a stale readiness is delivered, a token
// never is.
type connWatch struct {
	epfd, wakefd int
	ready        chan []uint64
	done         chan struct{} // closed when the goroutine has returned
	closeOnce    sync.Once
}

func newConnWatch() (*connWatch, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("check: epoll: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("check: eventfd: %w", err)
	}
	// Token 0 is the eventfd that says stop.
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("check: epoll: %w", err)
	}
	return &connWatch{epfd: epfd, wakefd: wakefd, ready: make(chan []uint64, 64), done: make(chan struct{})}, nil
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
	return unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, epollEvent(unix.EPOLLOUT|unix.EPOLLONESHOT, token))
}

func (w *connWatch) rearm(fd int, token uint64) error {
	return unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, fd, epollEvent(unix.EPOLLOUT|unix.EPOLLONESHOT, token))
}

// run waits until stop is called, sending batches of ready tokens. Its
// owner is the Runner, which calls stop and then waits on done.
func (w *connWatch) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		batch := make([]uint64, 0, n)
		for i := range events[:n] {
			t := eventToken(&events[i])
			if t == 0 {
				return // stop
			}
			batch = append(batch, t)
		}
		w.ready <- batch
	}
}

// stop ends run, draining ready so that run is never stuck sending, waits
// for it to return and closes the descriptors.
func (w *connWatch) stop() {
	w.closeOnce.Do(func() {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(w.wakefd, one[:])
		for {
			select {
			case <-w.ready:
				continue
			case <-w.done:
			}
			break
		}
		unix.Close(w.epfd)
		unix.Close(w.wakefd)
	})
}
