package daemon

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vigil/addr"
	"vigil/bfd"
	"vigil/bfd/link"
	"vigil/bgp"
	"vigil/bgp/speaker"
	"vigil/check"
	"vigil/config"
	"vigil/control"
	"vigil/ctsync"
	"vigil/dataplane/nft"
	"vigil/internal/beat"
	"vigil/internal/epoll"
	"vigil/internal/inet"
	"vigil/lb"
	"vigil/netio"
	"vigil/notify"
	"vigil/track"
)

// fakeHost stands for the OS behind every edge of edges.go. It records
// each call that changes the host, in order, as one line ("advert VI_1
// prio 100", "add 192.0.2.100/24", "nft apply ...", "noaccept ..."), so a
// test reads the order the daemon did things in. It needs neither root nor
// a namespace, and opens no kernel object: its clock is virtual, its wait
// (fakeWait) returns the loop's events in that time, and its advert
// sockets are queues a test fills (queue).
type fakeHost struct {
	t  *testing.T
	mu sync.Mutex
	// beatsOn lets the daemon start advert threads (fakeBeat); beats are
	// the ones it started.
	beatsOn bool
	beats   []*fakeBeat
	// bfd is the BFD runner the daemon made last (nil: none).
	bfd *fakeBFD
	// changed is signalled (on mu) whenever the clock moves, an advert is
	// queued, the loop is woken or it starts waiting: fakeWait and the
	// tests that wait for the loop to be idle block on it.
	changed *sync.Cond
	clock   time.Time
	wait    fakeWait
	tickers []*fakeTicker
	// lingering is the fake data plane's count of removed real servers
	// it watches; each Sweep lowers it by one.
	lingering int
	// connsDelay is how long the fake data plane's Conns takes.
	connsDelay time.Duration
	nextFd     int
	// sent counts the adverts sent; with quiet they are not recorded in
	// ops (which allocates: TestRunSteadyStateAllocations).
	sent  int
	quiet bool
	// tids are the process's threads fakeThreads lists.
	tids []int
	// sigs is what signals delivers: a test sends a signal on it.
	sigs chan os.Signal
	// files are what writeFile wrote, by path.
	files map[string]string
	// control is the control socket's handler once Run serves it.
	control control.Handler
	// ops is every host-changing call, in order.
	ops []string
	// hold, if set, is called (outside mu) before each call that changes
	// the host, with that call's line; it may block to hold the worker.
	hold func(op string)
	// links are the interfaces and whether they are up; any other name is
	// down.
	links map[string]bool
	// linkCh is what watchLinks reports: a test sends a change on it.
	linkCh chan addr.LinkState
	socks  []*fakeConn
	// servers are what the health-check runner was last started with,
	// checkStarts how many times it was started.
	servers     []check.Server
	checkStarts int
	// asked counts the kernel lookups a load and a start make, by
	// "linkUp IFNAME" and "ifaceAddrs IFNAME".
	asked map[string]int
}

func newFakeHost(t *testing.T) *fakeHost {
	h := &fakeHost{t: t, links: map[string]bool{"eth0": true, "eth1": true}, linkCh: make(chan addr.LinkState),
		clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nextFd: 100, tids: []int{1, 2},
		sigs: make(chan os.Signal, 4), files: map[string]string{}, asked: map[string]int{}}
	h.changed = sync.NewCond(&h.mu)
	h.wait.h = h
	return h
}

// now is the virtual clock.
func (h *fakeHost) now() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clock
}

// setNow moves the virtual clock to t, firing the tickers it passes.
func (h *fakeHost) setNow(t time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clock = t
	for _, tk := range h.tickers {
		for tk.on && !tk.next.After(t) {
			select {
			case tk.c <- tk.next:
			default: // a time.Ticker drops ticks a slow reader missed
			}
			tk.next = tk.next.Add(tk.period)
		}
	}
	h.changed.Broadcast()
}

