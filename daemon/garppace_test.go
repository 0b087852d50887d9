package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/config"
	"vigil/vrrp"
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
	mu  sync.Mutex
	ips []netip.Addr
	at  []time.Time
}

func (r *recAnnouncer) Announce(ip netip.Addr) error {
	r.mu.Lock()
	r.ips, r.at = append(r.ips, ip), append(r.at, time.Now())
	r.mu.Unlock()
	return nil
}

func (r *recAnnouncer) Close() error { return nil }

// TestPacerFamilies: ARPs and NAs are paced each by their own interval,
// an announcement no longer live is dropped, and close drops the queue.
func TestPacerFamilies(t *testing.T) {
	r := &recAnnouncer{}
	p := newPacer()
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	var wg sync.WaitGroup
	wg.Add(6)
	done := func(error) { wg.Done() }
	for range 3 {
		p.enqueue(paced{a: r, ip: v4, gap: 60 * time.Millisecond, done: done})
		p.enqueue(paced{a: r, ip: v6, gap: 20 * time.Millisecond, done: done})
	}
	p.enqueue(paced{a: r, ip: v4, live: func() bool { return false }, done: func(error) { t.Error("a dead announcement was sent") }})
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
		p.enqueue(paced{a: r, ip: v4, gap: time.Hour})
	}
	p.close()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ips) > 6+1 {
		t.Errorf("after close: %d sent, want at most 7", len(r.ips))
	}
}

// TestPacerGoroutineEnds: the sending goroutine returns once the queue is
// empty (an interface announced on once holds no goroutine for the rest of
// the daemon's life), and the next announcement still keeps its gap from
// the last one, sent by the goroutine before.
func TestPacerGoroutineEnds(t *testing.T) {
	r := &recAnnouncer{}
	p := newPacer()
	defer p.close()
	v4 := netip.MustParseAddr("192.0.2.1")
	sent := make(chan struct{}, 2)
	done := func(error) { sent <- struct{}{} }
	p.enqueue(paced{a: r, ip: v4, gap: 80 * time.Millisecond, done: done})
	<-sent
	deadline := time.Now().Add(5 * time.Second)
	for !p.idle() {
		if time.Now().After(deadline) {
			t.Fatal("the pacer's goroutine still runs with nothing queued")
		}
		time.Sleep(time.Millisecond)
	}
	p.enqueue(paced{a: r, ip: v4, gap: 80 * time.Millisecond, done: done})
	<-sent
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.at) != 2 {
		t.Fatalf("%d sent, want 2", len(r.at))
	}
	if gap := r.at[1].Sub(r.at[0]); gap < 80*time.Millisecond {
		t.Errorf("second ARP %v after the first, want at least 80ms", gap)
	}
}

