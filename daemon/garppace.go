package daemon

import (
	"net/netip"
	"sync"
	"time"
)

// pacer spaces out the gratuitous ARPs and unsolicited NAs sent on one
// interface: keepalived's vrrp_garp_interval and vrrp_gna_interval, the
// minimum delay between two ARPs (two NAs) on an interface, for switches
// that drop a flood of them. The delay is per interface, shared by every
// instance announcing there, and ARPs and NAs are paced independently.
//
// Announcements are queued and sent by the pacer's own goroutine, so that
// a long paced burst delays neither the loop nor the ordered slow worker
// (which would otherwise hold a later release of the VIPs behind it). An
// announcement whose instance has left MASTER meanwhile is dropped:
// claiming an address the router no longer holds would pull its traffic
// away from the new master.
type pacer struct {
	a  announcer
	mu sync.Mutex
	c  *sync.Cond
	q  []paced
	// closed stops the goroutine; done closes when it has returned.
	closed bool
	done   chan struct{}
	wake   chan struct{} // interrupts a wait when closing
	// last is when the previous ARP (last[0]) and NA (last[1]) went out.
	last [2]time.Time
	now  func() time.Time
}

// paced is one queued announcement: gap is the minimum delay after the
// previous message of its family on the interface, live says whether it
// is still wanted and done gets the result of sending it.
type paced struct {
	ip   netip.Addr
	gap  time.Duration
	live func() bool
	done func(error)
}

func newPacer(a announcer) *pacer {
	p := &pacer{a: a, done: make(chan struct{}), wake: make(chan struct{}), now: time.Now}
	p.c = sync.NewCond(&p.mu)
	go p.run()
	return p
}

// enqueue queues an announcement; it never blocks.
func (p *pacer) enqueue(j paced) {
	p.mu.Lock()
	if !p.closed {
		p.q = append(p.q, j)
	}
	p.mu.Unlock()
	p.c.Signal()
}

func (p *pacer) run() {
	defer close(p.done)
	for {
		p.mu.Lock()
		for len(p.q) == 0 && !p.closed {
			p.c.Wait()
		}
		if p.closed {
			p.mu.Unlock()
			return
		}
		j := p.q[0]
		p.q[0] = paced{}
		p.q = p.q[1:]
		p.mu.Unlock()

		fam := 0
		if !j.ip.Is4() {
			fam = 1
		}
		if last := p.last[fam]; !last.IsZero() {
			if wait := j.gap - p.now().Sub(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-p.wake:
					t.Stop()
					return
				}
			}
		}
		if j.live != nil && !j.live() {
			continue
		}
		err := p.a.Announce(j.ip)
		p.last[fam] = p.now()
		if j.done != nil {
			j.done(err)
		}
	}
}

// close drops what is queued, waits for the goroutine and closes the
// announcer.
func (p *pacer) close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.wake)
	}
	p.mu.Unlock()
	p.c.Broadcast()
	<-p.done
	return p.a.Close()
}