// nextEvent is the earliest time after the clock at which something is
// due: the loop's armed deadline or a running ticker's tick; zero if none.
func (h *fakeHost) nextEvent() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.wait.armed
	if !t.After(h.clock) {
		t = time.Time{}
	}
	for _, tk := range h.tickers {
		if tk.on && (t.IsZero() || tk.next.Before(t)) {
			t = tk.next
		}
	}
	return t
}

// do records op after hold let it through.
func (h *fakeHost) do(format string, args ...any) {
	op := fmt.Sprintf(format, args...)
	h.mu.Lock()
	hold := h.hold
	h.mu.Unlock()
	if hold != nil {
		hold(op)
	}
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.mu.Unlock()
}

// took returns the calls recorded from index from on.
func (h *fakeHost) took(from int) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops[from:])
}

func (h *fakeHost) mark() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ops)
}

func (h *fakeHost) edges() edges {
	return edges{
		now: h.now,
		newTicker: func(d time.Duration) ticker {
			h.mu.Lock()
			defer h.mu.Unlock()
			tk := &fakeTicker{h: h, c: make(chan time.Time, 1), period: d, next: h.clock.Add(d), on: true}
			h.tickers = append(h.tickers, tk)
			return tk
		},
		threads: fakeThreads{h},
		signals: func(...os.Signal) (<-chan os.Signal, func()) { return h.sigs, func() {} },
		writeFile: func(path string, write func(io.Writer) error) error {
			var b strings.Builder
			if err := write(&b); err != nil {
				return err
			}
			h.do("write %s", path)
			h.mu.Lock()
			h.files[path] = b.String()
			h.mu.Unlock()
			return nil
		},
		serveControl: func(ctx context.Context, _ string, handler control.Handler, _ *slog.Logger) error {
			h.mu.Lock()
			h.control = handler
			h.mu.Unlock()
			<-ctx.Done()
			return nil
		},
		newWait: func() (loopWait, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.wait = fakeWait{h: h, fds: map[int]bool{}}
			return &h.wait, nil
		},
		openSocket: func(ifname string, fam inet.Family, opts netio.Options) (advertConn, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.nextFd++
			c := &fakeConn{h: h, fd: h.nextFd, name: ifname, fam: fam}
			h.socks = append(h.socks, c)
			return c, nil
		},
		startBeat: func(conn advertConn, payloads [][]byte, src netip.Addr, dsts []netip.Addr, interval time.Duration, first, lease time.Time) (advertBeat, error) {
			h.mu.Lock()
			on := h.beatsOn
			h.mu.Unlock()
			if !on {
				return nil, errNoBeat
			}
			b := &fakeBeat{h: h, vrid: payloads[0][1], prio: payloads[0][2], first: first, every: interval, lease: lease}
			h.mu.Lock()
			h.beats = append(h.beats, b)
			h.mu.Unlock()
			h.do("beat start vrid %d prio %d every %v", b.vrid, b.prio, interval)
			return b, nil
		},
		openAnnouncer: func(ifname string) (announcer, error) { return fakeAnnouncer{h, ifname}, nil },
		addrs:         func() addrManager { return fakeAddrs{h} },
		openDataplane: func(*slog.Logger) (dataplane, error) { return fakeDataplane{h}, nil },
		openAcceptFilter: func() (acceptFilter, error) {
			return &fakeFilter{h: h}, nil
		},
		newChecks: func(servers []check.Server, _ check.RunnerOptions) (runner, error) {
			h.mu.Lock()
			h.servers = servers
			h.checkStarts++
			h.mu.Unlock()
			return idle{}, nil
		},
		newTrackers: func(track.Config, func(track.Event)) (runner, error) { return idle{}, nil },
		newSpeaker: func(cfg speaker.Config, _ *slog.Logger) bgpSpeaker {
			return &fakeSpeaker{h: h, cfg: cfg}
		},
		newSyncer: func(ctsync.Config) (syncer, error) { return fakeSyncer{h}, nil },
		newBFD: func(_ *slog.Logger, noRespawn bool) bfdRunner {
			b := &fakeBFD{h: h, up: map[string]bool{}, noRespawn: noRespawn, exit: make(chan error, 1)}
			h.mu.Lock()
			h.bfd = b
			h.mu.Unlock()
			return b
		},
		newNotifier: func([]notify.FifoConfig, *slog.Logger, func(notify.Result)) notifier {
			return fakeNotifier{h}
		},
		linkUp: func(ifname string) (bool, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.asked["linkUp "+ifname]++
			return h.links[ifname], nil
		},
		watchLinks: func(ctx context.Context, _ func(error)) (<-chan addr.LinkState, error) {
			return h.linkCh, nil
		},
		neighbours: func([]netip.Addr) (map[netip.Addr][6]byte, error) { return nil, nil },
		ifaceAddrs: func(ifname string) ([]netip.Prefix, error) {
			h.mu.Lock()
			h.asked["ifaceAddrs "+ifname]++
			h.mu.Unlock()
			return []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("fe80::1/64")}, nil
		},
		routeDevice: testLookups.routeDevice,
		credential:  testLookups.credential,
		routeSource: func(netip.Addr) (netip.Addr, error) { return netip.MustParseAddr("192.0.2.1"), nil },
	}
}

