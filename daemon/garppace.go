package daemon

import (
	"net/netip"
	"strings"
	"sync"
	"time"

	"vigil/config"
)

// pacer spaces out the gratuitous ARPs and unsolicited NAs sent on one
// physical interface, or on the interfaces of one garp_group:
// keepalived's vrrp_garp_interval and vrrp_gna_interval, or a
// garp_group's garp_interval and gna_interval, the minimum delay between
// two ARPs (two NAs), for switches that drop a flood of them. The delay
// is shared by every instance announcing there, VMACs included (their
// frames leave by the interface under them), and ARPs and NAs are paced
// independently.
//
// Announcements are queued and sent by the pacer's own goroutine, so that
// a long paced burst delays neither the loop nor the ordered slow worker
// (which would otherwise hold a later release of the VIPs behind it). An
// announcement whose instance has left MASTER meanwhile is dropped:
// claiming an address the router no longer holds would pull its traffic
// away from the new master.
type pacer struct {
	mu sync.Mutex
	q  []paced
	// running says a goroutine is sending the queue. It exits when the
	// queue is empty, so an interface announced on once (a takeover, or a
	// key a reload stopped using) holds no goroutine and its stack for
	// the rest of the daemon's life; last keeps the gaps across goroutines.
	running bool
	closed  bool
	wg      sync.WaitGroup
	wake    chan struct{} // interrupts a wait when closing
	// last is when the previous ARP (last[0]) and NA (last[1]) went out.
	last [2]time.Time
	now  func() time.Time
}

// paced is one queued announcement, sent by a (on the interface it
// leaves from): gap is the minimum delay after the previous message of
// its family under the pacer, live says whether it is still wanted and
// done gets the result of sending it.
type paced struct {
	a    announcer
	ip   netip.Addr
	gap  time.Duration
	live func() bool
	done func(error)
}

func newPacer() *pacer {
	return &pacer{wake: make(chan struct{}), now: time.Now}
}

// enqueue queues an announcement and starts the sending goroutine if none
// runs; it never blocks.
func (p *pacer) enqueue(j paced) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.q = append(p.q, j)
	if !p.running {
		p.running = true
		p.wg.Add(1)
		go p.run()
	}
}

// next takes the queue's head; false when the queue is empty or the pacer
// closed, and then the goroutine must return (running is cleared under the
// same lock, so an enqueue after it starts a new one).
func (p *pacer) next() (paced, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.q) == 0 {
		p.running = false
		p.q = nil
		return paced{}, false
	}
	j := p.q[0]
	p.q[0] = paced{}
	p.q = p.q[1:]
	return j, true
}

func (p *pacer) run() {
	defer p.wg.Done()
	for {
		j, ok := p.next()
		if !ok {
			return
		}
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
					p.next() // closed: clears running
					return
				}
			}
		}
		if j.live != nil && !j.live() {
			continue
		}
		err := j.a.Announce(j.ip)
		p.last[fam] = p.now()
		if j.done != nil {
			j.done(err)
		}
	}
}

// idle says no goroutine is sending (tests).
func (p *pacer) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.running
}

// close drops what is queued and waits for the goroutine; the
// announcers stay open.
func (p *pacer) close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.wake)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// garpPacing is how the announcements of one configuration are paced:
// each garp_group's delays for its interfaces, the global ones for the
// others. Built on the loop for each configuration and never changed, it
// goes with the announcements to the worker.
type garpPacing struct {
	global [2]time.Duration // ARPs, NAs
	groups map[string]*config.GarpGroup
}

func newGarpPacing(cfg *config.Config) *garpPacing {
	p := &garpPacing{global: [2]time.Duration{cfg.Global.Garp.Interval, cfg.Global.Garp.NAInterval}}
	for _, g := range cfg.GarpGroups {
		for _, s := range g.Interfaces {
			if p.groups == nil {
				p.groups = map[string]*config.GarpGroup{}
			}
			p.groups[s] = g
		}
	}
	return p
}

// pace is the pacer key and the gaps (ARP, NA) of the frames leaving by
// the physical interface phys. The interfaces of a group share one key:
// the delays hold across all of them.
func (p *garpPacing) pace(phys string) (string, [2]time.Duration) {
	if g := p.groups[phys]; g != nil {
		return "garp_group " + strings.Join(g.Interfaces, " "), [2]time.Duration{g.Interval, g.NAInterval}
	}
	return phys, p.global
}
