package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// garpConf is instanceConf with two VIPs and vrrp_garp_interval 0.05:
// a burst of 5 ARPs for each of them (keepalived's default repeat).
var garpConf = "global_defs {\n  vrrp_garp_interval 0.05\n}\n" +
	strings.Replace(instanceConf(""), "192.0.2.100/24\n", "192.0.2.100/24\n    192.0.2.101/24\n", 1)

// garpTimes records when each gratuitous ARP reached the host.
func garpTimes(h *fakeHost) func() []time.Time {
	var mu sync.Mutex
	var at []time.Time
	h.hold = func(op string) {
		if strings.HasPrefix(op, "garp ") {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
		}
	}
	return func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(at)
	}
}

// TestGarpInterval: with vrrp_garp_interval set, the ARPs of a new
// master's bursts leave the interface at least that far apart, and
// queuing them holds up neither the loop nor the slow work.
func TestGarpInterval(t *testing.T) {
	l := newLab(t, garpConf)
	times := garpTimes(l.h)
	start := time.Now()
	becomeMaster(l)
	if took := time.Since(start); took > 300*time.Millisecond {
		// Ten ARPs 50 ms apart take 450 ms: becoming MASTER waited for them.
		t.Errorf("becoming MASTER took %v: the paced burst blocked it", took)
	}
	for deadline := time.Now().Add(10 * time.Second); len(times()) < 10; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d gratuitous ARPs sent, want 10", len(times()))
		}
	}
	at := times()
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 50*time.Millisecond {
			t.Errorf("ARP %d went %v after the one before, want at least 50ms", i, gap)
		}
	}
	if n := l.d.insts[0].garps.Load(); n != 10 {
		t.Errorf("garps counted %d, want 10", n)
	}
	l.d.stopAll(l.now)
}

// TestGarpIntervalReleaseCancels: the paced ARPs still queued when the
// instance leaves MASTER are not sent after its VIPs are released.
func TestGarpIntervalReleaseCancels(t *testing.T) {
	l := newLab(t, garpConf)
	times := garpTimes(l.h)
	becomeMaster(l)
	l.d.stopAll(l.now)
	released := time.Now()
	time.Sleep(200 * time.Millisecond)
	ops := l.h.took(0)
	del := slices.IndexFunc(ops, func(op string) bool { return strings.HasPrefix(op, "del 192.0.2.10") })
	if del < 0 {
		t.Fatalf("no VIP released in\n\t%s", strings.Join(ops, "\n\t"))
	}
	for _, op := range ops[del:] {
		if strings.HasPrefix(op, "garp ") {
			t.Errorf("%s after the VIPs were released:\n\t%s", op, strings.Join(ops, "\n\t"))
		}
	}
	for _, at := range times() {
		if at.After(released) {
			t.Errorf("an ARP went out %v after stopAll returned", at.Sub(released))
		}
	}
	if n := len(times()); n >= 10 {
		t.Errorf("all %d ARPs sent: nothing was paced", n)
	}
}

// recAnnouncer records when each address was announced.
type recAnnouncer struct {
	mu     sync.Mutex
	ips    []netip.Addr
	at     []time.Time
	closed bool
}

func (r *recAnnouncer) Announce(ip netip.Addr) error {
	r.mu.Lock()
	r.ips, r.at = append(r.ips, ip), append(r.at, time.Now())
	r.mu.Unlock()
	return nil
}

func (r *recAnnouncer) Close() error { r.mu.Lock(); r.closed = true; r.mu.Unlock(); return nil }

// TestPacerFamilies: ARPs and NAs are paced each by their own interval,
// an announcement no longer live is dropped, and close drops the queue.
func TestPacerFamilies(t *testing.T) {
	r := &recAnnouncer{}
	p := newPacer(r)
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	var wg sync.WaitGroup
	wg.Add(6)
	done := func(error) { wg.Done() }
	for range 3 {
		p.enqueue(paced{ip: v4, gap: 60 * time.Millisecond, done: done})
		p.enqueue(paced{ip: v6, gap: 20 * time.Millisecond, done: done})
	}
	p.enqueue(paced{ip: v4, live: func() bool { return false }, done: func(error) { t.Error("a dead announcement was sent") }})
	wg.Wait()
	r.mu.Lock()
	var last4, last6 time.Time
	for i, ip := range r.ips {
		at := r.at[i]
		if ip.Is4() {
			if !last4.IsZero() && at.Sub(last4) < 60*time.Millisecond {
				t.Errorf("ARPs %v apart, want at least 60ms", at.Sub(last4))
			}
			last4 = at
		} else {
			if !last6.IsZero() && at.Sub(last6) < 20*time.Millisecond {
				t.Errorf("NAs %v apart, want at least 20ms", at.Sub(last6))
			}
			last6 = at
		}
	}
	r.mu.Unlock()
	for range 5 {
		p.enqueue(paced{ip: v4, gap: time.Hour})
	}
	if err := p.close(); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ips) > 6+1 || !r.closed {
		t.Errorf("after close: %d sent (want at most 7), closed %v", len(r.ips), r.closed)
	}
}