// fakeConn is an advert socket: Recv takes what the test queued
// (fakeHost.queue), and fakeWait reports it readable meanwhile. Its
// descriptor is a number no kernel object has.
type fakeConn struct {
	h      *fakeHost
	fd     int
	name   string
	fam    inet.Family
	in     []netio.Packet // on h.mu
	closed bool           // on h.mu
}

func (c *fakeConn) Fd() int          { return c.fd }
func (c *fakeConn) JoinGroup() error { return nil }
func (c *fakeConn) Close() error {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.closed = true
	return nil
}
func (c *fakeConn) Drained() bool {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	return len(c.in) == 0
}
func (c *fakeConn) Recv(buf []byte) (netio.Packet, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if len(c.in) == 0 {
		return netio.Packet{}, netio.ErrWouldBlock
	}
	p := c.in[0]
	c.in = c.in[1:]
	p.Data = buf[:copy(buf, p.Data)]
	return p, nil
}
func (c *fakeConn) Send(p []byte, src, dst netip.Addr) error {
	c.h.mu.Lock()
	c.h.sent++
	quiet := c.h.quiet
	c.h.mu.Unlock()
	if !quiet {
		// A VRRP header: version and type, VRID, priority.
		c.h.do("advert vrid %d prio %d", p[1], p[2])
	}
	return nil
}

// queue hands p to the advert socket of ifname and fam, as the kernel
// would; the loop reads it when fakeWait reports the socket ready.
func (h *fakeHost) queue(ifname string, fam inet.Family, p netio.Packet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.socks {
		if c.name == ifname && c.fam == fam && h.wait.fds[c.fd] {
			c.in = append(c.in, p)
			h.changed.Broadcast()
			return
		}
	}
	h.t.Fatalf("no advert socket on %s %v", ifname, fam)
}

// fakeWait is the loop's wait (loopWait) in virtual time: Wait returns
// the wake-up once something was posted, the timer once the virtual clock
// reached the armed deadline, and the sockets with queued adverts; with
// none of them it blocks until the clock moves, an advert is queued or the
// bridge posts. Its state is on fakeHost.mu.
type fakeWait struct {
	h      *fakeHost
	fds    map[int]bool
	armed  time.Time
	detect time.Time // Arm's detection time
	woken  bool
	closed bool
	// idle: the loop is blocked in Wait with nothing to return.
	idle bool
	evs  []unix.EpollEvent
}

func (w *fakeWait) Add(fd, tag int) error {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	w.fds[fd] = true
	return nil
}

func (w *fakeWait) Del(fd int) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	delete(w.fds, fd)
}

