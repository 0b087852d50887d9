// Package daemon is vigil's event loop: the one place that owns time,
// goroutines and sockets. It loads keepalived.conf, steps one pure
// vrrp.Instance per vrrp_instance with received adverts, link changes and
// the clock, and carries out what the engines ask for through its OS
// edges (edges.go): adverts (netio.Socket), gratuitous ARP / unsolicited
// NA (netio.Announcer), virtual addresses (addr.Manager), the no_accept
// filter (acceptmode), the load balancer's rules (dataplane/nft), the
// health checks and trackers, the BFD runner, the BGP speakers,
// connection sync, link changes, thread scheduling, keepalived's signals
// and dump files, the control socket, and the loop's own wait and clock,
// each behind a small interface that the unit tests fake.
//
// It behaves as `keepalived --vrrp` does on the same file: stale VIPs are
// removed at startup, SIGHUP reloads (a config with errors is rejected and
// the running one kept, which keepalived only does with
// reload_check_config), and shutdown sends priority 0 adverts before the
// VIPs are released, so a backup takes over within Skew_Time.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"vigil/addr"
	"vigil/check"
	"vigil/config"
	"vigil/control"
	"vigil/dataplane/nft"
	"vigil/internal/epoll"
	"vigil/internal/inet"
	"vigil/netio"
	"vigil/notify"
	"vigil/track"
	"vigil/vrrp"

	"golang.org/x/sys/unix"
)

// Options configure a Daemon.
type Options struct {
	ConfigFile string
	// Env returns the host environment for each (re)load of the config.
	Env func() config.Env
	Log *slog.Logger
	// ControlPath is the control socket; empty means none.
	ControlPath string
	Version     string
	// OnReady, if set, is called once the instances run (sd_notify READY).
	OnReady func()
	// OnReloading, if set, is called before (false) and after (true) a
	// reload SIGHUP asked for (sd_notify RELOADING and READY).
	OnReloading func(done bool)
	// DumpDir is where the dump signals write keepalived.data, .stats
	// and .json; empty: DefaultDumpDir, keepalived's /tmp.
	DumpDir string
	// NoVRRP runs the virtual servers and health checks only (keepalived
	// -C): no VRRP instance starts, and every virtual server is active, as
	// keepalived's checker process sets up IPVS whatever VRRP does.
	NoVRRP bool
	// NoCheckers runs VRRP only (keepalived -P): no virtual server, no
	// health check.
	NoCheckers bool
	// NoBFD is keepalived -B. vigil runs BFD only for bfd_instance blocks,
	// and does not run a configuration that has them without them (its
	// track_bfd and BFD_CHECK would follow sessions that never come up):
	// such a configuration is refused, at start and at reload.
	NoBFD bool
	// NoAdvertThread keeps every advert on the loop: no master's
	// steady-state adverts go to a sender thread (daemon/beat.go).
	NoAdvertThread bool
	// DontRespawn is keepalived -R (--dont-respawn): a BFD process that
	// dies is not started again, and the daemon stops as on SIGTERM, as
	// keepalived stops when a child it must not respawn exits.
	DontRespawn bool
}

// Daemon runs the VRRP instances of one keepalived.conf.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	calls   chan func(now time.Time)
	started time.Time
	// host is the way onto the OS: hostEdges, or a fake in tests.
	host edges

	// Everything below is owned by the loop goroutine.
	// cfg is the running configuration without its vrrp_instance blocks
	// (keepConfig); trackIfaces are the interfaces those blocks track.
	cfg         *config.Config
	trackIfaces []string
	insts       []*instance
	groups      []*vrrp.Group
	socks       map[sockKey]*sock
	announcers  map[string]announcer
	// pacers space out the announcements on a physical interface whose
	// vrrp_garp_interval / vrrp_gna_interval or garp_group is set, by the
	// key garpPacing.pace gives (garppace.go); like announcers, d.work's.
	// pacing is the loop's, built with each configuration.
	pacers   map[string]*pacer
	pacing   *garpPacing
	addrs    addrManager
	noAccept acceptFilter // nil without nft
	// noAcceptUsers counts the instances whose engine runs with
	// no_accept (never fewer: recounted by syncNoAccept), noAcceptCur is
	// the drop list last handed to the worker (only noAcceptTurn hands it
	// one, so the changes run in the order they were decided), and
	// noAcceptFailed says the worker's last change of it failed: while
	// none holds, a turn's transitions have no drop list to compute
	// (noAcceptTurn). noAcceptStale says a reload changed what the list
	// may hold: the next turn computes it with or without transitions.
	noAcceptUsers  int
	noAcceptCur    []netip.Addr
	noAcceptFailed atomic.Bool
	noAcceptStale  bool
	lastReload     *control.ReloadResult
	linkUp         map[string]bool
	tracking       tracking
	notifier       notifier
	runCtx         context.Context // ends when Run stops; parents the trackers
	bal            *balancer       // nil without virtual servers
	loopLag        lagWindow       // how late the loop has woken for its deadlines
	// configLoaded is when the running configuration was loaded (start,
	// or the last reload that succeeded).
	configLoaded time.Time
	pending      []pendingReady // flush's scratch, reused
	work         *slowWork      // the slow part of Readies, off the loop
	drops        dropLog        // log lines for dropped adverts
	poll         *poller        // what the loop waits on
	byFd         map[int]*sock  // the sockets by descriptor, for poll's events
	stopping     bool           // ctx ended: shut down after this turn
	// balChans and rebind tell the bridge which health-check channels to
	// read (a reload replaces the balancer).
	balChans atomic.Pointer[balChans]
	rebind   chan struct{}
	sched    schedState   // the loop thread's scheduling (sched.go)
	periodic periodicTick // the 2 s tick, running only while it has work (periodic.go)
	bfd      bfdState     // BFD sessions (daemon/bfd.go)
	bgp      *bgpState    // nil without a bgp_instance
	sync     syncState    // lvs_sync_daemon (daemon/ctsync.go)
	beats    beats        // masters whose adverts a thread sends (daemon/beat.go)
	// traffic caches the load balancer's counters; it is not the loop's.
	traffic trafficCache
}

