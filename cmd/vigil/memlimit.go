package main

import (
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// defaultMemoryLimit is the Go runtime's soft memory limit for `vigil run`
// unless --memory-limit or GOMEMLIMIT says otherwise. It bounds the peaks of
// a load or reload; the steady heap of a small configuration is kept small
// by defaultGOGC, far below it. It is not lower because a soft limit under
// the live heap makes the collector run without pause (the runtime lets it
// take up to half the CPU): 16 MiB, the first default, is under the live
// heap of a director with 1,000 virtual servers announced over BGP
// (64-77 MB RSS in docs/benchmarks.md), where it would have starved BFD and
// the VRRP loop. The limit is soft: it never fails an allocation.
const defaultMemoryLimit = 64 << 20

// defaultGOGC is the collector's target unless GOGC is set: a collection
// when the heap has grown by a quarter of what was live (Go's default is
// 100). The runtime keeps about 1.1 times the heap goal resident, so the
// goal is the daemon's RSS: with 1,000 instances 25 holds 0.5-1.1 MiB less
// anonymous memory than 50 (10.0-10.6 against 11.1-11.2 MiB,
// docs/benchmarks.md), for the same CPU over the start (1.1-1.2 s either
// way): the advert path allocates nothing, so only a load, a reload and
// the transitions' slow work pay for the extra collections.
const defaultGOGC = 25

// setMemoryLimit applies --memory-limit (or the defaults) to the runtime.
func setMemoryLimit(v string, log *slog.Logger) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	if v == "" {
		if os.Getenv("GOMEMLIMIT") != "" {
			return nil // the runtime read it
		}
		debug.SetMemoryLimit(defaultMemoryLimit)
		return nil
	}
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	debug.SetMemoryLimit(n)
	log.Debug("memory limit", "bytes", n)
	return nil
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

// releaser returns the heap's free pages to the kernel settleRelease after
// each call of its schedule. The runtime's background scavenger does not:
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
// set delay and release.
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