// Arm records the detection time too (TestBackupDeadlineReadsFirst); the
// fake always passes the sockets with queued adverts beside the timer.
func (w *fakeWait) Arm(due, detect time.Time) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	w.armed = due
	w.detect = detect
}

func (w *fakeWait) TimerFired() {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	w.armed = time.Time{}
}

func (w *fakeWait) Wake() {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	w.woken = true
	w.h.changed.Broadcast()
}

func (w *fakeWait) Close() {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	w.closed = true
	w.h.changed.Broadcast()
}

// Run is epoll.Set.Run's contract in virtual time: every pass waits
// (quiet changes nothing here).
func (w *fakeWait) Run(pass func([]unix.EpollEvent) (quiet, stop bool)) error {
	for {
		evs, err := w.Wait()
		if err != nil {
			return err
		}
		if _, stop := pass(evs); stop {
			return nil
		}
	}
}

func (w *fakeWait) Wait() ([]unix.EpollEvent, error) {
	h := w.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		w.evs = w.evs[:0]
		if w.closed {
			return nil, errors.New("fakeWait: closed")
		}
		if !w.armed.IsZero() && !h.clock.Before(w.armed) {
			w.evs = append(w.evs, unix.EpollEvent{Fd: epoll.TagTimer})
		}
		if w.woken {
			w.evs = append(w.evs, unix.EpollEvent{Fd: epoll.TagWake})
			w.woken = false // taken by the pass, as epoll.Set does
		}
		for _, c := range h.socks {
			if len(c.in) > 0 && w.fds[c.fd] {
				w.evs = append(w.evs, unix.EpollEvent{Fd: int32(c.fd)})
			}
		}
		if len(w.evs) > 0 {
			w.idle = false
			return w.evs, nil
		}
		w.idle = true
		h.changed.Broadcast()
		h.changed.Wait()
	}
}

