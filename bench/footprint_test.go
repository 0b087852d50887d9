//go:build vigil_bench

package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
)

// TestFootprint is issue #7's side-by-side run: for each configuration,
// vigil and keepalived 2.2.7 (all of its processes) run in turn on the
// same lab and the table gives RSS, CPU (% of one core, from the run
// time in /proc/PID/task/TID/schedstat, nanoseconds, not clock ticks:
// 0.1% of a core is one tick in a 10 s window), wake-ups per second
// (context switches in, summed over every thread, same file) and system
// calls per second (perf's raw_syscalls:sys_enter tracepoint over a
// second, shorter window, when perf is installed: deterministic where CPU
// shares a loaded machine). VIGIL_BENCH_WINDOW sets the measuring window
// in seconds (default 10); VIGIL_BENCH_ONLY=text runs only the rows whose
// name contains text.
//
// The health-check rows check real servers, a Go HTTP server in another
// namespace, and keepalived runs whole (checker and VRRP processes) for
// them. Its checker process needs IPVS: where the kernel has none
// (/proc/net/ip_vs), it exits at start and takes keepalived down, so
// keepalived runs with bench/ipvsshim preloaded, which answers the IPVS
// socket options as an empty IPVS table would (built with cc; without
// cc only its VRRP process runs, -P, and the row says so).
func TestFootprint(t *testing.T) {
	requireBench(t)
	window := time.Duration(envInt("VIGIL_BENCH_WINDOW", 10)) * time.Second
	l := labtest.New(t, "bfp")
	subnets := []string{"203.0.113", "198.51.100", "192.0.2"}
	h := labtest.AddHost(t, l, "n1")
	for i := 0; i < 4; i++ {
		seg := fmt.Sprintf("s%d", i)
		labtest.AddSegments(t, l, seg)
		addrs := []string{"2001:db8:0:" + strconv.Itoa(i) + "::254/64"}
		if i < 3 {
			addrs = append(addrs, subnets[i]+".254/24")
		}
		labtest.Connect(t, l, h, fmt.Sprintf("eth%d", i), seg, addrs...)
	}
	// peer runs the master of the backup row; rs the real servers.
	peer := labtest.AddHost(t, l, "peer")
	labtest.Connect(t, l, peer, "eth0", "s0", "203.0.113.253/24")
	rs := labtest.AddHost(t, l, "rs")
	reals := []string{"203.0.113.11", "203.0.113.12", "203.0.113.13"}
	labtest.Connect(t, l, rs, "eth0", "s0", reals[0]+"/24", reals[1]+"/24", reals[2]+"/24")
	ln, err := rs.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	time.Sleep(2 * time.Second) // IPv6 link-local addresses (DAD)

	// instances returns n instances (priority prio, VRRPv3 at advert_int
	// ival): 250 per interface, eth0-eth2 IPv4, eth3 IPv6.
	instances := func(n int, ival string, prio int) string {
		var b strings.Builder
		for k := 0; k < n; k++ {
			ifi, vrid := k/250, k%250+1
			vip := fmt.Sprintf("%s.%d/24", subnets[min(ifi, 2)], vrid)
			if ifi == 3 {
				vip = fmt.Sprintf("2001:db8:0:3::%x/64", vrid)
			}
			fmt.Fprintf(&b, "vrrp_instance VI_%d {\n  interface eth%d\n  state BACKUP\n  virtual_router_id %d\n  version 3\n  priority %d\n  advert_int %s\n  virtual_ipaddress {\n    %s\n  }\n}\n", k, ifi, vrid, prio, ival, vip)
		}
		return b.String()
	}
	masters := func(n int, ival string) string { return instances(n, ival, 150) }
	// checks is one master and a virtual server whose three real servers
	// are checked every second by the checker block check.
	checks := func(check string) string {
		var b strings.Builder
		b.WriteString(masters(1, "1"))
		b.WriteString("virtual_server 203.0.113.1 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n")
		for _, r := range reals {
			fmt.Fprintf(&b, "  real_server %s 80 {\n    weight 1\n    %s\n  }\n", r, check)
		}
		b.WriteString("}\n")
		return b.String()
	}
	_, ipvsErr := os.Stat("/proc/net/ip_vs")
	ipvs := ipvsErr == nil
	var shimEnv []string // keepalived's environment for the checks' rows
	if !ipvs {
		if shim := buildIPVSShim(t); shim != "" {
			shimEnv = []string{"LD_PRELOAD=" + shim}
		}
	}
	whole := ipvs || shimEnv != nil // keepalived's checker can run
	perf := perfWorks()
	type result struct {
		rssKiB, anon  int
		cpu, wakeups  float64
		syscalls      float64 // per second; -1 without perf
		threads, pids int
	}
	cases := []struct {
		name   string
		conf   string
		settle time.Duration
		peer   string // the configuration keepalived runs on peer meanwhile
		checks bool   // keepalived needs its checker (IPVS) for the same work
	}{
		{name: "1 master, advert_int 10 ms", conf: masters(1, "0.01"), settle: 3 * time.Second},
		{name: "1 backup, advert_int 10 ms (keepalived master on the link)", conf: masters(1, "0.01"), settle: 4 * time.Second,
			peer: instances(1, "0.01", 200)},
		{name: "1 master, advert_int 1 s (idle: 1 deadline/s)", conf: masters(1, "1"), settle: 5 * time.Second},
		{name: "100 masters, advert_int 1 s", conf: masters(100, "1"), settle: 6 * time.Second},
		{name: "1,000 masters, advert_int 1 s", conf: masters(1000, "1"), settle: 10 * time.Second},
		{name: "1 master + virtual server, 3 TCP_CHECKs at 1 s", conf: checks("TCP_CHECK {\n      connect_timeout 1\n    }"), settle: 5 * time.Second, checks: true},
		{name: "1 master + virtual server, 3 HTTP_GETs at 1 s", conf: checks("HTTP_GET {\n      url {\n        path /\n        status_code 200\n      }\n      connect_timeout 1\n    }"), settle: 5 * time.Second, checks: true},
	}
	// VIGIL_BENCH_ONLY=text runs only the rows whose name contains it.
	if only := os.Getenv("VIGIL_BENCH_ONLY"); only != "" {
		kept := cases[:0]
		for _, c := range cases {
			if strings.Contains(c.name, only) {
				kept = append(kept, c)
			}
		}
		cases = kept
	}
	res := map[string]map[string]result{}
	for _, c := range cases {
		res[c.name] = map[string]result{}
		for _, impl := range []string{"vigil", "keepalived"} {
			var peerD *labtest.Daemon
			if c.peer != "" {
				peerD = start(t, "keepalived", peer, c.peer)
				time.Sleep(time.Second)
			}
			var d *labtest.Daemon
			if impl == "keepalived" && c.checks && whole {
				// keepalived whole: VRRP and the checkers.
				d = labtest.StartKeepalivedEnv(t, h, c.conf, shimEnv)
			} else {
				d = start(t, impl, h, c.conf)
			}
			time.Sleep(max(c.settle, startPhase)) // past the start for both
			pids := procTree(d.Cmd.Process.Pid)
			c0, w0 := cpuNs(pids), switches(pids)
			time.Sleep(window)
			pids = procTree(d.Cmd.Process.Pid)
			r := result{rssKiB: rssKiB(pids), anon: statusKiB(pids, "RssAnon:"), pids: len(pids), threads: len(tasks(pids)), syscalls: -1}
			r.cpu = float64(cpuNs(pids)-c0) / float64(window) * 100
			r.wakeups = float64(switches(pids)-w0) / window.Seconds()
			if perf {
				r.syscalls = syscallRate(t, pids, 5*time.Second)
			}
			res[c.name][impl] = r
			for _, p := range []*labtest.Daemon{d, peerD} {
				if p != nil {
					p.Stop()
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	tw := newTable()
	fmt.Fprintf(tw, "\nfootprint, vigil beside keepalived 2.2.7 (all processes), %v windows, VRRPv3\n", window)
	fmt.Fprintln(tw, "configuration\timpl\tRSS\tof which anonymous\tCPU (% of a core)\twake-ups/s\tsystem calls/s\tprocesses/threads")
	for _, c := range cases {
		for _, impl := range []string{"vigil", "keepalived"} {
			r := res[c.name][impl]
			sys := "(no perf)"
			if r.syscalls >= 0 {
				sys = fmt.Sprintf("%.1f", r.syscalls)
			}
			name := impl
			switch {
			case impl != "keepalived" || !c.checks:
			case !whole:
				name = "keepalived -P (no IPVS here and no cc for bench/ipvsshim: its checker cannot run)"
			case !ipvs:
				name = "keepalived (no IPVS here: bench/ipvsshim answers its IPVS calls)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d KiB\t%d KiB\t%.2f%%\t%.1f\t%s\t%d/%d\n", c.name, name, r.rssKiB, r.anon, r.cpu, r.wakeups, sys, r.pids, r.threads)
		}
	}
	tw.Flush()
	fmt.Println("(at advert_int 10 ms, system calls/s divided by 100 is system calls per advert)")
}

// startPhase is how long every configuration runs before it is measured,
// keepalived's as vigil's: past vigil's start. 10 s after it is ready
// vigil hands the heap the load and the first transitions freed back to
// the kernel (a collection and a scavenge: 74-80 wake-ups and 6-9 ms of
// CPU, one idle master), and 10 s after that last collection it turns
// GOGC off
// (cmd/vigil/memlimit.go: releaser, gcTuner). Windows from 3-10 s after
// the start held the first, which is the start's cost, not the steady
// state's.
const startPhase = 25 * time.Second

// cpuNs is the time the threads of pids ran, in nanoseconds (the first
// field of /proc/PID/task/TID/schedstat).
func cpuNs(pids []int) int64 {
	var total int64
	for _, task := range tasks(pids) {
		b, err := os.ReadFile(task + "/schedstat")
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) == 3 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			total += n
		}
	}
	return total
}

// perfWorks reports whether perf can count system call tracepoints here.
func perfWorks() bool {
	if _, err := exec.LookPath("perf"); err != nil {
		return false
	}
	return exec.Command("perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "--", "true").Run() == nil
}

// syscallRate counts the system calls the threads of pids make over d
// (perf stat on the raw_syscalls:sys_enter tracepoint), per second.
func syscallRate(t *testing.T, pids []int, d time.Duration) float64 {
	var ps []string
	for _, p := range pids {
		ps = append(ps, strconv.Itoa(p))
	}
	out, err := exec.Command("perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", strings.Join(ps, ","),
		"--", "sleep", strconv.FormatFloat(d.Seconds(), 'f', -1, 64)).CombinedOutput()
	if err != nil {
		t.Logf("perf stat: %v: %s", err, out)
		return -1
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ",")
		if len(f) > 2 && strings.Contains(f[2], "raw_syscalls:sys_enter") {
			n, err := strconv.ParseFloat(f[0], 64)
			if err == nil {
				return n / d.Seconds()
			}
		}
	}
	t.Logf("perf stat: no count in %q", out)
	return -1
}

// tasks lists the threads of pids.
func tasks(pids []int) []string {
	var out []string
	for _, p := range pids {
		ents, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", p))
		out = append(out, ents...)
	}
	return out
}

// switches is how many times the threads of pids were scheduled in: the
// second field of /proc/PID/task/TID/schedstat counts time slices, one
// per wake-up (or preemption) of the thread.
func switches(pids []int) int {
	total := 0
	for _, task := range tasks(pids) {
		b, err := os.ReadFile(task + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) == 3 {
			n, _ := strconv.Atoi(f[2])
			total += n
		}
	}
	return total
}

// statusKiB sums a /proc/PID/status field (in kB) over pids.
func statusKiB(pids []int, field string) int {
	total := 0
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, field) {
				n, _ := strconv.Atoi(strings.Fields(l)[1])
				total += n
			}
		}
	}
	return total
}

// buildIPVSShim builds bench/ipvsshim for keepalived's checker on a kernel
// without IPVS and returns the library's path, or "" (logged) without cc.
func buildIPVSShim(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("cc"); err != nil {
		t.Logf("no cc for bench/ipvsshim: keepalived's checker cannot run here (%v)", err)
		return ""
	}
	so := filepath.Join(t.TempDir(), "ipvsshim.so")
	if out, err := exec.Command("cc", "-O2", "-shared", "-fPIC", "-o", so, "ipvsshim/ipvsshim.c", "-ldl").CombinedOutput(); err != nil {
		t.Fatalf("building bench/ipvsshim: %v\n%s", err, out)
	}
	return so
}