type instance struct {
	spec  *instanceSpec
	e     *vrrp.Instance
	sock  *sock
	group *vrrp.Group
	// sinceUs is the time of the latest transition in Unix microseconds,
	// all the dumps print of it: 16 bytes less than a time.Time, which
	// with tracking moved out puts instance in the 112-byte size class
	// instead of 128 (issue #7).
	sinceUs int64
	reason  string
	cause   vrrp.Cause
	// tracking is nil for an instance that follows no tracker and was
	// never told about one: most instances. Its 56 bytes inline put the
	// struct in the 192-byte size class instead of 128 (issue #7).
	tracking *instTracking
	// garps, nas and announceErrs count the announcements of the VIPs;
	// d.work counts them, the loop reads them.
	garps, nas, announceErrs atomic.Uint64
	// firstAdvert and claimed are, for the latest transition to MASTER,
	// how long after it the first advert went to the kernel and the VIPs
	// were in (status counters first_advert_us and vips_claimed_us).
	// claimed is written by d.work. Microseconds (what status reports)
	// in 32 bits, saturated at 71 minutes: 8 bytes less, the last ones
	// keeping instance in the 112-byte size class (issue #7).
	firstAdvert uint32
	claimed     atomic.Uint32
	// mastership counts the instance's departures from MASTER (d.work
	// bumps it): a paced announcement queued before one is dropped.
	mastership atomic.Uint64
}

// micros is d in whole microseconds, 0 if negative, saturated at the
// largest uint32.
func micros(d time.Duration) uint32 {
	return uint32(min(max(d.Microseconds(), 0), math.MaxUint32))
}

// since is the time of the latest transition (or of the start).
func (in *instance) since() time.Time {
	if in.sinceUs == 0 {
		return time.Time{}
	}
	return time.UnixMicro(in.sinceUs)
}

// instTracking is what an instance follows of the trackers.
type instTracking struct {
	// refs are the trackers the instance follows; last is what the
	// engine was last told about them.
	refs []track.Ref
	last vrrp.Tracking
}

// noTracking is what an instance without an instTracking reads.
var noTracking instTracking

// tracks is in's instTracking, shared and empty when it has none (as
// instanceSpec.m): read only.
func (in *instance) tracks() *instTracking { return readPart(in.tracking, &noTracking) }

// ownTracking gives in its own instTracking to write.
func (in *instance) ownTracking() *instTracking { return ownPart(&in.tracking) }

// setRefs makes in follow refs.
func (in *instance) setRefs(refs []track.Ref) {
	if in.tracking == nil && len(refs) == 0 {
		return
	}
	in.ownTracking().refs = refs
}

type sockKey struct {
	ifname string
	fam    inet.Family
}

type sock struct {
	key  sockKey
	conn advertConn
	// byVRID are the instances by VRID, n of them. An array, not a map:
	// every advert received is looked up here, and a map with a one-byte
	// key takes the runtime's generic lookup (hashing, memequal), 2-4% of
	// a backup's CPU at advert_int 10 ms (perf, docs/benchmarks.md).
	byVRID [256]*instance
	n      int
	closed bool // detached and closed: a stale event's adverts are not read
	// foreign counts adverts for VRIDs we do not run on this link: another
	// router sharing the segment, which doctor reports.
	foreign map[uint8]uint64
}