// fakeTicker is the housekeeping tick in virtual time: setNow fires it.
type fakeTicker struct {
	h      *fakeHost
	c      chan time.Time
	period time.Duration
	next   time.Time
	on     bool
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Stop() {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	t.on = false
}
func (t *fakeTicker) Reset(d time.Duration) {
	t.h.mu.Lock()
	defer t.h.mu.Unlock()
	t.on, t.period, t.next = true, d, t.h.clock.Add(d)
}

// fakeThreads are the threads in h.tids; it records the scheduling given
// to each ("sched rr 10 tid 1", "sched nice -5 tid 2", "sched mlock").
type fakeThreads struct{ h *fakeHost }

func (f fakeThreads) LockMemory() error { f.h.do("sched mlock"); return nil }
func (f fakeThreads) List() ([]int, error) {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	return slices.Clone(f.h.tids), nil
}
func (f fakeThreads) SetRT(tid, prio int) error {
	f.h.do("sched rr %d tid %d", prio, tid)
	return nil
}
func (f fakeThreads) SetNice(tid, nice int) error {
	f.h.do("sched nice %d tid %d", nice, tid)
	return nil
}

type fakeAddrs struct{ h *fakeHost }

func (a fakeAddrs) Add(v addr.VIP) error    { a.h.do("add %s", v.Prefix); return nil }
func (a fakeAddrs) Remove(v addr.VIP) error { a.h.do("del %s", v.Prefix); return nil }
func (a fakeAddrs) RemoveStale([]addr.VIP) ([]addr.VIP, error) {
	a.h.do("remove stale")
	return nil, nil
}
func (a fakeAddrs) AddRoute(r addr.Route) error    { a.h.do("add route %s", r.Dst); return nil }
func (a fakeAddrs) RemoveRoute(r addr.Route) error { a.h.do("del route %s", r.Dst); return nil }
func (a fakeAddrs) AddRule(addr.Rule) error        { a.h.do("add rule"); return nil }
func (a fakeAddrs) RemoveRule(addr.Rule) error     { a.h.do("del rule"); return nil }
func (a fakeAddrs) EnsureVMAC(parent string, vrid uint8, fam inet.Family, name string) (string, error) {
	a.h.do("vmac %s", name)
	a.h.mu.Lock()
	a.h.links[name] = a.h.links[parent] // up with its parent, as addr sets it
	a.h.mu.Unlock()
	return name, nil
}
func (a fakeAddrs) RemoveVMAC(name string) error { a.h.do("del vmac %s", name); return nil }
func (a fakeAddrs) RestoreSysctls() error        { return nil }

// fakeAnnouncer records "garp 192.0.2.100 dev eth0".
type fakeAnnouncer struct {
	h   *fakeHost
	dev string
}

func (a fakeAnnouncer) Announce(ip netip.Addr) error { a.h.do("garp %s dev %s", ip, a.dev); return nil }
func (a fakeAnnouncer) Close() error                 { return nil }

// fakeDataplane records an apply as the services it makes active:
// "nft apply [TCP:192.0.2.100:80]".
type fakeDataplane struct{ h *fakeHost }

func (d fakeDataplane) Apply(_ context.Context, des lb.Desired) error {
	var active []string
	for _, s := range des.Services {
		if s.Active {
			active = append(active, s.Name)
		}
	}
	d.h.do("nft apply %v", active)
	return nil
}
func (d fakeDataplane) Flush(context.Context) error { d.h.do("nft flush"); return nil }
func (d fakeDataplane) Close() error                { return nil }
func (d fakeDataplane) Conns(context.Context) ([]nft.Conn, error) {
	d.h.mu.Lock()
	d.h.asked["nft conns"]++
	delay := d.h.connsDelay
	d.h.mu.Unlock()
	time.Sleep(delay)
	return nil, nil
}
func (d fakeDataplane) CountConns(ctx context.Context) (map[string]map[netip.AddrPort]int, error) {
	_, err := d.Conns(ctx) // counted as asked; the fake has no connections
	return map[string]map[netip.AddrPort]int{}, err
}
func (d fakeDataplane) Sweep(context.Context) (int, error) {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	d.h.asked["nft sweep"]++
	d.h.lingering = max(d.h.lingering-1, 0)
	return d.h.lingering, nil
}
func (d fakeDataplane) Lingering() int {
	d.h.mu.Lock()
	defer d.h.mu.Unlock()
	return d.h.lingering
}
func (d fakeDataplane) Stats(context.Context) (map[string]map[netip.AddrPort]nft.Stats, error) {
	d.h.do("nft stats")
	return map[string]map[netip.AddrPort]nft.Stats{}, nil
}

type fakeFilter struct {
	h    *fakeHost
	mu   sync.Mutex
	drop []netip.Addr
}

func (f *fakeFilter) Set(_ context.Context, addrs []netip.Addr) error {
	f.h.do("noaccept %v", addrs)
	f.mu.Lock()
	f.drop = addrs
	f.mu.Unlock()
	return nil
}
func (f *fakeFilter) Clear(context.Context) error { f.h.do("noaccept clear"); return nil }
func (f *fakeFilter) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprint(f.drop)
}

// fakeSpeaker is a bgp_instance's speaker without the helper process or
// sessions; it records the routes it is given ("bgp EDGE set
// [192.0.2.10/32]"), its syncs and its stop.
type fakeSpeaker struct {
	h   *fakeHost
	cfg speaker.Config
}

