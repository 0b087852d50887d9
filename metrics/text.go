package metrics

import (
	"bufio"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Families collects the samples of one scrape, by family.
type Families struct {
	samples map[*metric][]sample
	last    []string // the labels of the last emit, shared by the next if equal
}

type sample struct {
	labels []string // values, in the order of the family's Labels
	value  float64
}

func (f *Families) emit(m *metric, v float64, labels ...string) {
	if f.samples == nil {
		f.samples = map[*metric][]sample{}
	}
	// The caller's slice may be reused or appended to, so it is copied;
	// but an instance's dozen series or so carry the same labels, and
	// they share one copy: the samples of 1,000 instances hold 0.98 MB
	// instead of 1.55 (BenchmarkGather1000).
	if !slices.Equal(labels, f.last) {
		f.last = slices.Clone(labels)
	}
	f.samples[m] = append(f.samples[m], sample{labels: f.last, value: v})
}

// oneHot emits a series per state of states, the state its last label: 1
// for the one state (in any case) is in, 0 for the others, so that alerts
// can match on state="MASTER".
func (f *Families) oneHot(m *metric, state string, states []string, labels ...string) {
	for _, st := range states {
		f.emit(m, b2f(strings.EqualFold(state, st)), append(labels, st)...)
	}
}

// write writes the families in the order of fams, in the text format
// (https://prometheus.io/docs/instrumenting/exposition_formats/): HELP and
// TYPE, then the samples. As client_golang writes them, labels are in the
// order of their names and samples sorted by their values, so a scrape
// reads the same as before and greps for a series keep working. A family
// without samples is left out.
func (f *Families) write(w *bufio.Writer, fams []*metric) {
	for _, m := range fams {
		ss := f.samples[m]
		if len(ss) == 0 {
			continue
		}
		order := make([]int, len(m.Labels))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return strings.Compare(m.Labels[a], m.Labels[b]) })
		rows := ss // sorted in place: the samples are this scrape's
		if !slices.IsSorted(order) {
			rows = make([]sample, len(ss))
			for k, s := range ss {
				rows[k] = sample{labels: make([]string, len(order)), value: s.value}
				for i, j := range order {
					rows[k].labels[i] = s.labels[j]
				}
			}
		}
		slices.SortFunc(rows, func(a, b sample) int { return slices.Compare(a.labels, b.labels) })
		w.WriteString("# HELP " + m.Name + " " + escapeHelp(m.Help) + "\n")
		w.WriteString("# TYPE " + m.Name + " " + string(m.Kind) + "\n")
		// Piece by piece into w rather than concatenated: a string per
		// label and value was 2 of a scrape's 5 MB of allocations at
		// 1,000 instances (BenchmarkScrape1000).
		var num [32]byte
		for _, s := range rows {
			w.WriteString(m.Name)
			if len(m.Labels) > 0 {
				w.WriteByte('{')
				for i, j := range order {
					if i > 0 {
						w.WriteByte(',')
					}
					w.WriteString(m.Labels[j])
					w.WriteString(`="`)
					_, _ = labelEscaper.WriteString(w, s.labels[i])
					w.WriteByte('"')
				}
				w.WriteByte('}')
			}
			w.WriteByte(' ')
			w.Write(appendFloat(num[:0], s.value))
			w.WriteByte('\n')
		}
	}
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// WriteText writes one scrape: the vigil_ families of a snapshot (none if
// the daemon did not answer), then the Go runtime's and the process'.
func (c *Collector) WriteText(out io.Writer) error {
	w := bufio.NewWriter(out)
	c.gather().writeText(w)
	return w.Flush()
}

// gather takes one scrape's samples: the snapshot's, then the runtime's.
func (c *Collector) gather() *Families {
	var f Families
	c.Collect(&f)
	collectRuntime(&f)
	return &f
}

// writeText writes a scrape that gather took.
func (f *Families) writeText(w *bufio.Writer) {
	f.write(w, all)
	f.write(w, runtimeFams)
}

