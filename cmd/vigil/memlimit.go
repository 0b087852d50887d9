package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// defaultMemoryLimit caps the Go runtime's soft memory limit for `vigil
// run` unless --memory-limit or GOMEMLIMIT says otherwise. It bounds the
// peaks of a load or reload; the steady heap of a small configuration is
// kept far below it by the collector's target (gcTuner, or GOGC). A cap
// under the live heap makes the collector run without pause (the runtime
// lets it take up to half the CPU): 16 MiB, the first default, is under
// the live heap of a director with 1,000 virtual servers announced over
// BGP (64-77 MB RSS in docs/benchmarks.md), where it would have starved
// BFD and the VRRP loop. The limit is soft: it never fails an allocation.
const defaultMemoryLimit = 64 << 20

// defaultGOGC is the collector's target while the heap moves: a
// collection when the heap has grown by a quarter of what was live (Go's
// default is 100). The runtime keeps about 1.1 times the heap goal
// resident, so the goal is the daemon's RSS: with 1,000 instances 25 holds
// 0.5-1.1 MiB less anonymous memory than 50 (10.0-10.6 against 11.1-11.2
// MiB, docs/benchmarks.md), for the same CPU over the start (1.1-1.2 s
// either way): the advert path allocates nothing, so only a load, a reload
// and the transitions' slow work pay for the extra collections.
const defaultGOGC = 25

// heapMinimum is the smallest heap goal gcLimit gives: the runtime's own
// floor for GOGC 25 (4 MiB × 25/100).
const heapMinimum = 1 << 20

// gcQuiet is how long the tuner waits without a collection before it
// turns GOGC off.
const gcQuiet = 10 * time.Second

// setMemoryLimit applies --memory-limit (or the defaults) to the runtime
// and, unless GOGC is set, starts the gcTuner under that limit as its cap.
// stop ends the tuner: a run that returns (in tests, the process goes on)
// must not leave it changing the collector's settings.
func setMemoryLimit(v string, log *slog.Logger) (stop func(), err error) {
	limit := int64(defaultMemoryLimit)
	switch {
	case v != "":
		n, err := parseSize(v)
		if err != nil {
			return nil, err
		}
		limit = n
		log.Debug("memory limit", "bytes", n)
	case os.Getenv("GOMEMLIMIT") != "":
		limit = debug.SetMemoryLimit(-1) // what the runtime read
	}
	debug.SetMemoryLimit(limit)
	if os.Getenv("GOGC") != "" {
		// The operator chose the collector's pacing: GOGC as the runtime
		// read it, and its forced collection every two minutes (unless
		// GOGC=off).
		return func() {}, nil
	}
	return startGCTuner(limit, gcQuiet, nil).stop, nil
}

// gcTuner paces the collector in two modes. While the heap moves (the
// start, a reload, status requests, health checks that allocate) it is
// GOGC 25 (defaultGOGC) under the soft memory limit --memory-limit sets.
// Once no collection has run for gcQuiet, it turns GOGC off and sets the
// limit to what the runtime holds besides heap objects plus the heap goal
// GOGC 25 would give over the live heap (gcLimit); the first collection
// after that (the heap grew to that goal) hands the pacing back to GOGC 25.
//
// What it saves: with a GOGC the runtime forces a collection when none ran
// for two minutes (runtime.forcegcperiod), and a daemon whose steady state
// allocates nothing (the advert paths, TestRunSteadyStateAllocations)
// never reaches its heap goal, so every two minutes it was woken for
// nothing: about 50 thread wake-ups each time (the collection's workers on
// both Ps, its stop-the-world, sysmon, the scavenger), 0.4 a second
// averaged, against an idle master's one deadline a second
// (docs/benchmarks.md, issue #7). The runtime skips that collection only
// when GOGC is off; then the memory limit is the collector's only trigger.
//
// Why not GOGC off all the time, the limit re-set after every collection:
// measured, a heap that grows (1,000 instances loading) outruns it. The
// limit follows only after the collection that found the heap larger (and
// a finalizer made during a collection's mark survives it: every other
// collection), the free pages the load leaves push the runtime over the
// limit, and it collects and scavenges without pause: 179 collections and
// 1.8 s for a load that takes 56 and 0.18 s with GOGC 25.
//
// Collections are seen by a finalizer, which the runtime runs after the
// collection that found its object unreachable; each run arms the next.
type gcTuner struct {
	cap   int64 // --memory-limit, GOMEMLIMIT or defaultMemoryLimit
	quiet time.Duration

	mu      sync.Mutex
	off     bool // GOGC off, the limit from gcLimit
	timer   *time.Timer
	stopped bool
	onTune  func(off bool, limit int64) // tests: each change of mode
}

// gcSentinel is the object whose finalizer tells the tuner a collection
// ran. It holds a pointer so that it is never batched with other small
// objects by the tiny allocator, whose blocks may outlive it.
type gcSentinel struct{ t *gcTuner }

// startGCTuner sets GOGC 25 under limit and turns GOGC off after quiet
// without a collection; onTune (tests; nil) sees each change of mode.
func startGCTuner(limit int64, quiet time.Duration, onTune func(off bool, limit int64)) *gcTuner {
	t := &gcTuner{cap: limit, quiet: quiet, onTune: onTune}
	debug.SetMemoryLimit(limit)
	debug.SetGCPercent(defaultGOGC)
	t.mu.Lock()
	t.timer = time.AfterFunc(quiet, t.calm)
	t.mu.Unlock()
	t.arm()
	return t
}