func (s *fakeSpeaker) Config() speaker.Config      { return s.cfg }
func (s *fakeSpeaker) Start(context.Context) error { return nil }
func (s *fakeSpeaker) Run(ctx context.Context)     { <-ctx.Done() }
func (s *fakeSpeaker) Sessions() []speaker.Session {
	var out []speaker.Session
	for _, n := range s.cfg.Neighbors {
		out = append(out, speaker.Session{Neighbor: n.Addr.String(), RemoteAS: n.RemoteAS, State: "Idle"})
	}
	return out
}
func (s *fakeSpeaker) Stop()                          { s.h.do("bgp %s stop", s.cfg.Name) }
func (s *fakeSpeaker) Sync(ctx context.Context) error { s.h.do("bgp %s sync", s.cfg.Name); return nil }
func (s *fakeSpeaker) Set(routes []bgp.Route) {
	var ps []string
	for _, r := range routes {
		ps = append(ps, r.Prefix.String())
	}
	s.h.do("bgp %s set %v", s.cfg.Name, ps)
}
func (s *fakeSpeaker) SetNeighbors(_ context.Context, ns []speaker.Neighbor) error {
	var as []string
	for _, n := range ns {
		as = append(as, n.Addr.String())
	}
	s.h.do("bgp %s neighbors %v", s.cfg.Name, as)
	return nil
}
func (s *fakeSpeaker) SetEnabled(_ context.Context, a netip.Addr, enabled bool, _ string) error {
	s.h.do("bgp %s neighbor %v enabled %v", s.cfg.Name, a, enabled)
	return nil
}

// fakeSyncer is connection sync without sockets or conntrack: it records
// the installs of the synced copy and the switches to sending.
type fakeSyncer struct{ h *fakeHost }

func (s fakeSyncer) Start(context.Context) error  { return nil }
func (s fakeSyncer) Close() error                 { return nil }
func (s fakeSyncer) SetServices([]ctsync.Service) {}
func (s fakeSyncer) SetMaster(m bool)             { s.h.do("ctsync master %v", m) }
func (s fakeSyncer) Synced() <-chan struct{}      { return make(chan struct{}) }
func (s fakeSyncer) RequestFull()                 {}
func (s fakeSyncer) Status() ctsync.Status        { return ctsync.Status{} }
func (s fakeSyncer) Install(context.Context) (int, error) {
	s.h.do("ctsync install")
	return 0, nil
}

// fakeBFD holds sessions without sockets: a test sets up and posts the
// changes (Daemon.bfdChanged).
type fakeBFD struct {
	h  *fakeHost
	mu sync.Mutex
	up map[string]bool
	// noRespawn is what the daemon asked for; a test ends Run with exit
	// (link.ErrNotRespawned: the BFD process died under --dont-respawn).
	noRespawn bool
	exit      chan error
}

func (b *fakeBFD) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-b.exit:
		return err
	}
}
func (b *fakeBFD) Configure([]link.Session) error { return nil }
func (b *fakeBFD) SetScheduling(s link.Scheduling) error {
	b.h.do("bfd sched rr %d nice %d", s.RTPriority, s.Nice)
	return nil
}
func (b *fakeBFD) Subscribe(string, func(link.Event)) func() { return func() {} }
func (b *fakeBFD) SendErrors() map[string]string             { return nil }
func (b *fakeBFD) Port(string) (uint16, bool)                { return 0, false }
func (b *fakeBFD) Status() ([]bfd.Status, map[string]uint64, link.Lateness) {
	return nil, nil, link.Lateness{}
}
func (b *fakeBFD) Up(name string) (up, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	up, ok = b.up[name]
	return up, ok
}

// fakeNotifier runs no script and writes no FIFO: it records each event
// ("notify VI_1 MASTER", "notify group G1 MASTER") when the daemon hands
// it over, and each other script with its command line ("exec
// 198.51.100.1:80 notify_up /bin/up arg").
type fakeNotifier struct{ h *fakeHost }

func (n fakeNotifier) Notify(ev notify.Event, _ notify.Scripts) {
	if ev.Scope == notify.Group {
		n.h.do("notify group %s %s", ev.Name, ev.State)
		return
	}
	n.h.do("notify %s %s", ev.Name, ev.State)
}
func (n fakeNotifier) Exec(orderKey, keyword string, c notify.Command) {
	n.h.do("exec %s %s %s", orderKey, keyword, strings.Join(c.Argv, " "))
}
func (n fakeNotifier) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// idle runs no check and no tracker: a test hands the daemon their
// results (Daemon.checked, Daemon.tracked).
type idle struct{}

