package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/addr"
	"vigil/bfd/link"
	"vigil/check"
	"vigil/config"
	"vigil/control"
	"vigil/internal/inet"
	"vigil/internal/pace"
	"vigil/netio"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

// runLab is Daemon.Run itself on a fakeHost, in virtual time: the loop
// waits in fakeWait, and the bridge goroutine, the ordered worker, the
// applier and the housekeeping tick all run as in production. The test
// moves the clock (advance), queues adverts (fakeHost.queue), reports link
// changes and ends the context (stop), and reads the host's calls in order.
type runLab struct {
	t      *testing.T
	d      *Daemon
	h      *fakeHost
	path   string
	cancel context.CancelFunc
	done   chan error
	// goroutines is how many ran before Run started: stop checks that
	// Run leaves none behind.
	goroutines int
}

// startRun starts Run on conf and waits until its loop is idle; setup,
// if any, prepares the fake host first.
func startRun(t *testing.T, conf string, opts Options, setup ...func(*fakeHost)) *runLab {
	t.Helper()
	path := t.TempDir() + "/keepalived.conf"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.ConfigFile = path
	opts.Env = func() config.Env { return config.Env{ReadFile: os.ReadFile} }
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h := newFakeHost(t)
	for _, f := range setup {
		f(h)
	}
	d.host = h.edges()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runLab{t: t, d: d, h: h, path: path, cancel: cancel, done: make(chan error, 1), goroutines: runtime.NumGoroutine()}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return 10 s after its context ended:\n%s", stacks())
		}
	})
	r.settle()
	return r
}

// call runs f on the loop, failing the test if the loop does not take it.
func (r *runLab) call(f func(now time.Time)) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.d.call(ctx, f); err != nil {
		r.t.Fatalf("the loop did not answer: %v\n%s", err, stacks())
	}
}

// loopIdle says whether the loop is blocked in its wait with nothing to
// do: no wake-up pending, no deadline passed, no advert queued. It does not
// allocate (TestRunSteadyStateAllocations spins on it).
func (h *fakeHost) loopIdle() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := &h.wait
	ok := w.idle && !w.woken && (w.armed.IsZero() || h.clock.Before(w.armed))
	for _, c := range h.socks {
		ok = ok && len(c.in) == 0
	}
	return ok
}

// idle waits until the loop is blocked in its wait with nothing to do.
func (r *runLab) idle() {
	r.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Microsecond) {
		if r.h.loopIdle() {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the loop is not idle after 5 s:\n%s", stacks())
		}
	}
}

// settle waits until everything the loop was handed has run: the loop is
// idle, the worker's queue is empty and the applier has applied what the
// loop pushed.
func (r *runLab) settle() {
	r.t.Helper()
	for range 2 {
		r.call(func(time.Time) {}) // after what the bridge took before it
		r.idle()
		var w *slowWork
		var b *balancer
		var gen uint64
		r.call(func(time.Time) {
			w, b = r.d.work, r.d.bal
			if b != nil {
				gen = b.lastGen
			}
		})
		w.wait()
		for deadline := time.Now().Add(5 * time.Second); b != nil; time.Sleep(time.Millisecond) {
			b.state.mu.Lock()
			applied := b.state.gen
			b.state.mu.Unlock()
			if applied >= gen {
				break
			}
			if time.Now().After(deadline) {
				r.t.Fatalf("the applier did not apply generation %d (at %d)", gen, applied)
			}
		}
		r.idle()
	}
}

// advance moves the virtual clock by dt, stopping at every deadline the
// loop armed and every tick on the way (so the loop wakes on time, as the
// kernel would wake it) and letting the loop settle at each.
func (r *runLab) advance(dt time.Duration) {
	r.t.Helper()
	end := r.h.now().Add(dt)
	for {
		r.settle()
		next := r.h.nextEvent()
		if next.IsZero() || next.After(end) {
			r.h.setNow(end)
			r.settle()
			return
		}
		r.h.setNow(next)
	}
}

// state is the first instance's state, read on the loop.
func (r *runLab) state() vrrp.State {
	r.t.Helper()
	var st vrrp.State
	r.call(func(time.Time) { st = r.d.insts[0].e.State() })
	return st
}