// arm makes a sentinel for the next collection to find.
func (t *gcTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{t: t}, func(s *gcSentinel) {
		if s.t.collected() {
			s.t.arm()
		}
	})
}

// collected is told that a collection ran: the heap moves, so GOGC 25
// paces it until it is quiet again. False once stopped.
func (t *gcTuner) collected() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	if t.off {
		t.off = false
		debug.SetGCPercent(defaultGOGC)
		debug.SetMemoryLimit(t.cap)
		if t.onTune != nil {
			t.onTune(false, t.cap)
		}
	}
	t.timer.Reset(t.quiet) // a reset wakes nobody; only the quiet's end does
	return true
}

// calm runs when no collection ran for quiet: GOGC off, the limit set
// from the heap the last collection left.
func (t *gcTuner) calm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped || t.off {
		return
	}
	// runtime.ReadMemStats, not runtime/metrics: the first metrics.Read
	// builds the runtime's table of every metric, which it keeps (37 KB in
	// a heap profile of a one-master daemon, after the collector's last
	// run), for five numbers read once per quiet spell. ReadMemStats stops
	// the world for microseconds, once per quiet spell. The metrics server
	// still reads runtime/metrics, when it is scraped.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	objects := int64(ms.HeapAlloc) // heap objects, live or not yet collected
	free := int64(ms.HeapIdle - ms.HeapReleased)
	nonHeap := int64(ms.Sys) - int64(ms.HeapReleased) - free - objects
	limit := gcLimit(objects, nonHeap, t.cap)
	debug.SetMemoryLimit(limit) // first: GOGC off under the cap would let the heap grow to it
	debug.SetGCPercent(-1)
	t.off = true
	if t.onTune != nil {
		t.onTune(true, limit)
	}
}

// stop leaves the collector's settings as they are and changes them no
// more.
func (t *gcTuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	t.timer.Stop()
}

// gcLimit is the memory limit that gives a heap goal of GOGC 25 over live
// bytes of live heap (at least heapMinimum), for a runtime holding nonHeap
// bytes besides heap objects and their free pages (stacks, the collector's
// and the allocator's metadata, the binary's data), capped by limit. The
// runtime derives its heap goal from the limit as limit - nonHeap -
// headroom, where the headroom is 3% of that, at least 1 MiB
// (runtime/mgcpacer.go, memoryLimitHeapGoal), which the limit adds back.
func gcLimit(live, nonHeap, limit int64) int64 {
	goal := max(live+live*defaultGOGC/100, heapMinimum)
	headroom := max(goal*3/97, 1<<20)
	return min(max(nonHeap, 0)+goal+headroom, limit)
}

// parseSize reads "off", a byte count, or a number with B, KiB, MiB, GiB
// (or K, M, G, as powers of 1024).
func parseSize(v string) (int64, error) {
	if v == "off" {
		return math.MaxInt64, nil
	}
	mult := int64(1)
	num := v
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(v, u.suffix) {
			num, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q: expected a size such as 16MiB, 65536 or off", v)
	}
	return n * mult, nil
}

// settleRelease is how long after a start or reload the daemon hands the
// heap's free pages back to the kernel, once: long enough for the
// instances' first transitions (Master_Down_Interval, about 3.6 s at
// advert_int 1) and the delayed gratuitous ARPs after them
// (vrrp_garp_master_delay, 5 s), which allocate more than the load itself.
const settleRelease = 10 * time.Second

// scrapeRelease is how long after a Prometheus scrape (the last of a burst
// of them) vigil run hands the scrape's garbage back to the kernel.
const scrapeRelease = 2 * time.Second

// releaser returns the heap's free pages to the kernel delay after each
// call of its schedule (settleRelease after a start or reload,
// scrapeRelease after a scrape). The runtime's background scavenger does not:
// it leaves alone the 4 MiB chunks of the heap that were nearly full at
// the last collection (so as not to break up huge pages), and a small
// daemon's whole heap is two or three such chunks, so the pages the load
// and the transitions freed stay resident until something forces them
// out. debug.FreeOSMemory does (a collection and a full scavenge, a few
// milliseconds at 1,000 instances). Measured with bench/footprint.sh's
// configurations, /proc/PID/smaps_rollup 15-20 s after start, A/B in
// alternating runs: see docs/benchmarks.md, issue #7.
//
// The zero value waits settleRelease and calls debug.FreeOSMemory; tests
// set release.
type releaser struct {
	delay   time.Duration
	release func()

	mu sync.Mutex
	t  *time.Timer
}

// schedule (re)starts the wait: a reload during it pushes the release back.
func (r *releaser) schedule() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.t != nil {
		r.t.Reset(r.delay)
		return
	}
	if r.delay == 0 {
		r.delay = settleRelease
	}
	if r.release == nil {
		r.release = debug.FreeOSMemory
	}
	r.t = time.AfterFunc(r.delay, r.release)
}

func (r *releaser) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.t != nil {
		r.t.Stop()
	}
}