func (idle) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// lab is a Daemon on a fakeHost, driven by the test as its loop would be,
// in virtual time: no root, no namespace, no sleeping.
type lab struct {
	t    *testing.T
	d    *Daemon
	h    *fakeHost
	now  time.Time
	path string
}

// newLab starts the daemon on conf as Run would, up to its loop, with the
// slow work done in line (d.work nil) so that the recorded order is exact.
func newLab(t *testing.T, conf string) *lab {
	t.Helper()
	path := t.TempDir() + "/keepalived.conf"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{ConfigFile: path, Env: func() config.Env { return config.Env{ReadFile: os.ReadFile} },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	h := newFakeHost(t)
	d.host = h.edges()
	l := &lab{t: t, d: d, h: h, now: h.now(), path: path}
	cfg, specs, err := d.load()
	if err != nil {
		t.Fatal(err)
	}
	d.prepare(cfg, specs)
	if d.poll, err = newPoller(d.host.newWait); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.runCtx = ctx
	var bg sync.WaitGroup
	d.startNotifier(ctx, &bg)
	if err := d.startEngines(ctx, l.now, specs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer bg.Wait()
		if d.insts != nil || d.bal != nil {
			d.stopAll(l.now)
		}
		cancel()
		d.stopTracking()
		d.stopBFD()
		d.stopSync()
		d.poll.Close()
	})
	l.turn()
	return l
}

// turn runs one turn of the loop and waits until the load balancer's
// applier has put what the turn pushed into the (fake) kernel.
func (l *lab) turn() {
	l.t.Helper()
	l.d.turn()
	b := l.d.bal
	if b == nil {
		return
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b.state.mu.Lock()
		gen := b.state.gen
		b.state.mu.Unlock()
		if gen >= b.lastGen {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("the applier did not apply generation %d (at %d)", b.lastGen, gen)
		}
	}
}

// advance moves virtual time by dt, in steps of at most 100 ms, running the
// engines' timers and a loop turn at each.
func (l *lab) advance(dt time.Duration) {
	l.t.Helper()
	for end := l.now.Add(dt); l.now.Before(end); {
		l.now = l.now.Add(min(100*time.Millisecond, end.Sub(l.now)))
		l.h.setNow(l.now)
		for _, in := range l.d.insts {
			in.e.Advance(l.now)
		}
		l.turn()
	}
}

