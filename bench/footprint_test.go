//go:build vigil_bench

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"vigil/internal/netlab"
)

// TestFootprint is issue #7's side-by-side run: for each configuration,
// vigil and keepalived 2.2.7 (all of its processes) run in turn on the
// same lab and the table gives RSS, CPU (% of one core) and wake-ups per
// second (context switches in, summed over every thread, from
// /proc/PID/task/TID/schedstat). VIGIL_BENCH_WINDOW sets the measuring
// window in seconds (default 10).
func TestFootprint(t *testing.T) {
	requireBench(t)
	window := time.Duration(envInt("VIGIL_BENCH_WINDOW", 10)) * time.Second
	l, err := netlab.New("bfp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	subnets := []string{"203.0.113", "198.51.100", "192.0.2"}
	h, err := l.AddHost("n1")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		seg := fmt.Sprintf("s%d", i)
		if err := l.AddSegment(seg); err != nil {
			t.Fatal(err)
		}
		addrs := []string{"2001:db8:0:" + strconv.Itoa(i) + "::254/64"}
		if i < 3 {
			addrs = append(addrs, subnets[i]+".254/24")
		}
		if _, err := l.Connect(h, fmt.Sprintf("eth%d", i), seg, addrs...); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // IPv6 link-local addresses (DAD)

	// instances returns n masters (priority 150, nobody else on the
	// links), VRRPv3 at advert_int ival: 250 per interface, eth0-eth2
	// IPv4, eth3 IPv6.
	instances := func(n int, ival string) string {
		var b strings.Builder
		for k := 0; k < n; k++ {
			ifi, vrid := k/250, k%250+1
			vip := fmt.Sprintf("%s.%d/24", subnets[min(ifi, 2)], vrid)
			if ifi == 3 {
				vip = fmt.Sprintf("2001:db8:0:3::%x/64", vrid)
			}
			fmt.Fprintf(&b, "vrrp_instance VI_%d {\n  interface eth%d\n  state BACKUP\n  virtual_router_id %d\n  version 3\n  priority 150\n  advert_int %s\n  virtual_ipaddress {\n    %s\n  }\n}\n", k, ifi, vrid, ival, vip)
		}
		return b.String()
	}
	checks := func() string {
		// One virtual server with 3 real servers health-checked every
		// second on the host's own addresses (TCP_CHECK to a closed port
		// on loopback answers at once).
		var b strings.Builder
		b.WriteString(instances(1, "1"))
		b.WriteString("virtual_server 203.0.113.1 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n")
		for _, rs := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
			fmt.Fprintf(&b, "  real_server %s 8080 {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 1\n    }\n  }\n", rs)
		}
		b.WriteString("}\n")
		return b.String()
	}
	type result struct {
		rssKiB, anon  int
		cpu, wakeups  float64
		threads, pids int
	}
	cases := []struct {
		name   string
		conf   string
		settle time.Duration
	}{
		{"1 master, advert_int 10 ms", instances(1, "0.01"), 3 * time.Second},
		{"1 master, advert_int 1 s (idle: 1 deadline/s)", instances(1, "1"), 5 * time.Second},
		{"100 masters, advert_int 1 s", instances(100, "1"), 6 * time.Second},
		{"1,000 masters, advert_int 1 s", instances(1000, "1"), 10 * time.Second},
		{"1 master + virtual server, 3 TCP_CHECKs at 1 s", checks(), 5 * time.Second},
	}
	res := map[string]map[string]result{}
	for _, c := range cases {
		res[c.name] = map[string]result{}
		for _, impl := range []string{"vigil", "keepalived"} {
			cmd := start(t, impl, h, c.conf)
			time.Sleep(c.settle)
			pids := procTree(cmd.Process.Pid)
			c0, w0 := cpuTicks(pids), switches(pids)
			time.Sleep(window)
			pids = procTree(cmd.Process.Pid)
			r := result{rssKiB: rssKiB(pids), anon: statusKiB(pids, "RssAnon:"), pids: len(pids), threads: len(tasks(pids))}
			r.cpu = float64(cpuTicks(pids)-c0) / window.Seconds()
			r.wakeups = float64(switches(pids)-w0) / window.Seconds()
			res[c.name][impl] = r
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
			time.Sleep(500 * time.Millisecond)
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nfootprint, vigil beside keepalived 2.2.7 (all processes), %v windows, VRRPv3\n", window)
	fmt.Fprintln(tw, "configuration\timpl\tRSS\tof which anonymous\tCPU (% of a core)\twake-ups/s\tprocesses/threads")
	for _, c := range cases {
		for _, impl := range []string{"vigil", "keepalived"} {
			r := res[c.name][impl]
			fmt.Fprintf(tw, "%s\t%s\t%d KiB\t%d KiB\t%.2f%%\t%.1f\t%d/%d\n", c.name, impl, r.rssKiB, r.anon, r.cpu, r.wakeups, r.pids, r.threads)
		}
	}
	tw.Flush()
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