// TestGarpPacingKeys: an interface a garp_group names is paced with the
// other interfaces of its group by the group's delays (one it leaves out
// is not paced); any other interface by the global delays, alone.
func TestGarpPacingKeys(t *testing.T) {
	conf := "global_defs {\n  vrrp_garp_interval 0.3\n  vrrp_gna_interval 0.4\n}\n" +
		"garp_group {\n  garp_interval 0.05\n  interfaces {\n    eth0\n    eth1\n  }\n}\n" +
		"garp_group {\n  gna_interval 0.02\n  interface eth2\n}\n" + instanceConf("")
	cfg, diags := config.LoadBytes("keepalived.conf", []byte(conf), config.Env{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	p := newGarpPacing(cfg)
	ms := time.Millisecond
	for _, c := range []struct {
		phys, key string
		gaps      [2]time.Duration
	}{
		{"eth0", "garp_group eth0 eth1", [2]time.Duration{50 * ms, 0}},
		{"eth1", "garp_group eth0 eth1", [2]time.Duration{50 * ms, 0}},
		{"eth2", "garp_group eth2", [2]time.Duration{0, 20 * ms}},
		{"eth3", "eth3", [2]time.Duration{300 * ms, 400 * ms}},
	} {
		if key, gaps := p.pace(c.phys); key != c.key || gaps != c.gaps {
			t.Errorf("pace(%s) = %q %v, want %q %v", c.phys, key, gaps, c.key, c.gaps)
		}
	}
}

// pacedARPs waits for n gratuitous ARPs and checks they reached the host
// at least gap apart, whichever interface each left by; it returns the
// recorded lines.
func pacedARPs(t *testing.T, l *lab, n int, gap time.Duration) []string {
	t.Helper()
	var mu sync.Mutex
	var at []time.Time
	var ops []string
	l.h.hold = func(op string) {
		if strings.HasPrefix(op, "garp ") {
			mu.Lock()
			at, ops = append(at, time.Now()), append(ops, op)
			mu.Unlock()
		}
	}
	for range 100 {
		if slices.ContainsFunc(l.d.insts, func(in *instance) bool { return in.e.State() != vrrp.StateMaster }) {
			l.advance(100 * time.Millisecond)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got := len(at)
		mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d gratuitous ARPs sent, want %d", got, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d < gap {
			t.Errorf("%s went %v after %s, want at least %v", ops[i], d, ops[i-1], gap)
		}
	}
	return slices.Clone(ops)
}

// pacerKeys are the keys of the daemon's pacers, sorted.
func pacerKeys(d *Daemon) []string {
	d.work.wait() // the lab's work runs inline; a worker's would be done
	var keys []string
	for k := range d.pacers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestGarpIntervalVMACsShareParent: two instances on VMACs over eth0 send
// their ARPs from their VMACs, but the frames leave by eth0, so
// vrrp_garp_interval spaces them all out together, as keepalived does.
func TestGarpIntervalVMACsShareParent(t *testing.T) {
	inst := func(vrid, vip string) string {
		c := strings.Replace(instanceConf("  use_vmac\n"), "VI_1", "VI_"+vrid, 1)
		c = strings.Replace(c, "virtual_router_id 51", "virtual_router_id "+vrid, 1)
		return strings.Replace(c, "192.0.2.100/24", vip, 1)
	}
	conf := "global_defs {\n  vrrp_garp_interval 0.05\n}\n" + inst("51", "192.0.2.100/24") + inst("52", "192.0.2.101/24")
	onePacer(t, conf, []string{"vrrp.51", "vrrp.52"}, "eth0")
}

// TestGarpGroupShared: a garp_group of eth0 and eth1 spaces out the ARPs
// of the instances on both interfaces together by its garp_interval,
// with no global vrrp_garp_interval.
func TestGarpGroupShared(t *testing.T) {
	vi2 := strings.NewReplacer("VI_1", "VI_2", "eth0", "eth1", "virtual_router_id 51", "virtual_router_id 52", "192.0.2.100/24", "198.51.100.100/24").Replace(instanceConf(""))
	conf := "garp_group {\n  garp_interval 0.05\n  interfaces {\n    eth0\n    eth1\n  }\n}\n" + instanceConf("") + vi2
	onePacer(t, conf, []string{"eth0", "eth1"}, "garp_group eth0 eth1")
}

// onePacer runs conf (paced at 0.05 s) until its instances are MASTER and
// checks that their gratuitous ARPs go out 50 ms apart (pacedARPs), that
// each of devs sent some, and that one pacer, called pacer, sent them all.
func onePacer(t *testing.T, conf string, devs []string, pacer string) {
	t.Helper()
	l := newLab(t, conf)
	ops := pacedARPs(t, l, 10, 50*time.Millisecond)
	for _, dev := range devs {
		if !slices.ContainsFunc(ops, func(op string) bool { return strings.HasSuffix(op, " dev "+dev) }) {
			t.Errorf("no ARP sent from %s:\n\t%s", dev, strings.Join(ops, "\n\t"))
		}
	}
	if keys := pacerKeys(l.d); !slices.Equal(keys, []string{pacer}) {
		t.Errorf("pacers %q, want only %q", keys, pacer)
	}
	l.d.stopAll(l.now)
}

// TestGarpGroupReload: a reload that adds a garp_group paces the next
// announcements by it.
func TestGarpGroupReload(t *testing.T) {
	l := newLab(t, instanceConf(""))
	l.rewrite("garp_group {\n  garp_interval 0.05\n  interface eth0\n}\n" + garpConf[strings.Index(garpConf, "\nvrrp_instance"):])
	if res := l.d.reload(l.now); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	pacedARPs(t, l, 10, 50*time.Millisecond)
	if keys := pacerKeys(l.d); !slices.Equal(keys, []string{"garp_group eth0"}) {
		t.Errorf("pacers %q, want one for the group", keys)
	}
	l.d.stopAll(l.now)
}