// The standard go_* and process_* families that dashboards and alerts
// read (the names and meanings of client_golang's Go and process
// collectors), kept out of Defs: they describe the process, not vigil.
var (
	runtimeFams   []*metric
	mGoroutines   = rdef("go_goroutines", Gauge, "Number of goroutines that currently exist.")
	mThreads      = rdef("go_threads", Gauge, "Number of OS threads created.")
	mGoInfo       = rdef("go_info", Gauge, "Information about the Go environment.", "version")
	mAlloc        = rdef("go_memstats_alloc_bytes", Gauge, "Number of bytes allocated in heap and currently in use.")
	mHeapInuse    = rdef("go_memstats_heap_inuse_bytes", Gauge, "Number of heap bytes that are in use.")
	mSys          = rdef("go_memstats_sys_bytes", Gauge, "Number of bytes obtained from system.")
	mNextGC       = rdef("go_memstats_next_gc_bytes", Gauge, "Number of heap bytes when next garbage collection will take place.")
	mGCCycles     = rdef("go_gc_cycles_total", Counter, "Count of completed GC cycles.")
	mGOGC         = rdef("go_gc_gogc_percent", Gauge, "Heap size target percentage configured by the user, otherwise 100.")
	mMemLimit     = rdef("go_gc_gomemlimit_bytes", Gauge, "Go runtime memory limit configured by the user, otherwise math.MaxInt64.")
	mMaxProcs     = rdef("go_sched_gomaxprocs_threads", Gauge, "The current runtime.GOMAXPROCS setting.")
	mCPU          = rdef("process_cpu_seconds_total", Counter, "Total user and system CPU time spent in seconds.")
	mRSS          = rdef("process_resident_memory_bytes", Gauge, "Resident memory size in bytes.")
	mVSZ          = rdef("process_virtual_memory_bytes", Gauge, "Virtual memory size in bytes.")
	mStart        = rdef("process_start_time_seconds", Gauge, "Start time of the process since unix epoch in seconds.")
	mOpenFDs      = rdef("process_open_fds", Gauge, "Number of open file descriptors.")
	mMaxFDs       = rdef("process_max_fds", Gauge, "Maximum number of open file descriptors.")
	processStart  = time.Now()
	clockTicksSec = 100.0 // USER_HZ, the unit of /proc/PID/stat's times on every Linux architecture Go supports
)

func rdef(name string, k Kind, help string, labels ...string) *metric {
	m := &metric{Def: Def{Name: name, Kind: k, Labels: labels, Help: help}}
	runtimeFams = append(runtimeFams, m)
	return m
}

func collectRuntime(f *Families) {
	f.emit(mGoroutines, float64(runtime.NumGoroutine()))
	f.emit(mGoInfo, 1, runtime.Version())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f.emit(mAlloc, float64(ms.HeapAlloc))
	f.emit(mHeapInuse, float64(ms.HeapInuse))
	f.emit(mSys, float64(ms.Sys))
	f.emit(mNextGC, float64(ms.NextGC))
	f.emit(mGCCycles, float64(ms.NumGC))
	// Read, not set and restored: vigil's collector tuner switches GOGC
	// between 25 and off (cmd/vigil/memlimit.go), and a restore racing
	// with it could leave GOGC off under the cap's limit.
	gogc := []rtmetrics.Sample{{Name: "/gc/gogc:percent"}}
	rtmetrics.Read(gogc)
	f.emit(mGOGC, float64(int64(gogc[0].Value.Uint64())))
	f.emit(mMemLimit, float64(debug.SetMemoryLimit(-1)))
	f.emit(mMaxProcs, float64(runtime.GOMAXPROCS(0)))
	f.emit(mStart, float64(processStart.UnixNano())/1e9)

	// /proc/self/stat after the command name: state is field 3; utime,
	// stime 14, 15; vsize 23; rss (pages) 24 (proc(5)).
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			fs := strings.Fields(string(b[i+1:]))
			num := func(field int) float64 {
				if field-3 < len(fs) {
					v, _ := strconv.ParseFloat(fs[field-3], 64)
					return v
				}
				return 0
			}
			f.emit(mCPU, (num(14)+num(15))/clockTicksSec)
			f.emit(mVSZ, num(23))
			f.emit(mRSS, num(24)*float64(os.Getpagesize()))
		}
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Threads:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				f.emit(mThreads, float64(n))
			}
		}
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		f.emit(mOpenFDs, float64(len(ents)))
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		f.emit(mMaxFDs, float64(rl.Cur))
	}
}
