package daemon

import (
	"errors"
	"sync"
	"time"

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
	events       [32]unix.EpollEvent
	armed        time.Time // the deadline the timerfd holds; zero: none
	spec         unix.ItimerSpec
	one          [8]byte

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
	_ = unix.TimerfdSettime(p.tfd, 0, &p.spec, nil)
}

// wait blocks until something is ready and returns the tags.
func (p *poller) wait() ([]unix.EpollEvent, error) {
	for {
		n, err := unix.EpollWait(p.ep, p.events[:], -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return p.events[:n], nil
	}
}

// timerFired consumes the timerfd's expiry; the deadline is then spent.
func (p *poller) timerFired() {
	var b [8]byte
	_, _ = unix.Read(p.tfd, b[:])
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
	var b [8]byte
	_, _ = unix.Read(p.efd, b[:])
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
	for _, fd := range []int{p.ep, p.tfd, p.efd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	p.ep, p.tfd, p.efd = -1, -1, -1
}