// link reports a link change as the netlink watcher would.
func (r *runLab) link(name string, up bool) {
	r.t.Helper()
	r.h.mu.Lock()
	r.h.links[name] = up
	r.h.mu.Unlock()
	select {
	case r.h.linkCh <- addr.LinkState{Name: name, Up: up}:
	case <-time.After(5 * time.Second):
		r.t.Fatal("the bridge did not take the link change")
	}
	r.settle()
}

// stop ends Run's context and checks that Run returns nil and leaves no
// goroutine behind.
func (r *runLab) stop() {
	r.t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		r.t.Fatalf("Run did not return 10 s after its context ended:\n%s", stacks())
	}
	r.done <- nil // for the cleanup
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > r.goroutines; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("%d goroutines 5 s after Run returned, %d before it started:\n%s", runtime.NumGoroutine(), r.goroutines, stacks())
		}
	}
}

// stacks is every goroutine's stack, for a failure's message.
func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// peerAdvert is a VRRPv2 advert for VRID 51 with the VIP 192.0.2.100 from
// another router, 192.0.2.2, at prio.
func peerAdvert(t *testing.T, prio uint8) netio.Packet {
	t.Helper()
	return vridAdvert(t, 51, prio, "192.0.2.100")
}

// vridAdvert is peerAdvert for another VRID and its address.
func vridAdvert(t *testing.T, vrid, prio uint8, vip string) netio.Packet {
	t.Helper()
	a := wire.Advert{Version: 2, Type: wire.TypeAdvertisement, VRID: vrid, Priority: prio, Interval: 1,
		Addrs: []netip.Addr{netip.MustParseAddr(vip)}}
	src, dst := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("224.0.0.18")
	data, err := a.Marshal(src, dst, wire.ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	return netio.Packet{Data: data, Src: src, Dst: dst, TTL: 255}
}

// TestRun drives Daemon.Run itself, not its steps: the adverts it reads
// from the socket, its deadlines, a link change and a reload that reach
// it through the bridge goroutine, and the end of its context, in that
// order, with the ordering rules holding through the real wait, bridge,
// worker and applier, and Run returning cleanly with no goroutine left.
func TestRun(t *testing.T) {
	r := startRun(t, lbConf, Options{})
	if st := r.state(); st != vrrp.StateBackup {
		t.Fatalf("state %v after the start, want BACKUP", st)
	}

	// A master at priority 200 advertises every second: no takeover.
	from := r.h.mark()
	for range 5 {
		r.h.queue("eth0", inet.IPv4, peerAdvert(t, 200))
		r.advance(time.Second)
	}
	if st := r.state(); st != vrrp.StateBackup {
		t.Fatalf("state %v while a priority 200 master advertises, want BACKUP", st)
	}
	for _, op := range r.h.took(from) {
		if strings.HasPrefix(op, "advert") || strings.HasPrefix(op, "add") {
			t.Fatalf("%q while a priority 200 master advertises", op)
		}
	}

	// It falls silent: Master_Down_Timer (3 * 1 s + skew) fires.
	from = r.h.mark()
	r.advance(4 * time.Second)
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v 4 s after the master fell silent, want MASTER", st)
	}
	ops := r.h.took(from)
	before(t, ops, "advert vrid 51 prio 100", "nft apply [192.0.2.100:80/tcp]")
	before(t, ops, "nft apply [192.0.2.100:80/tcp]", "add 192.0.2.100/24")
	before(t, ops, "add 192.0.2.100/24", "garp 192.0.2.100")

	// The link goes down (through the bridge), then comes back.
	from = r.h.mark()
	r.link("eth0", false)
	if st := r.state(); st != vrrp.StateFault {
		t.Fatalf("state %v after the link went down, want FAULT", st)
	}
	before(t, r.h.took(from), "del 192.0.2.100/24", "nft apply []")
	r.link("eth0", true)
	r.advance(4 * time.Second)
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v 4 s after the link came back, want MASTER", st)
	}

	// A reload (what SIGHUP and the control socket call) of a higher
	// priority keeps the instance MASTER and its VIPs in place.
	if err := os.WriteFile(r.path, []byte(strings.Replace(lbConf, "priority 100", "priority 150", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	from = r.h.mark()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	res, err := r.d.Reload(ctx)
	cancel()
	if err != nil || !res.OK {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	r.advance(time.Second)
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v after the reload, want MASTER", st)
	}
	for _, op := range r.h.took(from) {
		if strings.HasPrefix(op, "del") {
			t.Errorf("%q after a reload that changed only the priority", op)
		}
	}
	if ops := r.h.took(from); !contains(ops, "advert vrid 51 prio 150") {
		t.Errorf("no advert at the new priority after the reload:\n\t%s", strings.Join(ops, "\n\t"))
	}

	// The end of the context: priority 0 before the VIPs go, and the
	// rules after them.
	from = r.h.mark()
	r.stop()
	ops = r.h.took(from)
	before(t, ops, "advert vrid 51 prio 0", "del 192.0.2.100/24")
	before(t, ops, "del 192.0.2.100/24", "nft flush")
}

// TestRunReloadMovesSocket: a reload that moves an instance to another
// interface restarts it on a socket there: the old socket leaves the
// loop's wait and is closed, and the loop reads the new one's adverts.
func TestRunReloadMovesSocket(t *testing.T) {
	r := startRun(t, instanceConf(""), Options{})
	r.advance(4 * time.Second)
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v, want MASTER", st)
	}
	if err := os.WriteFile(r.path, []byte(strings.Replace(instanceConf(""), "interface eth0", "interface eth1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	from := r.h.mark()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	res, err := r.d.Reload(ctx)
	cancel()
	if err != nil || !res.OK {
		t.Fatalf("reload: %+v, %v", res, err)
	}
	r.settle()
	before(t, r.h.took(from), "advert vrid 51 prio 0", "del 192.0.2.100/24")
	r.h.mu.Lock()
	var open []string
	for _, c := range r.h.socks {
		if r.h.wait.fds[c.fd] != !c.closed {
			t.Errorf("socket on %s: in the wait %v, closed %v", c.name, r.h.wait.fds[c.fd], c.closed)
		}
		if !c.closed {
			open = append(open, c.name)
		}
	}
	r.h.mu.Unlock()
	if !slices.Equal(open, []string{"eth1"}) {
		t.Fatalf("open sockets on %v after the move, want [eth1]", open)
	}
	r.advance(4 * time.Second)
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v on eth1, want MASTER", st)
	}
	r.h.queue("eth1", inet.IPv4, peerAdvert(t, 200))
	r.settle()
	if st := r.state(); st != vrrp.StateBackup {
		t.Fatalf("state %v after a priority 200 advert on eth1, want BACKUP: the loop did not read the new socket", st)
	}
	r.stop()
}

// contains reports whether one of ops starts with prefix.
func contains(ops []string, prefix string) bool {
	for _, op := range ops {
		if strings.HasPrefix(op, prefix) {
			return true
		}
	}
	return false
}

// count returns how many of ops start with prefix.
func count(ops []string, prefix string) int {
	n := 0
	for _, op := range ops {
		if strings.HasPrefix(op, prefix) {
			n++
		}
	}
	return n
}

// TestSchedulingBeforeFirstAdvert: vrrp_rt_priority and vrrp_no_swap
// are in force on every thread before Run sends its first advert, and a
// thread the runtime starts later gets the setting on the housekeeping
// tick, once.
func TestSchedulingBeforeFirstAdvert(t *testing.T) {
	conf := "global_defs {\n  vrrp_rt_priority 10\n  vrrp_no_swap\n}\n" + instanceConf("")
	r := startRun(t, conf, Options{})
	r.advance(4 * time.Second)
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v, want MASTER", st)
	}
	ops := r.h.took(0)
	before(t, ops, "sched mlock", "advert vrid 51 prio 100")
	before(t, ops, "sched rr 10 tid 1", "advert vrid 51 prio 100")
	before(t, ops, "sched rr 10 tid 2", "advert vrid 51 prio 100")

	from := r.h.mark()
	r.h.mu.Lock()
	r.h.tids = append(r.h.tids, 3)
	r.h.mu.Unlock()
	r.advance(periodicInterval)
	var sched []string
	for _, op := range r.h.took(from) {
		if strings.HasPrefix(op, "sched") {
			sched = append(sched, op)
		}
	}
	if !slices.Equal(sched, []string{"sched rr 10 tid 3"}) {
		t.Errorf("after a new thread and a tick: %q, want only the new thread scheduled", sched)
	}
	r.stop()
}

// TestBFDSchedulingIsTheProcesss: vrrp_rt_priority applies to every
// thread of the daemon (BFD runs in its own process, none of them is
// BFD's), and bfd_rt_priority goes to the BFD process; a tick schedules
// only a new thread, and BFD's setting is not sent again.
func TestBFDSchedulingIsTheProcesss(t *testing.T) {
	conf := "global_defs {\n  vrrp_rt_priority 10\n  bfd_rt_priority 20\n}\n" +
		"bfd_instance peer {\n  neighbor_ip 192.0.2.2\n  source_ip 192.0.2.1\n}\n" + instanceConf("")
	r := startRun(t, conf, Options{})
	ops := r.h.took(0)
	if !contains(ops, "bfd sched rr 20 nice -10") || !contains(ops, "sched rr 10 tid 1") || !contains(ops, "sched rr 10 tid 2") {
		t.Fatalf("at the start, want the BFD process at bfd_rt_priority and every thread of the daemon at vrrp_rt_priority:\n\t%s", strings.Join(ops, "\n\t"))
	}
	from := r.h.mark()
	r.advance(periodicInterval)
	for _, op := range r.h.took(from) {
		if strings.Contains(op, "sched") {
			t.Errorf("a tick with no new thread scheduled %q", op)
		}
	}
	r.stop()
}

// TestMaxAutoPriority: a loop that wakes later than
// min_auto_priority_delay (1 s) for its deadline puts vigil's threads in
// SCHED_RR, one priority higher at each further late wake-up; a wake-up
// less late changes nothing.
func TestMaxAutoPriority(t *testing.T) {
	r := startRun(t, "global_defs {\n  max_auto_priority 20\n}\n"+instanceConf(""), Options{})
	late := func(by time.Duration) []string {
		t.Helper()
		r.h.mu.Lock()
		due := r.h.wait.armed
		r.h.mu.Unlock()
		if due.IsZero() {
			t.Fatal("the loop armed no deadline")
		}
		from := r.h.mark()
		r.h.setNow(due.Add(by))
		r.settle()
		var sched []string
		for _, op := range r.h.took(from) {
			if strings.HasPrefix(op, "sched") {
				sched = append(sched, op)
			}
		}
		return sched
	}
	if got := late(500 * time.Millisecond); len(got) != 0 {
		t.Errorf("woken 0.5 s late: %q, want no change", got)
	}
	if got := late(1500 * time.Millisecond); !slices.Equal(got, []string{"sched rr 1 tid 1", "sched rr 1 tid 2"}) {
		t.Errorf("woken 1.5 s late: %q, want SCHED_RR 1 on both threads", got)
	}
	if got := late(1500 * time.Millisecond); !slices.Equal(got, []string{"sched rr 2 tid 1", "sched rr 2 tid 2"}) {
		t.Errorf("woken 1.5 s late again: %q, want SCHED_RR 2", got)
	}
	r.stop()
}

// TestBackupDeadlineReadsFirst: a backup's deadline (its
// Master_Down_Timer) is given to the wait as a detection time, so that a
// pass after it reads an advert still waiting in a socket before it
// decides the master is gone (epoll.Set.Arm's detection time); a master's
// advert deadline is not, and costs no poll. Beside a master whose advert
// deadline comes first, the backup's is still given: a pass woken for the
// master's deadline that runs the backup's too must read first.
func TestBackupDeadlineReadsFirst(t *testing.T) {
	second := strings.NewReplacer("VI_1", "VI_2", "virtual_router_id 51", "virtual_router_id 52", "192.0.2.100/24", "192.0.2.101/24").Replace(instanceConf(""))
	r := startRun(t, instanceConf("")+second, Options{})
	// wait is what the loop last gave the wait, and the instances' own
	// deadlines, read on the loop.
	wait := func() (armed, detect time.Time, next [2]time.Time, st [2]vrrp.State) {
		r.call(func(time.Time) {
			for i, in := range r.d.insts {
				next[i], st[i] = in.e.Next(), in.e.State()
			}
		})
		r.h.mu.Lock()
		defer r.h.mu.Unlock()
		return r.h.wait.armed, r.h.wait.detect, next, st
	}
	armed, detect, next, st := wait()
	if st != [2]vrrp.State{vrrp.StateBackup, vrrp.StateBackup} {
		t.Fatalf("at the start: %v, want BACKUP, BACKUP", st)
	}
	if want := slices.MinFunc(next[:], time.Time.Compare); !detect.Equal(want) || !armed.Equal(want) {
		t.Errorf("two backups: armed %v, detection time %v, want both %v", armed, detect, want)
	}
	// VI_2 hears a priority 200 master every second; VI_1 hears nobody.
	adv := vridAdvert(t, 52, 200, "192.0.2.101")
	for range 5 {
		r.h.queue("eth0", inet.IPv4, adv)
		r.advance(time.Second)
	}
	r.h.queue("eth0", inet.IPv4, adv)
	r.settle()
	armed, detect, next, st = wait()
	if st != [2]vrrp.State{vrrp.StateMaster, vrrp.StateBackup} {
		t.Fatalf("after 5 s: %v, want MASTER, BACKUP", st)
	}
	if !next[0].Before(next[1]) {
		t.Fatalf("the master's advert deadline %v is not before the backup's %v", next[0], next[1])
	}
	if !armed.Equal(next[0]) || !detect.Equal(next[1]) {
		t.Errorf("a master beside a backup: armed %v, detection time %v, want %v and the backup's %v", armed, detect, next[0], next[1])
	}
	r.stop()

	r = startRun(t, instanceConf(""), Options{})
	r.advance(4 * time.Second)
	if armed, detect, _, st := wait(); st[0] != vrrp.StateMaster || armed.IsZero() || !detect.IsZero() {
		t.Errorf("a master alone (%v): armed %v, detection time %v, want none", st[0], armed, detect)
	}
	r.stop()
}

// file waits for the fake host to have written path, and returns it.
func (r *runLab) file(path string) string {
	r.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		r.h.mu.Lock()
		f, ok := r.h.files[path]
		delete(r.h.files, path)
		r.h.mu.Unlock()
		if ok {
			return f
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s not written 5 s after the signal", path)
		}
	}
}

// TestSignals: keepalived's dump signals write keepalived.data, .stats
// and .json in the dump directory with the running state, and SIGHUP
// reloads, announced before and after (sd_notify RELOADING, READY).
func TestSignals(t *testing.T) {
	reloading := make(chan bool, 2)
	r := startRun(t, lbConf, Options{DumpDir: "/dumps", OnReloading: func(done bool) { reloading <- done }})
	r.advance(4 * time.Second)

	r.h.sigs <- SigData
	data := r.file("/dumps/keepalived.data")
	for _, want := range []string{" VRRP Instance = VI_1\n", "   State = MASTER\n", "192.0.2.100/24 dev eth0 scope global set"} {
		if !strings.Contains(data, want) {
			t.Errorf("keepalived.data lacks %q:\n%s", want, data)
		}
	}
	r.h.sigs <- SigStats
	if stats := r.file("/dumps/keepalived.stats"); !strings.Contains(stats, "VRRP Instance: VI_1\n") || !strings.Contains(stats, "  Became master: 1\n") {
		t.Errorf("keepalived.stats:\n%s", stats)
	}
	r.h.sigs <- SigJSON
	var js []struct {
		Data struct {
			Iname string `json:"iname"`
			State int    `json:"state"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.file("/dumps/keepalived.json")), &js); err != nil || len(js) != 1 || js[0].Data.Iname != "VI_1" || js[0].Data.State != 2 {
		t.Errorf("keepalived.json: %+v, %v; want VI_1 in state 2 (MASTER)", js, err)
	}

	if err := os.WriteFile(r.path, []byte(strings.Replace(lbConf, "priority 100", "priority 150", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	from := r.h.mark()
	r.h.sigs <- SigReload
	for _, want := range []bool{false, true} {
		select {
		case got := <-reloading:
			if got != want {
				t.Fatalf("OnReloading(%v), want OnReloading(%v)", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no OnReloading(%v) 5 s after SIGHUP", want)
		}
	}
	r.advance(time.Second)
	if ops := r.h.took(from); !contains(ops, "advert vrid 51 prio 150") {
		t.Errorf("no advert at the reloaded priority after SIGHUP:\n\t%s", strings.Join(ops, "\n\t"))
	}
	r.stop()
}

// TestControlSocket: the control socket's commands answered by the
// running loop: status, conns, an unknown command, and reload, which
// keeps what the health checks found and rejects a broken file without
// touching the running configuration.
func TestControlSocket(t *testing.T) {
	r := startRun(t, lbConf, Options{ControlPath: "/run/vigil/test.sock"})
	var handle control.Handler
	for deadline := time.Now().Add(5 * time.Second); handle == nil; time.Sleep(time.Millisecond) {
		r.h.mu.Lock()
		handle = r.h.control
		r.h.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("Run serves no control socket")
		}
	}
	ask := func(cmd string) control.Response {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return handle(ctx, control.Request{Cmd: cmd})
	}
	// realDown reports whether status shows 198.51.100.2:80 down.
	realDown := func() bool {
		t.Helper()
		resp := ask("status")
		if resp.Status == nil {
			t.Fatalf("status: %+v", resp)
		}
		for _, s := range resp.Status.Services {
			for _, rs := range s.RealServers {
				if rs.Addr == "198.51.100.2:80" {
					return !rs.Up
				}
			}
		}
		t.Fatalf("no 198.51.100.2:80 in status %+v", resp.Status.Services)
		return false
	}

	r.advance(4 * time.Second)
	from := r.h.mark()
	if resp := ask("status"); resp.Status == nil || len(resp.Status.Instances) != 1 || resp.Status.Instances[0].State != "MASTER" {
		t.Fatalf("status: %+v, want VI_1 MASTER", resp)
	}
	// A client polling the status (a test, `watch vigil status`, doctor)
	// reads the traffic counters at most once a second: each read is an
	// nft process per counted set.
	ask("status")
	if n := count(r.h.took(from), "nft stats"); n != 1 {
		t.Errorf("two status calls in a row read the counters %d times, want once", n)
	}
	// Nor does it wait long for them: with nft slow to list the counters
	// (held here), a status answers after controlTrafficWait with the last
	// ones read, and the read goes on for the next call. Waiting for it,
	// doctor (2 s) and the e2e tests (3 s) took a loaded host's daemon
	// for stalled.
	reading, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r.h.mu.Lock()
	r.h.hold = func(op string) {
		if op == "nft stats" {
			once.Do(func() { close(reading) })
			<-release
		}
	}
	r.h.mu.Unlock()
	r.d.traffic.mu.Lock()
	r.d.traffic.at = time.Time{} // the counters are stale
	r.d.traffic.mu.Unlock()
	start := time.Now()
	resp := ask("status")
	took := time.Since(start)
	<-reading
	close(release)
	r.h.mu.Lock()
	r.h.hold = nil
	r.h.mu.Unlock()
	if resp.Status == nil || len(resp.Status.Services) == 0 || took > 3*time.Second {
		t.Errorf("status with the counters' read held: %v after %v, want the status within %v", resp.Error, took, controlTrafficWait)
	}
	r.call(func(time.Time) {
		r.d.checked(check.Event{Server: realServerID(r.d.bal, "198.51.100.2:80"), Kind: check.ServerDown, Weight: 1, Detail: "refused"})
	})
	r.settle()
	if !realDown() {
		t.Fatal("198.51.100.2:80 up in status after its check failed")
	}

	if resp := ask("conns"); resp.Error != "" || resp.Conns == nil {
		t.Errorf("conns: %+v, want an empty list", resp)
	}
	if resp := ask("restart"); !strings.Contains(resp.Error, `unknown command "restart"`) {
		t.Errorf("an unknown command: %+v", resp)
	}

	// A reload that adds a virtual server keeps the failed real server
	// down and the VIPs in place.
	if err := os.WriteFile(r.path, []byte(lbConf+strings.Replace(lbConf[strings.Index(lbConf, "virtual_server"):], " 80 {", " 8080 {", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	from = r.h.mark()
	if resp := ask("reload"); resp.Reload == nil || !resp.Reload.OK {
		t.Fatalf("reload: %+v", resp)
	}
	r.advance(time.Second)
	if !realDown() {
		t.Error("198.51.100.2:80 up after a reload: the reload lost what its checks found")
	}
	if ops := r.h.took(from); contains(ops, "del 192.0.2.100") {
		t.Errorf("a reload that added a virtual server released the VIP:\n\t%s", strings.Join(ops, "\n\t"))
	}

	// A broken file is rejected, the running configuration kept.
	if err := os.WriteFile(r.path, []byte("vrrp_instance VI_1 {\n  virtual_router_id 300\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if resp := ask("reload"); resp.Reload == nil || resp.Reload.OK || len(resp.Reload.Errors) == 0 {
		t.Fatalf("reload of a broken file: %+v, want rejected with errors", resp)
	}
	if resp := ask("status"); resp.Status == nil || resp.Status.Instances[0].State != "MASTER" || resp.Status.LastReload == nil || resp.Status.LastReload.OK {
		t.Errorf("status after a rejected reload: %+v", resp)
	}
	r.stop()
}

// TestRunSteadyStateAllocations: Run's loop allocates nothing per advert
// in the steady state, received (a backup hearing its master, each advert
// its own wake-up) or sent (a master's advert timer), so the
// allocation-free socket and engine (TestSocketAgainstConn,
// TestSteadyStateAllocations in vrrp) are not undone by the loop around
// them: its wait, clock, bridge hand-offs and Ready handling.
func TestRunSteadyStateAllocations(t *testing.T) {
	r := startRun(t, instanceConf(""), Options{})
	h := r.h
	const n = 200
	// quiesced spins (without allocating, unlike settle) until the loop
	// is blocked with nothing to do.
	quiesced := func() {
		for i := 0; ; i++ {
			if h.loopIdle() {
				return
			}
			if i > 50_000_000 {
				panic("the loop never went idle")
			}
			runtime.Gosched()
		}
	}
	allocs := func(f func()) float64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return float64(after.Mallocs-before.Mallocs) / n
	}

	// Backup: a priority 200 master's adverts every second.
	p := peerAdvert(t, 200)
	conn := h.socks[0]
	h.mu.Lock()
	conn.in = make([]netio.Packet, 0, n)
	h.mu.Unlock()
	step := func() {
		h.mu.Lock()
		conn.in = append(conn.in[:0], p) // in the capacity made above
		h.mu.Unlock()
		h.setNow(h.now().Add(time.Second))
		quiesced()
	}
	step() // warm up
	if got := allocs(func() {
		for range n {
			step()
		}
	}); got > 0.05 {
		t.Errorf("%.2f allocations per advert received, want 0", got)
	}
	if st := r.state(); st != vrrp.StateBackup {
		t.Fatalf("state %v while the master advertises, want BACKUP", st)
	}

	// Master: its advert timer, once a second.
	r.advance(4 * time.Second)
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v, want MASTER", st)
	}
	r.advance(6 * time.Second) // the GARP refresh and the start's one-off work
	h.mu.Lock()
	h.quiet = true
	sent := h.sent
	h.mu.Unlock()
	tick := func() {
		h.mu.Lock()
		due := h.wait.armed
		h.mu.Unlock()
		h.setNow(due)
		quiesced()
	}
	tick()
	if got := allocs(func() {
		for range n {
			tick()
		}
	}); got > 0.05 {
		t.Errorf("%.2f allocations per advert sent, want 0", got)
	}
	h.mu.Lock()
	sent = h.sent - sent
	h.quiet = false
	h.mu.Unlock()
	if sent < n {
		t.Errorf("%d adverts sent in %d deadlines, want one each", sent, n+1)
	}
	r.stop()
}

// TestBFDDontRespawn: keepalived -R (--dont-respawn) reaches the BFD
// runner (link.Process then does not start a dead BFD process again), and
// when the runner reports the BFD process gone for good
// (link.ErrNotRespawned) the daemon stops as on SIGTERM: its master
// resigns with a priority 0 advert and releases its VIPs, and Run returns,
// as keepalived stops when its BFD child dies under -R. Without -R the
// runner restarts the process itself.
func TestBFDDontRespawn(t *testing.T) {
	conf := "bfd_instance peer {\n  neighbor_ip 192.0.2.2\n  source_ip 192.0.2.1\n}\n" +
		strings.Replace(instanceConf(""), "state BACKUP", "state MASTER", 1)
	bfdOf := func(r *runLab) *fakeBFD {
		r.h.mu.Lock()
		defer r.h.mu.Unlock()
		return r.h.bfd
	}
	r := startRun(t, conf, Options{})
	if b := bfdOf(r); b == nil || b.noRespawn {
		t.Fatalf("without -R the BFD runner is %+v, want one that respawns", b)
	}
	r.stop()

	r = startRun(t, conf, Options{DontRespawn: true})
	b := bfdOf(r)
	if b == nil || !b.noRespawn {
		t.Fatalf("with -R the BFD runner is %+v, want one that does not respawn", b)
	}
	r.advance(4 * time.Second) // MASTER
	from := r.h.mark()
	b.exit <- fmt.Errorf("%w: the BFD process exited", link.ErrNotRespawned)
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		r.done <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatalf("the daemon runs on after its BFD process died under --dont-respawn:\n%s", stacks())
	}
	before(t, r.h.took(from), "advert vrid 51 prio 0", "del 192.0.2.100/24")
}

// TestTickSweepsFlows: the 2 s tick runs while the data plane watches
// real servers that left their service with connections established (the
// count an apply and each sweep report), and each tick has it sweep their
// reset flows off the loop (nft's Sweep); once none is left, the tick
// stops, and with it the sweeps.
func TestTickSweepsFlows(t *testing.T) {
	r := startRun(t, lbConf, Options{})
	sweeps := func() int {
		r.h.mu.Lock()
		defer r.h.mu.Unlock()
		return r.h.asked["nft sweep"]
	}
	tickOn := func() bool {
		var on bool
		r.call(func(time.Time) { on = r.d.periodic.on })
		return on
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5 s", what)
			}
		}
	}
	r.advance(4 * time.Second)
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v, want MASTER", st)
	}
	r.advance(2 * periodicInterval)
	if tickOn() || sweeps() != 0 {
		t.Fatalf("tick %v and %d sweeps with no real server removed, want no tick", tickOn(), sweeps())
	}

	r.h.mu.Lock()
	r.h.lingering = 2 // the next apply reports two servers watched
	r.h.mu.Unlock()
	r.call(func(time.Time) {
		r.d.checked(check.Event{Server: realServerID(r.d.bal, "198.51.100.2:80"), Kind: check.ServerDown, Weight: 1, Detail: "refused"})
	})
	waitFor("the tick started after an apply left servers watched", tickOn)
	for want := 1; want <= 2; want++ {
		r.advance(periodicInterval)
		waitFor(fmt.Sprintf("sweep %d", want), func() bool { return sweeps() == want })
	}
	waitFor("the tick stopped once no server was watched", func() bool { return !tickOn() })
	r.advance(2 * periodicInterval)
	if n := sweeps(); n != 2 {
		t.Errorf("%d sweeps, want 2 (none once nothing is watched)", n)
	}
	r.stop()
}

// TestCountSpacedByItsCost: the lc/wlc connection count, which reads the
// whole conntrack table, runs at a tick once pace.Share × the last
// count's duration has passed since it began, and not before: a count
// that took 100 ms is not made again for 2 s.
func TestCountSpacedByItsCost(t *testing.T) {
	r := startRun(t, strings.Replace(lbConf, "lb_algo rr", "lb_algo wlc", 1), Options{})
	counts := func() int {
		r.h.mu.Lock()
		defer r.h.mu.Unlock()
		return r.h.asked["nft conns"]
	}
	last := func() (next time.Time, took time.Duration, counting bool) {
		r.call(func(time.Time) {
			next, took, counting = r.d.bal.countPace.Next(), r.d.bal.countPace.Took(), r.d.bal.counting
		})
		return
	}
	r.h.mu.Lock()
	r.h.connsDelay = 100 * time.Millisecond
	r.h.mu.Unlock()
	r.advance(4 * time.Second)
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v, want MASTER", st)
	}
	// Ticks until a count of 100 ms is back.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, took, counting := last(); took >= 100*time.Millisecond && !counting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no count back within 10 s (%d made)", counts())
		}
		r.advance(periodicInterval)
		time.Sleep(10 * time.Millisecond)
	}
	n := counts()
	began := time.Now()
	for range 3 {
		r.advance(periodicInterval)
	}
	if got := counts(); got != n && time.Since(began) < pace.Share*90*time.Millisecond {
		t.Errorf("%d counts after three ticks right after a 100 ms count, want %d: the next waits %d times its duration", got, n, pace.Share)
	}
	next, took, _ := last()
	time.Sleep(time.Until(next.Add(5 * time.Millisecond)))
	r.advance(periodicInterval)
	for deadline := time.Now().Add(5 * time.Second); counts() == n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no count at a tick %v after the next count was due (the last took %v)", time.Since(next), took)
		}
	}
	r.stop()
}
