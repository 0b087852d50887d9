//go:build vigil_bench

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/probe"
	"vigil/internal/testenv"
)

func requireBench(t *testing.T) {
	testenv.RequireLab(t, "keepalived")
}

func TestMain(m *testing.M) { vigilBin.Main(m) }

// vigilBin is built once per run as `make deb` builds what it ships (static,
// -trimpath): the benchmarks measure the binary operators run. vigil-bgp
// beside vigil: the daemon starts it for bgp_instance blocks.
var vigilBin = labtest.Binary{
	Pattern: "vigil-bench-",
	Pkgs:    []string{"vigil/cmd/vigil", "vigil/cmd/vigil-bgp"},
	Flags:   []string{"-trimpath"},
	Env:     []string{"CGO_ENABLED=0"},
}

func buildVigil(t *testing.T) string {
	t.Helper()
	return vigilBin.MustPath(t)
}

// start runs impl ("vigil" or keepalived, VRRP only) on conf in h until
// the test ends. vigil logs only warnings, keepalived not to the console: the
// benchmarks measure the daemons, not their logging.
func start(t *testing.T, impl string, h *netlab.Host, conf string) *labtest.Daemon {
	t.Helper()
	if impl == "vigil" {
		return labtest.StartVigil(t, h, buildVigil(t), conf, "-log-level", "warn")
	}
	return labtest.StartKeepalived(t, h, conf, "-P")
}

// writeConf writes conf to dir/keepalived.conf and returns that path.
func writeConf(t *testing.T, dir, conf string) string {
	t.Helper()
	f := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// procTree returns pid and its descendants.
func procTree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		// Every thread's list: a Go program forks from whichever thread
		// runs the goroutine (vigil-bgp is not the main thread's child).
		lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, l := range lists {
			b, err := os.ReadFile(l)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

func rssKiB(pids []int) int { return statusKiB(pids, "VmRSS:") }

// cpuTicks is utime+stime of pids, in clock ticks (1/100 s).
func cpuTicks(pids []int) int {
	total := 0
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		u, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		total += u + st
	}
	return total
}

// pairConf is one VRRPv3 instance on eth0, started as BACKUP.
func pairConf(vrid, prio int, advert, vip string) string {
	return fmt.Sprintf(`vrrp_instance VI_B {
  interface eth0
  state BACKUP
  virtual_router_id %d
  version 3
  priority %d
  advert_int %s
  virtual_ipaddress {
    %s/24
  }
}
`, vrid, prio, advert, vip)
}

type pairLab struct {
	lab    *netlab.Lab
	nodes  [2]*netlab.Host
	ports  [2]string
	client *netlab.Host
}

func newPairLab(t *testing.T, prefix string) *pairLab {
	t.Helper()
	p := &pairLab{lab: newLAN(t, prefix)}
	for i, name := range []string{"n1", "n2"} {
		p.nodes[i], p.ports[i] = addNode(t, p.lab, name, fmt.Sprintf("192.0.2.%d/24", i+1))
	}
	p.client, _ = addNode(t, p.lab, "client", "192.0.2.10/24")
	return p
}

// TestFailoverOutage measures the client-visible outage when the master's
// link is cut, VRRPv3 at 100 ms adverts, a client dialling the VIP every
// 5 ms: a vigil pair and a keepalived pair run side by side on the same
// segment (different VRIDs and VIPs), and each trial cuts both masters at
// the same instant, so both see the same machine load. It prints the
// medians side by side.
func TestFailoverOutage(t *testing.T) {
	requireBench(t)
	trials := envInt("VIGIL_BENCH_TRIALS", 7)
	conf := func(vrid int) func(i int, _, _, vip string) string {
		return func(i int, _, _, vip string) string { return pairConf(vrid, 150-50*i, "0.1", vip) }
	}
	pairs := []outagePair{
		{name: "vigil", impl: "vigil", vip: "192.0.2.100", conf: conf(77)},
		{name: "keepalived", impl: "keepalived", vip: "192.0.2.101", conf: conf(78)},
	}
	results := outageTrials(t, "bfo", pairs, trials, 15*time.Second, 500*time.Millisecond)
	printOutages(fmt.Sprintf("client-visible outage after cutting the master's link (VRRPv3, advert_int 0.1 s, dial every 5 ms, %d trials, both pairs cut at once)", trials),
		"impl", pairs, results, fmt.Sprintf("protocol floor (Master_Down_Interval, priority 100)\t%v", 300*time.Millisecond+156*100*time.Millisecond/256))
	vm, km := median(results[0]), median(results[1])
	if vm > km+25*time.Millisecond {
		t.Errorf("vigil's median outage %v is slower than keepalived's %v", vm, km)
	}
}

func median(d []time.Duration) time.Duration { return slices.Sorted(slices.Values(d))[len(d)/2] }

func waitAnswer(t *testing.T, p *probe.Prober, from string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s, ok := p.Last(); ok && s.By == from {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no answer from %s within %v", from, timeout)
}

// TestResources measures, side by side, the memory of a node running 100
// VRRP instances and the CPU of a master advertising every 10 ms.
func TestResources(t *testing.T) {
	requireBench(t)
	var many strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&many, `vrrp_instance VI_%d {
  interface eth0
  state BACKUP
  virtual_router_id %d
  version 3
  priority 150
  advert_int 1
  virtual_ipaddress {
    203.0.113.%d/24
  }
}
`, i, i, i)
	}
	type row struct {
		impl           string
		rss100         int
		cpuMaster10ms  float64
		cpuBackup10ms  float64
		cpu100Instance float64
	}
	var rows []row
	const window = 10 * time.Second
	for _, impl := range []string{"vigil", "keepalived"} {
		r := row{impl: impl}
		p := newPairLab(t, "brs"+impl[:1])
		c := start(t, impl, p.nodes[0], many.String())
		time.Sleep(5 * time.Second) // every instance has become master and settled
		pids := procTree(c.Cmd.Process.Pid)
		r.rss100 = rssKiB(pids)
		t0 := cpuTicks(pids)
		time.Sleep(window)
		r.cpu100Instance = float64(cpuTicks(pids)-t0) / window.Seconds()
		c.Stop()

		m := start(t, impl, p.nodes[0], pairConf(77, 150, "0.01", "192.0.2.100"))
		b := start(t, impl, p.nodes[1], pairConf(77, 100, "0.01", "192.0.2.100"))
		time.Sleep(2 * time.Second)
		mp, bp := procTree(m.Cmd.Process.Pid), procTree(b.Cmd.Process.Pid)
		m0, b0 := cpuTicks(mp), cpuTicks(bp)
		time.Sleep(window)
		r.cpuMaster10ms = float64(cpuTicks(mp)-m0) / window.Seconds()
		r.cpuBackup10ms = float64(cpuTicks(bp)-b0) / window.Seconds()
		rows = append(rows, r)
	}
	tw := newTable()
	fmt.Fprintln(tw, "\nresources (CPU in % of one core over 10 s; RSS summed over the process tree)")
	fmt.Fprintln(tw, "impl\tRSS, 100 instances\tCPU, 100 instances at 1 s\tCPU master at 10 ms\tCPU backup at 10 ms")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d KiB\t%.1f%%\t%.1f%%\t%.1f%%\n", r.impl, r.rss100, r.cpu100Instance, r.cpuMaster10ms, r.cpuBackup10ms)
	}
	tw.Flush()
}