// rewrite replaces the configuration file, for a reload.
func (l *lab) rewrite(conf string) {
	l.t.Helper()
	if err := os.WriteFile(l.path, []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// before fails the test unless the first op starting with first comes
// before the first op starting with then, both present.
func before(t *testing.T, ops []string, first, then string) {
	t.Helper()
	i := slices.IndexFunc(ops, func(op string) bool { return strings.HasPrefix(op, first) })
	j := slices.IndexFunc(ops, func(op string) bool { return strings.HasPrefix(op, then) })
	switch {
	case i < 0:
		t.Errorf("no %q in\n\t%s", first, strings.Join(ops, "\n\t"))
	case j < 0:
		t.Errorf("no %q in\n\t%s", then, strings.Join(ops, "\n\t"))
	case i > j:
		t.Errorf("%q came after %q:\n\t%s", first, then, strings.Join(ops, "\n\t"))
	}
}

// TestEveryEdgeIsSet: hostEdges and the fake fill in every edge, so a new
// one forgotten on either side fails here rather than as a nil call in a
// run or a test.
func TestEveryEdgeIsSet(t *testing.T) {
	for name, e := range map[string]edges{"hostEdges": hostEdges(), "fakeHost": newFakeHost(t).edges()} {
		v := reflect.ValueOf(e)
		for i := range v.NumField() {
			if v.Field(i).IsNil() {
				t.Errorf("%s: the edge %s is not set", name, v.Type().Field(i).Name)
			}
		}
	}
}

// TestHostOnlyThroughEdges: outside edges.go and host_linux.go, the
// daemon calls nothing that reaches the host (the OS packages, vigil's
// packages that own sockets, netlink, nft or processes, and the
// constructors of notify, track and check that start them), so that every
// OS edge is one the fakeHost stands for. A call found here goes behind
// an edge (edges.go) instead; a pure function of those packages goes in
// pure below.
func TestHostOnlyThroughEdges(t *testing.T) {
	host := map[string]bool{
		"os": true, "os/signal": true, "os/exec": true, "syscall": true, "golang.org/x/sys/unix": true, "net": true,
		"vigil/addr": true, "vigil/netio": true, "vigil/acceptmode": true, "vigil/dataplane/nft": true,
		"vigil/internal/epoll": true, "vigil/ctsync": true, "vigil/bfd/link": true, "vigil/bgp/speaker": true,
		"vigil/internal/drpath": true, "vigil/internal/proc": true, "vigil/internal/hostenv": true,
	}
	// Functions of other packages that start host work.
	starts := map[string]bool{
		"vigil/notify.New": true, "vigil/notify.OpenFifo": true, "vigil/notify.LookupCredential": true,
		"vigil/track.New": true, "vigil/check.NewRunner": true,
	}
	// Pure functions (and conversions) of the host packages.
	pure := map[string]bool{
		"vigil/addr.ParseScope": true, "vigil/addr.ParseRoute": true, "vigil/addr.ParseRule": true,
		"os.Getpid": true, "syscall.Signal": true, "vigil/bgp/speaker.Unchanged": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no source files: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "edges.go" || f == "host_linux.go" {
			continue
		}
		fset := token.NewFileSet()
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		imports := map[string]string{} // local name → path
		for _, im := range af.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			name := path[strings.LastIndex(path, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imports[name] = path
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok || imports[pkg.Name] == "" {
				return true
			}
			fn := imports[pkg.Name] + "." + sel.Sel.Name
			if (host[imports[pkg.Name]] && !pure[fn]) || starts[fn] {
				t.Errorf("%s: calls %s: the host only through an edge (edges.go)", fset.Position(call.Pos()), fn)
			}
			return true
		})
	}
}

// fakeBeat is an advert thread on the fake clock: it has sent one advert
// at first and one every interval after, up to its lease or its Stop.
type fakeBeat struct {
	h          *fakeHost
	vrid, prio byte
	first      time.Time
	every      time.Duration
	lease      time.Time
	stopped    time.Time // zero while it runs
	dead       bool      // a test made it stop by itself
	bad        bool      // a test made its source check fail
}

func (b *fakeBeat) Verify() error {
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	if b.bad {
		return errors.New("fake: the source is gone")
	}
	return nil
}

func (b *fakeBeat) Renew(until time.Time) {
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	b.lease = until
}

func (b *fakeBeat) Running() bool {
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	return b.stopped.IsZero() && !b.dead && !b.h.clock.After(b.lease)
}

func (b *fakeBeat) State() beat.State {
	b.h.mu.Lock()
	defer b.h.mu.Unlock()
	end := b.h.clock
	if !b.stopped.IsZero() {
		end = b.stopped
	}
	if end.After(b.lease) {
		end = b.lease
	}
	var n uint64
	if !end.Before(b.first) {
		n = uint64(end.Sub(b.first)/b.every) + 1
	}
	return beat.State{Sent: n, Lapsed: b.stopped.IsZero() && b.h.clock.After(b.lease)}
}

func (b *fakeBeat) Stop() error {
	b.h.mu.Lock()
	first := b.stopped.IsZero()
	if first {
		b.stopped = b.h.clock
	}
	b.h.mu.Unlock()
	if first {
		b.h.do("beat stop vrid %d", b.vrid)
	}
	return nil
}
