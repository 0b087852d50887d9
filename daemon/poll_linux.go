package daemon

import (
	"sync"
	"time"
)

// poller is what the loop waits on: a loopWait (edges.go; an epoll.Set
// parked in the runtime's poller) holding the VRRP sockets, whose timerfd
// holds the loop's next deadline and which the bridge goroutine wakes when
// it queued other work. The loop's own thread is the thread the kernel wakes for an
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
	loopWait

	mu    sync.Mutex
	inbox []func(now time.Time) // queued by the bridge
	spare []func(now time.Time)
}

func newPoller(open func() (loopWait, error)) (*poller, error) {
	w, err := open()
	if err != nil {
		return nil, err
	}
	return &poller{loopWait: w}, nil
}

// post queues f for the loop and wakes it; any goroutine.
func (p *poller) post(f func(now time.Time)) {
	p.mu.Lock()
	p.inbox = append(p.inbox, f)
	p.mu.Unlock()
	p.Wake()
}

// take returns what was posted; the loop runs it and calls it again until
// it is empty. The pass that called it has taken the Wake (epoll.Set):
// a post after this wakes the loop again.
func (p *poller) take() []func(now time.Time) {
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