// New checks opts and returns a Daemon; it starts nothing.
func New(opts Options) (*Daemon, error) {
	if opts.ConfigFile == "" || opts.Env == nil {
		return nil, errors.New("daemon: config file and environment are required")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return &Daemon{
		drops:      dropLog{log: opts.Log},
		opts:       opts,
		log:        opts.Log,
		calls:      make(chan func(time.Time)),
		socks:      map[sockKey]*sock{},
		announcers: map[string]announcer{},
		pacers:     map[string]*pacer{},
		byFd:       map[int]*sock{},
		rebind:     make(chan struct{}, 1),
		linkUp:     map[string]bool{},
		host:       hostEdges(),
	}, nil
}

// ConfigError is returned by Run when the configuration cannot be used; it
// carries every diagnostic.
type ConfigError struct {
	File  string
	Diags config.Diagnostics
}

func (e *ConfigError) Error() string {
	n := e.Diags.Count(config.Error) + e.Diags.Count(config.Fatal)
	return fmt.Sprintf("%s: %d errors: not starting (run `vigil check -f %s` for details)", e.File, n, e.File)
}

// Run loads the configuration, starts every instance and serves until ctx
// ends; then it shuts the instances down (priority 0 adverts, VIPs
// released) and returns.
func (d *Daemon) Run(ctx context.Context) error {
	d.started = d.now()
	d.configLoaded = d.started
	// keepalived's signals (signals.go), taken from the start: SIGHUP's
	// default action would end the process.
	sigs, stopSignals := d.host.signals(SigReload, SigData, SigStats, SigJSON)
	defer stopSignals()
	cfg, specs, err := d.load()
	if err != nil {
		return err
	}
	d.prepare(cfg, specs)
	d.beats.off = d.opts.NoAdvertThread
	d.work = newSlowWork()
	defer d.work.close()
	if d.poll, err = newPoller(d.host.newWait); err != nil {
		return fmt.Errorf("daemon: event loop: %w", err)
	}
	defer d.poll.Close()

	loopCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.runCtx = loopCtx
	links, err := d.host.watchLinks(loopCtx, func(err error) {
		if loopCtx.Err() == nil {
			d.log.Error("link monitor", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("daemon: watch interfaces: %w", err)
	}
	var bg sync.WaitGroup
	// Notify scripts outlive the loop: the STOP notifications of the
	// shutdown still run (for a bounded grace) after it ends.
	notifyCtx, stopNotify := context.WithCancel(context.Background())
	defer func() {
		stopNotify()
		bg.Wait()
	}()
	d.startNotifier(notifyCtx, &bg)
	defer d.stopTracking()
	defer d.stopBFD()
	defer d.stopSync()

	if err := d.startEngines(loopCtx, d.now(), specs); err != nil {
		d.stopAll(d.now())
		return err
	}
	macs := d.host.newTicker(periodicInterval)
	defer macs.Stop()
	d.periodic = periodicTick{t: macs, on: true}

	if d.opts.ControlPath != "" {
		bg.Add(1)
		go func() {
			defer bg.Done()
			if err := d.host.serveControl(loopCtx, d.opts.ControlPath, d.handle, d.log); err != nil {
				d.log.Error("control socket", "err", err)
			}
		}()
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		d.serveSignals(loopCtx, sigs)
	}()
	if d.opts.OnReady != nil {
		d.opts.OnReady()
	}
	d.log.Info("vigil running", "config", d.opts.ConfigFile, "instances", len(d.insts))

	// Not locked to a thread: whichever runtime thread the poller wakes
	// runs the loop at once (a locked thread would be a second wake-up).
	// The scheduling settings apply to every thread (daemon/sched.go).
	d.applySched()
	d.setPeriodic()
	trackEvents := d.tracking.events
	go d.bridge(loopCtx, links, macs.C(), trackEvents)

	// Every advert is read into buf and stepped in place. It is on the
	// heap, not an array on this goroutine's stack: a 64 KiB frame makes
	// the runtime give the loop a 128 KiB stack, copied at each growth
	// during the load, where the heap holds exactly 64 KiB.
	buf := make([]byte, 65536)
	var due time.Time // the deadline the loop last waited for
	// pass handles one batch of ready events, then what they asked for,
	// and arms the next deadline. It is made once: the loop calls it, it
	// does not allocate per batch.
	pass := func(evs []unix.EpollEvent) (quiet, stop bool) {
		now := d.now()
		// How late the loop woke for that deadline, whatever woke it: a
		// host that stalls (CPU starvation, a VM pause, SIGSTOP) shows here
		// before the peers notice, and vigil doctor reads it.
		if !due.IsZero() && !now.Before(due) {
			lag := now.Sub(due)
			d.loopLag.add(now, lag)
			d.autoPriority(lag)
			if lag > 2*time.Millisecond {
				// Late: a thread the runtime started since the last pass
				// may lack the scheduling setting (reapplySched).
				d.reapplySched()
			}
		}
		// quiet: everything the events announced is consumed (see
		// epoll.Set.Run), so the wait needs no empty epoll_wait first.
		quiet = true
		for _, ev := range evs {
			switch ev.Fd {
			case epoll.TagTimer:
				d.poll.TimerFired() // spent; d.poll.Arm below sets the next
			case epoll.TagWake:
				for {
					fs := d.poll.take()
					if len(fs) == 0 {
						d.poll.recycle(fs)
						break
					}
					for _, f := range fs {
						f(d.now())
					}
					d.poll.recycle(fs)
				}
			default:
				if s := d.byFd[int(ev.Fd)]; s != nil {
					quiet = d.readAll(now, s, buf) && quiet
				} else {
					quiet = false
				}
			}
		}
		if d.stopping {
			return false, true
		}
		// Timers are run after every wake-up, not only the timerfd's: a
		// deadline that passed while adverts were being read is not left
		// waiting for another turn.
		if next := d.next(); !next.IsZero() && !now.Before(next) {
			for _, in := range d.insts {
				in.e.Advance(now)
			}
			d.drops.flush(now)
		}
		d.turn()
		due = d.arm()
		return quiet, false
	}
	d.turn()
	due = d.arm()
	for {
		if err := d.poll.Run(pass); err != nil {
			d.log.Error("event loop: epoll_wait", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		d.terminate(d.now())
		cancel()
		d.stopTracking()
		d.log.Info("vigil stopped")
		return nil
	}
}

// now is the loop's clock (virtual in the tests).
func (d *Daemon) now() time.Time { return d.host.now() }

// load reads the configuration file and derives the instances from it;
// a configuration with errors is a *ConfigError.
func (d *Daemon) load() (*config.Config, []built, error) {
	cfg, diags := config.Load(d.opts.ConfigFile, d.opts.Env())
	for _, dg := range diags {
		switch {
		case dg.Severity >= config.Error:
			d.log.Error("config", "diagnostic", dg.String())
		case dg.Severity == config.Warning:
			d.log.Warn("config", "diagnostic", dg.String())
		}
	}
	if diags.HasErrors() {
		return nil, nil, &ConfigError{File: d.opts.ConfigFile, Diags: diags}
	}
	specs, err := d.buildSpecs(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, specs, nil
}

// prepare cleans the host of what an earlier run left (VIPs, the
// no_accept drop list) before any instance starts.
func (d *Daemon) prepare(cfg *config.Config, bs []built) {
	d.cfg, d.pacing = cfg, newGarpPacing(cfg)
	d.addrs = d.host.addrs()
	d.removeStale(bs)
	d.startNoAccept(bs)
}

// keepConfig makes cfg the running configuration once the instances are
// built from it: its vrrp_instance blocks are dropped (each instance's
// spec and engine keep what is read of them later; instanceSpec), and the
// interfaces their track_interface name are noted for status.
func (d *Daemon) keepConfig(cfg *config.Config) {
	d.trackIfaces = nil
	seen := map[string]bool{}
	for _, in := range cfg.Instances {
		for _, r := range in.TrackInterfaces {
			if !seen[r.Name] {
				seen[r.Name] = true
				d.trackIfaces = append(d.trackIfaces, r.Name)
			}
		}
	}
	cfg.DropInstances()
	d.cfg, d.pacing = cfg, newGarpPacing(cfg)
}

// startEngines starts the trackers and BFD sessions, the instances that
// follow them, then the virtual servers, the BGP speakers and the
// connection sync, which follow the instances' states. On an error the
// caller stops what started (stopAll, stopTracking, stopBFD, stopSync).
func (d *Daemon) startEngines(ctx context.Context, now time.Time, bs []built) error {
	d.startTracking(ctx, d.cfg)
	d.startBFD(ctx, d.cfg)
	d.syncPrepare(d.cfg)
	if err := d.start(now, bs); err != nil {
		return err
	}
	lbc, err := d.balancerFor(d.cfg)
	if err == nil {
		err = d.reconfigure(ctx, lbc)
	}
	if err != nil {
		return fmt.Errorf("virtual servers: %w", err)
	}
	if err := d.startBGP(d.cfg); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	d.startSync(ctx, now, d.cfg)
	d.keepConfig(d.cfg)
	return nil
}

// turn carries out, after every event, what the engines and the models
// ask for: adverts first, then the slow work of each Ready (flush), the
// load balancer's desired state and the BGP routes.
func (d *Daemon) turn() {
	d.flush()
	d.beatTurn(d.now())
	d.pushDesired()
	d.pushBGP()
}

// readAll steps the engines with every advert queued on s; false if it
// stopped before s would block (the bound, or an error), so s may still
// be readable.
func (d *Daemon) readAll(now time.Time, s *sock, buf []byte) (drained bool) {
	for range 1024 { // bounded: a flood on one link does not starve the rest
		p, err := s.conn.Recv(buf)
		if err == netio.ErrWouldBlock {
			return true
		}
		if err != nil {
			d.log.Debug("read advert", "interface", s.key.ifname, "err", err)
			return false
		}
		d.receive(now, s, p)
		if s.conn.Drained() {
			return true // no Recv for the EAGAIN (netio.Socket.Drained)
		}
	}
	return false
}

// bridge hands the loop, through its poller's Wake, everything that is
// not an advert or a deadline: link changes, tracker and health-check
// results, the 2 s MAC refresh, control calls, and the end of ctx. These
// are rare next to adverts; one goroutine hop for them keeps the loop's
// own waits on its sockets and its timer alone.
func (d *Daemon) bridge(ctx context.Context, links <-chan addr.LinkState, macs <-chan time.Time, tracked <-chan track.Event) {
	for {
		var checks <-chan check.Event
		var counts <-chan map[string]map[netip.AddrPort]int
		if bc := d.balChans.Load(); bc != nil {
			checks, counts = bc.events, bc.counts
		}
		select {
		case <-ctx.Done():
			d.poll.post(func(time.Time) { d.stopping = true })
			return
		case <-d.rebind:
		case u := <-links:
			d.poll.post(func(now time.Time) { d.linkChanged(now, u) })
		case e := <-tracked:
			d.poll.post(func(now time.Time) { d.tracked(now, e) })
		case e := <-checks:
			d.poll.post(func(time.Time) {
				if d.bal != nil && d.bal.events == checks { // not a balancer a reload replaced
					d.checked(e)
				}
			})
		case <-macs:
			d.poll.post(func(time.Time) {
				d.refreshMACs()
				d.learnTakeoverLLAddrs()
				d.countConns(ctx)
				d.sweepFlows(ctx)
				d.reapplySched() // threads the runtime started since
			})
		case c := <-counts:
			d.poll.post(func(time.Time) {
				if d.bal != nil && d.bal.counts == counts {
					d.counted(c)
				}
			})
		case f := <-d.calls:
			d.poll.post(f)
		}
	}
}

// rebindBridge tells the bridge the balancer's channels changed.
func (d *Daemon) rebindBridge() {
	if d.bal == nil {
		d.balChans.Store(nil)
	} else {
		d.balChans.Store(&balChans{events: d.bal.events, counts: d.bal.counts})
	}
	select {
	case d.rebind <- struct{}{}:
	default:
	}
}

// balChans are the balancer's channels the bridge reads.
type balChans struct {
	events <-chan check.Event
	counts <-chan map[string]map[netip.AddrPort]int
}

// call runs f on the loop goroutine and waits for it.
func (d *Daemon) call(ctx context.Context, f func(now time.Time)) error {
	done := make(chan struct{})
	select {
	case d.calls <- func(now time.Time) { f(now); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reload re-reads the configuration on the loop goroutine. A configuration
// with errors is rejected and the running one kept.
func (d *Daemon) Reload(ctx context.Context) (control.ReloadResult, error) {
	var res control.ReloadResult
	err := d.call(ctx, func(now time.Time) { res = d.reload(now) })
	return res, err
}

// Status returns a snapshot, taken on the loop goroutine, with the load
// balancer's traffic counters, read afterwards off the loop (an nft call
// must not hold up adverts).
func (d *Daemon) Status(ctx context.Context) (control.Status, error) {
	return d.status(ctx, 0, 0)
}

// status is Status with traffic counters up to maxAge old: the control
// socket's clients may poll it (tests, `watch vigil status`, doctor) and
// need not start nft processes per call, nor wait long for them (wait),
// while a Prometheus scrape reads them fresh (maxAge and wait 0).
func (d *Daemon) status(ctx context.Context, maxAge, wait time.Duration) (control.Status, error) {
	var s control.Status
	var dp dataplane
	var sy syncer
	var br bfdRunner
	err := d.call(ctx, func(now time.Time) {
		s = d.snapshot()
		if d.bal != nil {
			dp = d.bal.dp
		}
		sy = d.sync.s
		br = d.bfd.runner
	})
	if err == nil && s.Sync != nil && sy != nil {
		addSyncEngine(s.Sync, sy.Status(), time.Now()) // off the loop
	}
	if err == nil {
		bfdSnapshot(br, &s) // off the loop too
	}
	if err == nil && dp != nil && len(s.Services) > 0 {
		if st, serr := d.traffic.read(ctx, dp, maxAge, wait); serr != nil {
			d.log.Debug("traffic counters not read", "err", serr)
		} else {
			addTraffic(s.Services, st)
		}
	}
	return s, err
}

// trafficCache keeps the data plane's counters last read, and the read in
// progress.
type trafficCache struct {
	mu sync.Mutex
	dp dataplane
	at time.Time
	v  map[string]map[netip.AddrPort]nft.Stats
	// reading is closed when the read in progress (of readingDP) ends;
	// nil when none runs. Callers share it.
	reading   chan struct{}
	readingDP dataplane
	err       error // the last read's
}

// controlTrafficAge is how old the counters in the control socket's status
// may be; controlTrafficWait how long its status waits for a read of
// them. The read runs one nft process per counted set (six for NAT/FNAT
// services of both families), which a loaded host takes seconds over:
// `vigil doctor` (2 s) and the e2e tests (3 s) gave up on such a status
// and reported the daemon stalled, though its loop had answered at once.
const (
	controlTrafficAge  = time.Second
	controlTrafficWait = 500 * time.Millisecond
)

// trafficReadTimeout bounds one read of the counters, which a caller that
// stopped waiting leaves running for the next one.
const trafficReadTimeout = 30 * time.Second

// read returns dp's counters, at most maxAge old. A read it has to make
// (or one already running) that takes longer than wait (0: as long as
// ctx allows) goes on without the caller, who gets the counters the cache
// holds, older than maxAge, or an error when it holds none of dp.
func (c *trafficCache) read(ctx context.Context, dp dataplane, maxAge, wait time.Duration) (map[string]map[netip.AddrPort]nft.Stats, error) {
	c.mu.Lock()
	if c.dp == dp && c.v != nil && time.Since(c.at) < maxAge {
		v := c.v
		c.mu.Unlock()
		return v, nil
	}
	done := c.reading
	if done == nil || c.readingDP != dp {
		done = make(chan struct{})
		c.reading, c.readingDP = done, dp
		go c.fetch(dp, done)
	}
	c.mu.Unlock()
	var late <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		late = t.C
	}
	select {
	case <-done:
	case <-late:
	case <-ctx.Done():
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-done:
		if c.err != nil {
			return nil, c.err
		}
		return c.v, nil
	default:
	}
	if c.dp == dp && c.v != nil {
		return c.v, nil // the last counters read: nft is slow to give newer ones
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("no counters yet: nft has not answered in %v", wait)
}

// fetch reads dp's counters into the cache and closes done.
func (c *trafficCache) fetch(dp dataplane, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), trafficReadTimeout)
	v, err := dp.Stats(ctx)
	cancel()
	c.mu.Lock()
	if err == nil {
		c.dp, c.at, c.v = dp, time.Now(), v
	}
	c.err = err
	if c.reading == done {
		c.reading, c.readingDP = nil, nil
	}
	c.mu.Unlock()
	close(done)
}

// Alive reports whether the loop answers: nil once it has run a call.
func (d *Daemon) Alive(ctx context.Context) error {
	return d.call(ctx, func(time.Time) {})
}

func (d *Daemon) handle(ctx context.Context, req control.Request) control.Response {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	switch req.Cmd {
	case "status":
		// Counters up to a second old: a client polling the status must
		// not run nft processes back to back.
		s, err := d.status(ctx, controlTrafficAge, controlTrafficWait)
		if err != nil {
			return control.Response{Error: err.Error()}
		}
		return control.Response{Status: &s}
	case "conns":
		// Listing conntrack can take a while: only the data plane handle is
		// fetched on the loop (it is safe for concurrent use).
		var dp dataplane
		if err := d.call(ctx, func(time.Time) {
			if d.bal != nil {
				dp = d.bal.dp
			}
		}); err != nil {
			return control.Response{Error: err.Error()}
		}
		conns := []control.Conn{}
		if dp != nil {
			var err error
			if conns, err = d.connsFrom(ctx, dp); err != nil {
				return control.Response{Error: err.Error()}
			}
		}
		return control.Response{Conns: conns}
	case "reload":
		r, err := d.Reload(ctx)
		if err != nil {
			return control.Response{Error: err.Error()}
		}
		return control.Response{Reload: &r}
	}
	return control.Response{Error: fmt.Sprintf("unknown command %q (expected status, conns or reload)", req.Cmd)}
}

func (d *Daemon) buildSpecs(cfg *config.Config) ([]built, error) {
	if d.opts.NoBFD && len(cfg.BFDInstances) > 0 {
		return nil, fmt.Errorf("-B/--no_bfd, but the configuration has %d bfd_instance blocks (%s at %s), which track_bfd and BFD_CHECK follow: remove them, or run without -B",
			len(cfg.BFDInstances), cfg.BFDInstances[0].Name, cfg.BFDInstances[0].Pos)
	}
	if d.opts.NoVRRP {
		return nil, nil
	}
	var bs []built
	var errs []error
	lookup := memoLookup(d.host.ifaceAddrs)
	for _, in := range cfg.Instances {
		b, err := buildSpec(cfg, in, lookup)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: vrrp_instance %s: %w", in.Pos, in.Name, err))
			continue
		}
		bs = append(bs, b)
	}
	return bs, errors.Join(errs...)
}

// balancerFor maps the virtual servers of cfg, unless the daemon runs VRRP
// only.
func (d *Daemon) balancerFor(cfg *config.Config) (*lbConfig, error) {
	if d.opts.NoCheckers {
		return nil, nil
	}
	b, err := lbConfigFor(cfg, lbLookups{routeDevice: d.host.routeDevice, credential: d.host.credential})
	if b != nil && d.opts.NoVRRP {
		for i := range b.specs {
			b.specs[i].Inactive = false
		}
	}
	return b, err
}

// removeStale removes VIPs a previous run left behind (a crash, kill -9),
// so that this node does not answer for them while it is a backup. Only
// addresses the configuration names are touched.
func (d *Daemon) removeStale(bs []built) {
	var all []addr.VIP
	for _, b := range bs {
		all = slices.AppendSeq(all, b.spec.vipsOf(b.engine.VIPs, b.engine.ExcludedVIPs))
	}
	removed, err := d.addrs.RemoveStale(all)
	for _, v := range removed {
		d.log.Warn("removed stale virtual address left by an earlier run", "vip", v.String())
	}
	if err != nil {
		d.log.Error("remove stale virtual addresses", "err", err)
	}
}

// start creates engines for bs and the sockets they need.
func (d *Daemon) start(now time.Time, bs []built) error {
	byName := map[string]*instance{}
	ups := map[string]bool{} // one link request per interface, not per instance
	for _, b := range bs {
		in, err := d.startInstance(now, b, ups)
		if err != nil {
			return err
		}
		byName[b.spec.name] = in
	}
	return d.buildGroups(byName)
}

// startInstance makes and starts the engine of b. ups holds what the
// interfaces' states were found to be during this start or reload (nil:
// ask the kernel).
func (d *Daemon) startInstance(now time.Time, b built, ups map[string]bool) (*instance, error) {
	s := b.spec
	e, err := vrrp.New(d.syncEngineConfig(b), now) // held from its first step while the sync starts
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.cfg.Pos, err)
	}
	if s.vmac() != "" {
		if _, err := d.addrs.EnsureVMAC(s.parent(), b.engine.VRID, b.engine.Family, s.vmac()); err != nil {
			return nil, fmt.Errorf("%s: vrrp_instance %s: use_vmac: %w", b.cfg.Pos, s.name, err)
		}
	}
	in := &instance{spec: s, e: e, sinceUs: now.UnixMicro(), reason: "startup"}
	refs, ignored := refsFor(d.cfg, b.cfg)
	in.setRefs(refs)
	for _, msg := range ignored {
		d.log.Info("tracking", "ignored", msg)
	}
	if err := d.attach(in); err != nil {
		return nil, err
	}
	d.insts = append(d.insts, in)
	if e.Config().NoAccept {
		d.noAcceptUsers++
	}
	up, known := ups[s.ifname]
	if !known {
		var err error
		up, err = d.host.linkUp(s.ifname)
		up = up && err == nil
		if ups != nil {
			ups[s.ifname] = up
		}
	}
	if !up {
		d.linkUp[s.ifname] = false
		_ = e.Step(now, vrrp.InterfaceDown{})
	} else {
		d.linkUp[s.ifname] = true
	}
	d.retrack(now, in)
	d.log.Info("instance started", "instance", s.name, "interface", s.ifname, "vrid", b.engine.VRID,
		"version", b.engine.Version, "priority", b.engine.Priority, "src", b.engine.SrcAddr.String(),
		"unicast", len(b.engine.Peers) > 0)
	return in, nil
}

func (d *Daemon) buildGroups(byName map[string]*instance) error {
	d.groups = nil
	for _, g := range d.cfg.SyncGroups {
		var members []*vrrp.Instance
		var ins []*instance
		for _, m := range g.Members {
			if in := byName[m]; in != nil {
				members = append(members, in.e)
				ins = append(ins, in)
			}
		}
		if len(members) == 0 {
			continue
		}
		grp, err := vrrp.NewGroup(g.Name, members...)
		if err != nil {
			return fmt.Errorf("%s: %w", g.Pos, err)
		}
		for _, in := range ins {
			in.group = grp
		}
		d.groups = append(d.groups, grp)
	}
	return nil
}

// attach gives in a socket on its interface and family, opening one if
// needed; adverts are demultiplexed by VRID.
func (d *Daemon) attach(in *instance) error {
	ec := in.e.Config()
	key := sockKey{in.spec.ifname, ec.Family}
	multicast := len(ec.Peers) == 0
	s := d.socks[key]
	if s == nil {
		conn, err := d.host.openSocket(key.ifname, key.fam, netio.Options{Multicast: multicast, ReadBuffer: 1 << 20})
		if err != nil {
			return fmt.Errorf("vrrp_instance %s: %w", in.spec.name, err)
		}
		if err := d.poll.Add(conn.Fd(), conn.Fd()); err != nil {
			_ = conn.Close()
			return fmt.Errorf("vrrp_instance %s: watch the socket: %w", in.spec.name, err)
		}
		s = &sock{key: key, conn: conn, foreign: map[uint8]uint64{}}
		d.socks[key] = s
		d.byFd[conn.Fd()] = s
	} else if multicast {
		if err := s.conn.JoinGroup(); err != nil {
			return fmt.Errorf("vrrp_instance %s: %w", in.spec.name, err)
		}
	}
	if other := s.byVRID[ec.VRID]; other != nil {
		return fmt.Errorf("vrrp_instance %s: VRID %d is already used by %s on %s", in.spec.name, ec.VRID, other.spec.name, key.ifname)
	}
	s.byVRID[ec.VRID] = in
	s.n++
	in.sock = s
	return nil
}

// removeVMAC deletes the instance's use_vmac interface, as keepalived does
// when an instance stops.
func (d *Daemon) removeVMAC(in *instance) {
	if in.spec.vmac() == "" {
		return
	}
	if err := d.addrs.RemoveVMAC(in.spec.vmac()); err != nil {
		d.log.Warn("remove VMAC", "instance", in.spec.name, "interface", in.spec.vmac(), "err", err)
	}
}

// detach releases in's socket, closing it when no instance uses it.
func (d *Daemon) detach(in *instance) {
	s := in.sock
	if s == nil {
		return
	}
	d.stopBeat(in) // its thread sends on the socket

	s.byVRID[in.e.Config().VRID] = nil
	s.n--
	in.sock = nil
	if s.n == 0 {
		d.poll.Del(s.conn.Fd())
		delete(d.byFd, s.conn.Fd())
		_ = s.conn.Close()
		s.closed = true
		delete(d.socks, s.key)
	}
}

func (d *Daemon) receive(now time.Time, s *sock, p netio.Packet) {
	if s.closed || len(p.Data) < 2 {
		return
	}
	vrid := p.Data[1]
	in := s.byVRID[vrid]
	if in == nil {
		s.foreign[vrid]++
		if s.foreign[vrid] == 1 {
			d.log.Warn("VRRP adverts for a VRID this node does not run: another router shares the segment",
				"interface", s.key.ifname, "vrid", vrid, "from", p.Src.String())
		}
		return
	}
	err := in.e.Step(now, vrrp.Packet{Data: p.Data, Src: p.Src, Dst: p.Dst, TTL: p.TTL})
	if err != nil {
		d.drops.note(now, in.spec.name, err)
	}
}

func (d *Daemon) linkChanged(now time.Time, u addr.LinkState) {
	if f, ok := d.addrs.(interface{ ForgetLinks() }); ok {
		f.ForgetLinks() // a rename or a recreated interface: look names up again
	}
	name, up := u.Name, u.Up
	was, known := d.linkUp[name]
	if !known || was == up {
		return
	}
	d.linkUp[name] = up
	d.log.Info("interface changed", "interface", name, "up", up)
	for _, in := range d.insts {
		if in.spec.ifname != name {
			continue
		}
		if up {
			_ = in.e.Step(now, vrrp.InterfaceUp{})
		} else {
			_ = in.e.Step(now, vrrp.InterfaceDown{})
		}
	}
}

// next is the earliest deadline of any engine.
func (d *Daemon) next() time.Time {
	t, _ := d.deadline()
	return t
}

// arm sets the loop's wait for the next deadline, with the earliest
// detection time beside it (deadline), and returns that deadline.
func (d *Daemon) arm() time.Time {
	due, detect := d.deadline()
	d.poll.Arm(due, detect)
	return due
}

// deadline is next, and the earliest deadline of an instance that is not
// MASTER (zero: none): a backup's Master_Down_Timer, whose expiry is the
// master's failure unless an advert is waiting to be read. The loop gives
// it to epoll's Arm beside the deadline, so a pass after it reads the
// sockets first even when it is on time (a false failover under CPU
// saturation otherwise). It is the backup's own deadline, not a mark on
// the earliest one: a master's advert deadline just before it would hide
// it from a pass that runs both.
func (d *Daemon) deadline() (t, detect time.Time) {
	t = d.drops.next()
	if d.bgp != nil && !d.bgp.holdUntil.IsZero() && (t.IsZero() || d.bgp.holdUntil.Before(t)) {
		t = d.bgp.holdUntil // an announcement held by announce_delay
	}
	if d.bgp != nil && !d.bgp.bfdRelease.IsZero() && (t.IsZero() || d.bgp.bfdRelease.Before(t)) {
		t = d.bgp.bfdRelease // a BGP session held down by bfd_holddown
	}
	if len(d.beats.runs) > 0 && (t.IsZero() || d.beats.renewAt.Before(t)) {
		t = d.beats.renewAt // the advert threads' leases (daemon/beat.go)
	}
	for _, in := range d.insts {
		n := in.e.Next()
		if n.IsZero() {
			continue
		}
		if t.IsZero() || n.Before(t) {
			t = n
		}
		if in.e.State() != vrrp.StateMaster && (detect.IsZero() || n.Before(detect)) {
			detect = n
		}
	}
	return t, detect
}

// flush carries out what the engines ask for. A step on one member of a
// sync group may change the others, so every engine is asked every time.
//
// It runs in two passes. First every engine's adverts go out, before
// anything slow: RFC 5798 section 6.4.1/6.4.2 has a new master send its
// ADVERTISEMENT first, and a backup whose Master_Down_Timer is about to
// fire must hear it now, not after this node's nft transaction (tens of
// milliseconds, which let `vigil demo` end up with two masters at
// election), its address changes or its GARP bursts. The second pass
// does the rest of each Ready in the engine's order.
//
// Only Readies with slow work wait for the second pass: a steady-state
// advert's is done once sent. Kept for every instance with output, the
// buffer of pending Readies held 176 bytes per instance for the daemon's
// life (240 with its growth), since every master's advert falls due in
// the same turn; and a buffer grown by a burst of transitions (all
// instances becoming master at start) is let go rather than kept (issue
// #7: TestHeapPerInstance).
func (d *Daemon) flush() {
	pend := d.pending[:0]
	for k, in := range d.insts {
		if in.e.HasReady() {
			rd := in.e.Ready()
			d.sendAdverts(in, &rd)
			if !hasSlowWork(&rd) {
				continue
			}
			if len(pend) == cap(pend) && len(pend) >= maxPending {
				// A burst (every master's takeover): past what the
				// buffer keeps, grow once to what the rest of the
				// instances can add rather than doubling, whose copies
				// of 176-byte pendingReadys came to several times the
				// final buffer (2.4 MB against 0.7 over the start of
				// 1,000 masters on the fake host). Not before: the
				// count takes in every master whose advert is due in
				// this turn (all of them at once, started together),
				// and made a single transition among them take a
				// buffer for 1,000 (TestFlushBufferForOneTransition).
				more := 1
				for _, o := range d.insts[k+1:] {
					if o.e.HasReady() {
						more++
					}
				}
				pend = slices.Grow(pend, more)
			}
			pend = append(pend, pendingReady{in: in, rd: rd})
		}
	}
	// The no_accept drop list changes with transitions, and after a
	// reload (which may also have changed a master's VIPs): a list that
	// gains VIPs (new masters) is written before any of them go on the
	// interface, one that loses them (masters stepping down) after they
	// are gone; either way no packet to a VIP this node holds is accepted
	// while no_accept applies to it (RFC 5798 6.4.3).
	var grow, settle func()
	if d.noAcceptStale || slices.ContainsFunc(pend, func(p pendingReady) bool { return len(p.rd.Transitions) > 0 }) {
		grow, settle = d.noAcceptTurn()
	}
	d.takeovers(pend) // the synced connections go in first
	if grow != nil {
		d.work.do(grow)
	}
	for k := range pend {
		d.apply(pend[k].in, &pend[k].rd)
		pend[k] = pendingReady{} // drop the references
	}
	if settle != nil {
		d.work.do(settle)
	}
	if cap(pend) > maxPending {
		pend = nil
	}
	d.pending = pend[:0]
	for _, g := range d.groups {
		for _, t := range g.Ready() {
			d.log.Info(groupTransitionLine(g.Name(), t.To), "group", g.Name(), "from", t.From.String(), "to", t.To.String(), "reason", t.Reason)
			if d.notifier == nil {
				continue
			}
			for _, gc := range d.cfg.SyncGroups {
				if gc.Name == g.Name() {
					// On the worker, after the jobs of its instances'
					// transitions: the group's notify_master runs once
					// their VIPs are set, as an instance's does.
					ev, scripts := notify.Event{Scope: notify.Group, Name: g.Name(), State: notifyState(t.To)}, d.notifyScripts(gc.Notify)
					d.work.do(func() { d.notifier.Notify(ev, scripts) })
				}
			}
		}
	}
}

// takeovers prepares the second pass of flush for the instances that
// become MASTER in this turn together (the members of a vrrp_sync_group
// do, in one step). Their work runs one Ready after the other, in the
// instances' order, so:
//   - the connection sync's job (the install of the synced copy on a
//     takeover) is queued before any of it: the sync instance need not be
//     the first member, and a member's VIPs claimed before the install
//     would meet established flows with no NAT binding;
//   - every one of their services is made active before the first claim,
//     so that the first member's claim puts all their rules in with one
//     nft transaction and the others' find nothing left to apply. One
//     transaction per member held each later member's VIPs back by a whole
//     nft run (0.75-1.1 s on a loaded host: the IPv6 member of e2e
//     TestConnSyncFailover claimed its VIPs that much after the IPv4 one,
//     late enough for its clients' requests to time out).
//
// Only activations move ahead: a member stepping down still releases its
// VIPs before its rules go (apply, releasing).
func (d *Daemon) takeovers(pend []pendingReady) {
	for k := range pend {
		if job := d.syncTransitions(pend[k].in, pend[k].rd.Transitions); job != nil {
			d.work.do(job) // apply's own call then finds the role already set
		}
	}
	if d.bal == nil {
		return
	}
	for k := range pend {
		for _, t := range pend[k].rd.Transitions {
			if t.To == vrrp.StateMaster {
				d.vrrpChanged(pend[k].in, true)
				break
			}
		}
	}
}

// maxPending is the most pending Readies whose buffer flush keeps.
const maxPending = 16

// hasSlowWork reports whether rd asks for more than its adverts: what apply
// does.
func hasSlowWork(rd *vrrp.Ready) bool {
	return len(rd.Transitions) > 0 || len(rd.AddAddrs) > 0 || len(rd.DelAddrs) > 0 || len(rd.Announce) > 0 || len(rd.Notes) > 0
}

// pendingReady is a Ready whose adverts are sent and whose slow part is
// still to do.
type pendingReady struct {
	in *instance
	rd vrrp.Ready
}

// sendAdverts sends rd's adverts. For a transition to MASTER it records
// how long after the transition the first advert was handed to the kernel
// (status counter first_advert_us, and the transition's log line).
func (d *Daemon) sendAdverts(in *instance, rd *vrrp.Ready) {
	if len(d.beats.runs) > 0 && !in.e.Pacing() {
		d.stopBeat(in) // its beat ended in this step: nothing of it may follow these
	}
	for _, o := range rd.Adverts {
		if in.sock == nil {
			break
		}
		if err := in.sock.conn.Send(o.Data, in.e.Config().SrcAddr, o.Dst); err != nil {
			d.log.Warn("send advert", "instance", in.spec.name, "err", err)
		}
	}
	if len(rd.Adverts) == 0 {
		return
	}
	d.beats.scan = true // a master may have come to a steady state (beatTurn)
	for _, t := range rd.Transitions {
		if t.To == vrrp.StateMaster {
			in.firstAdvert = micros(d.now().Sub(t.At))
		}
	}
}

// apply carries out the rest of one Ready (its adverts are sent) in the
// engine's order: own the VIPs before announcing them, and release them
// after the priority 0 advert went out. What the loop owns (the engines,
// the LB model) is read here; the I/O runs on d.work, in order, so the
// loop goes on sending adverts while nft and netlink take their time.
func (d *Daemon) apply(in *instance, rd *vrrp.Ready) {
	if !hasSlowWork(rd) {
		return // a steady-state advert: nothing for the worker (and no closure to allocate)
	}
	name := in.spec.name
	spec := in.spec
	syncJob := d.syncTransitions(in, rd.Transitions) // before the claim: the synced copy goes in first
	var claims []func()
	for _, t := range rd.Transitions {
		if t.To == vrrp.StateMaster {
			if c := d.claimVIPs(in); c != nil {
				claims = append(claims, c)
			}
		}
	}
	type noted struct {
		t       vrrp.Transition
		scripts notify.Scripts
	}
	var trans []noted
	var released chan struct{} // closed once the VIPs are gone: the rules wait (pushDesired)
	for _, t := range rd.Transitions {
		in.sinceUs, in.reason, in.cause = t.At.UnixMicro(), t.Reason, t.Cause
		switch {
		case t.To == vrrp.StateMaster:
			d.vrrpChanged(in, true)
		case t.From == vrrp.StateMaster:
			if d.vrrpChanged(in, false) && released == nil {
				released = d.releasing()
			}
		}
		n := noted{t: t}
		if d.notifier != nil {
			n.scripts = d.notifyScripts(spec.m().notify)
		}
		trans = append(trans, n)
	}
	firstAdvert := in.firstAdvert
	add, del, announce, notes := rd.AddAddrs, rd.DelAddrs, rd.Announce, rd.Notes
	pacing := d.pacing
	d.work.do(func() {
		for _, n := range trans {
			if n.t.From == vrrp.StateMaster {
				in.mastership.Add(1) // cancels paced announcements still queued
			}
		}
		if syncJob != nil {
			syncJob()
		}
		for _, c := range claims {
			c()
		}
		for _, p := range add {
			v := spec.vip(p)
			if err := d.addrs.Add(v); err != nil {
				d.log.Error("add virtual address", "instance", name, "vip", v.String(), "err", err)
			}
		}
		for _, a := range announce {
			for r := 0; r < a.Repeat; r++ {
				for _, ip := range a.Addrs {
					d.announce(in, spec, pacing, ip)
				}
			}
		}
		for _, p := range del {
			v := spec.vip(p)
			if err := d.addrs.Remove(v); err != nil {
				d.log.Error("remove virtual address", "instance", name, "vip", v.String(), "err", err)
			}
		}
		if released != nil {
			close(released)
		}
		for _, n := range trans {
			t := n.t
			attrs := []any{"instance", name, "from", t.From.String(), "to", t.To.String(), "reason", t.Reason, "priority", t.Priority}
			switch {
			case t.To == vrrp.StateMaster:
				claimed := d.now().Sub(t.At)
				in.claimed.Store(micros(claimed))
				d.setRoutes(spec, true)
				attrs = append(attrs, "first_advert_after", (time.Duration(firstAdvert) * time.Microsecond).String(), "vips_claimed_after", claimed.String())
			case t.From == vrrp.StateMaster:
				d.setRoutes(spec, false)
			}
			d.log.Info(transitionLine(name, t.From, t.To), attrs...)
			if d.notifier != nil {
				d.notifier.Notify(notify.Event{Scope: notify.Instance, Name: name, State: notifyState(t.To), Priority: int(t.Priority)}, n.scripts)
			}
		}
		for _, n := range notes {
			d.log.Warn("vrrp", "instance", name, "note", n)
		}
	})
}

// transitionLine is the message of a transition, in keepalived's words
// ("(VI_1) Entering MASTER STATE"), so that log greps, alerts and log
// exporters written for keepalived keep matching.
func transitionLine(name string, from, to vrrp.State) string {
	line := fmt.Sprintf("(%s) Entering %s STATE", name, to)
	if from == vrrp.StateInit && to == vrrp.StateBackup {
		line += " (init)" // keepalived's startup line
	}
	return line
}

// groupTransitionLine is keepalived's line for a sync group's transition.
func groupTransitionLine(name string, to vrrp.State) string {
	return fmt.Sprintf("VRRP_Group(%s) Syncing instances to %s state", name, to)
}

// setRoutes installs or removes the instance's virtual_routes and
// virtual_rules, which follow the VIPs: present only on the master.
func (d *Daemon) setRoutes(spec *instanceSpec, on bool) {
	follow(d, spec.name, "virtual route", on, spec.m().routes, d.addrs.AddRoute, d.addrs.RemoveRoute)
	follow(d, spec.name, "virtual rule", on, spec.m().rules, d.addrs.AddRule, d.addrs.RemoveRule)
}

// follow adds (on) or removes each of items, logging what fails.
func follow[T any](d *Daemon, instance, what string, on bool, items []T, add, remove func(T) error) {
	change := remove
	if on {
		change = add
	}
	for _, it := range items {
		if err := change(it); err != nil {
			d.log.Error(what, "instance", instance, "add", on, "err", err)
		}
	}
}

// announce sends a gratuitous ARP or unsolicited NA for ip on the
// interface of its VIP, paced as pacing says for the physical interface
// the frame leaves by: a VMAC's parent.
func (d *Daemon) announce(in *instance, spec *instanceSpec, pacing *garpPacing, ip netip.Addr) {
	dev := spec.vipDevOf(ip)
	a := d.announcers[dev]
	if a == nil {
		var err error
		a, err = d.host.openAnnouncer(dev)
		if err != nil {
			in.announceErrs.Add(1)
			d.log.Error("gratuitous ARP / NA", "interface", dev, "err", err)
			return
		}
		d.announcers[dev] = a
	}
	phys := dev
	if vmac := spec.vmac(); vmac != "" && dev == vmac {
		phys = spec.parent()
	}
	key, gaps := pacing.pace(phys)
	gap := gaps[0]
	if !ip.Is4() {
		gap = gaps[1]
	}
	p := d.pacers[key]
	if p == nil && gap > 0 {
		p = newPacer()
		d.pacers[key] = p
	}
	if p == nil {
		// Unpaced (the default): no closures, which escaped with the
		// paced ones and cost 48 bytes an announcement.
		d.announced(in, ip, a.Announce(ip))
		return
	}
	// Once paced, every announcement under key goes through the queue,
	// so that they keep their order.
	epoch := in.mastership.Load()
	done := func(err error) { d.announced(in, ip, err) }
	p.enqueue(paced{a: a, ip: ip, gap: gap, done: done, live: func() bool { return in.mastership.Load() == epoch }})
}

// announced counts an announcement sent (or failed) for in.
func (d *Daemon) announced(in *instance, ip netip.Addr, err error) {
	switch {
	case err != nil:
		in.announceErrs.Add(1)
		d.log.Warn("announce", "vip", ip.String(), "err", err)
	case ip.Is4():
		in.garps.Add(1)
	default:
		in.nas.Add(1)
	}
}

// resignAll stops every VRRP instance as on exit: priority 0 adverts,
// VIPs released, sockets closed.
func (d *Daemon) resignAll(now time.Time) {
	d.work.setInline(true)
	for _, in := range d.insts {
		_ = in.e.Step(now, vrrp.Shutdown{})
	}
	d.flush()
	for _, in := range d.insts {
		d.detach(in)
		d.removeVMAC(in)
	}
	d.insts = nil
}

// terminate is the end of a run (SIGTERM). BGP withdrawals go out (off
// the loop) and the VRRP instances resign (priority 0) at once, so a
// backup takes over now, not after the drain; then the rules keep
// forwarding for drain_time while the routers move the flows away; then
// everything stops and the rules go.
func (d *Daemon) terminate(now time.Time) {
	d.withdrawBGP()
	d.resignAll(now)
	d.drainBGP()
	d.stopAll(d.now())
}

// stopAll shuts everything down: the VRRP instances (resignAll), BGP, the
// balancer's rules.
func (d *Daemon) stopAll(now time.Time) {
	d.resignAll(now)
	d.stopNoAccept()
	d.stopBGP()
	_ = d.reconfigure(context.Background(), nil)
	if err := d.addrs.RestoreSysctls(); err != nil {
		d.log.Warn("restore sysctls changed for VMACs", "err", err)
	}
	for key, p := range d.pacers {
		p.close() // drops what is queued
		delete(d.pacers, key)
	}
	for name, a := range d.announcers {
		_ = a.Close()
		delete(d.announcers, name)
	}
}
