//go:build vigil_bench

package bench

// BFD benchmarks (issue #11), vigil against keepalived 2.2.7 in the same
// run on the same lab: the outage bfd_takeover gives at advert_int 1 s,
// false BFD downs under CPU saturation, the CPU of one 10 ms session, and
// how late BFD's timer fires while the daemon loop is busy with reloads
// and nft applies. Run as root: bash bench/bfd.sh

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/netlab"
)

// startBFD runs vigil or keepalived with its BFD child (logging to the
// console, where the test counts its downs) on conf in h.
func startBFD(t *testing.T, impl string, h *netlab.Host, conf string) *labtest.Daemon {
	t.Helper()
	if impl == "vigil" {
		return labtest.StartVigil(t, h, buildVigil(t), conf, "-log-level", "warn")
	}
	return labtest.StartKeepalived(t, h, conf, "-l", "-D")
}

const takeoverPair = `global_defs { vrrp_version 3 }
@BFD@
vrrp_instance VI_B {
  interface eth0
  state BACKUP
  virtual_router_id @VRID@
  priority @PRIO@
  advert_int @ADV@
  unicast_src_ip @SRC@
  unicast_peer { @PEER@ }
  virtual_ipaddress { @VIP@/24 }
  @TAKEOVER@
}
`

const bfdBlock = `bfd_instance peer {
  neighbor_ip @PEER@
  source_ip @SRC@
  min_rx 10
  min_tx 10
  multiplier 3
}`

// TestBFDOutage: the client-visible outage when the master's link is cut:
// vigil at advert_int 1 s with BFD 10 ms x 3 and bfd_takeover, vigil at
// advert_int 1 s without BFD, keepalived at advert_int 0.1 s. Priorities
// 254 and 250 (Skew_Time 23 ms at 1 s); all three pairs cut at once.
func TestBFDOutage(t *testing.T) {
	requireBench(t)
	trials := envInt("VIGIL_BENCH_TRIALS", 5)
	conf := func(vrid int, adv string, bfd bool) func(i int, self, peer, vip string) string {
		return func(i int, self, peer, vip string) string {
			block, takeover := "", ""
			if bfd {
				block, takeover = bfdBlock, "bfd_takeover peer"
			}
			conf := strings.NewReplacer("@BFD@", block, "@TAKEOVER@", takeover).Replace(takeoverPair)
			return strings.NewReplacer("@VRID@", strconv.Itoa(vrid), "@PRIO@", strconv.Itoa(254-4*i), "@ADV@", adv,
				"@SRC@", self, "@PEER@", peer, "@VIP@", vip).Replace(conf)
		}
	}
	pairs := []outagePair{
		{name: "vigil, advert_int 1 s, BFD 10 ms x 3, bfd_takeover", impl: "vigil", vip: "192.0.2.100", conf: conf(80, "1", true)},
		{name: "vigil, advert_int 1 s, no BFD", impl: "vigil", vip: "192.0.2.101", conf: conf(81, "1", false)},
		{name: "keepalived 2.2.7, advert_int 0.1 s", impl: "keepalived", vip: "192.0.2.102", conf: conf(82, "0.1", false)},
	}
	// 1.5 s settling: BFD Up again and at 10 ms.
	results := outageTrials(t, "bbo", pairs, trials, 20*time.Second, 1500*time.Millisecond)
	printOutages(fmt.Sprintf("client-visible outage after cutting the master's link (VRRPv3, priorities 254/250, dial every 5 ms, %d trials, all pairs cut at once)", trials),
		"setup", pairs, results)
	if m := median(results[0]); m >= 100*time.Millisecond {
		t.Errorf("median outage with bfd_takeover %v, target under 100 ms", m)
	}
}

const bfdOnly = `bfd_instance peer {
  neighbor_ip @PEER@
  source_ip @SRC@
  min_rx @MS@
  min_tx @MS@
  multiplier 3
}
`

var kaDown = regexp.MustCompile(`(?i)Entering down state`)

// TestBFDFalseDowns: a vigil pair and a keepalived pair run one BFD session
// each, first idle (CPU of one session over 10 s: vigil's BFD process and
// its daemon apart, against keepalived's BFD child), then for VIGIL_BENCH_BUSY seconds (60) with 6
// busy loops on the machine's 2 CPUs; false downs are counted on all four
// ends, at 50 ms x 3 and at 10 ms x 3.
func TestBFDFalseDowns(t *testing.T) {
	requireBench(t)
	busy := time.Duration(envInt("VIGIL_BENCH_BUSY", 60)) * time.Second
	tw := newTable()
	fmt.Fprintf(tw, "\nBFD sessions under load: false downs (Up->Down on either end) while 6 busy loops run for %v; CPU of one idle session over 10 s\n", busy)
	fmt.Fprintln(tw, "interval\timpl\tfalse downs\tCPU, one session (% of a core)")
	for _, ms := range []int{50, 10} {
		l := newLAN(t, fmt.Sprintf("bbf%d", ms))
		ends := map[string][]*labtest.Daemon{}
		for pi, impl := range []string{"vigil", "keepalived"} {
			for i := 0; i < 2; i++ {
				a := func(i int) string { return fmt.Sprintf("192.0.2.%d", 1+2*pi+i) }
				h, _ := addNode(t, l, fmt.Sprintf("%s%d", impl[:1], i), a(i)+"/24")
				conf := strings.NewReplacer("@PEER@", a(1-i), "@SRC@", a(i), "@MS@", strconv.Itoa(ms)).Replace(bfdOnly)
				ends[impl] = append(ends[impl], startBFD(t, impl, h, conf))
			}
		}
		// Up first.
		labtest.WaitFor(t, 10*time.Second, "vigil's session Up", func() bool {
			st, err := ends["vigil"][0].Status()
			return err == nil && len(st.BFD) == 1 && st.BFD[0].State == "Up"
		})
		time.Sleep(3 * time.Second)
		kaDowns := func() int {
			n := 0
			for _, e := range ends["keepalived"] {
				n += len(kaDown.FindAllString(e.Out.String(), -1))
			}
			return n
		}
		vFlaps := func() uint64 {
			var n uint64
			for _, e := range ends["vigil"] {
				if st, err := e.Status(); err == nil && len(st.BFD) == 1 {
					n += st.BFD[0].Flaps
				}
			}
			return n
		}
		// CPU of one idle session.
		// vigil's daemon and its BFD process (its child, `vigil _bfd`)
		// apart, against keepalived's BFD child.
		vPids := procTree(ends["vigil"][0].Cmd.Process.Pid)
		vDaemon, vBFD := vPids[:1], vPids[1:]
		kPid := 0
		if b, err := os.ReadFile(filepath.Join(ends["keepalived"][0].Dir, "bfd.pid")); err == nil {
			kPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		d0, v0, k0 := cpuTicks(vDaemon), cpuTicks(vBFD), cpuTicks([]int{kPid})
		time.Sleep(10 * time.Second)
		dCPU, vCPU, kCPU := float64(cpuTicks(vDaemon)-d0)/10, float64(cpuTicks(vBFD)-v0)/10, float64(cpuTicks([]int{kPid})-k0)/10
		// Then saturate.
		vBefore, kBefore := vFlaps(), kaDowns()
		ctx, cancel := context.WithTimeout(context.Background(), busy)
		busyLoops(t, ctx, 6)
		cancel()
		time.Sleep(2 * time.Second)
		vd, kd := vFlaps()-vBefore, kaDowns()-kBefore
		fmt.Fprintf(tw, "%d ms x 3\tvigil\t%d\t%.1f%% (BFD process; the daemon %.1f%%)\n", ms, vd, vCPU, dCPU)
		fmt.Fprintf(tw, "%d ms x 3\tkeepalived 2.2.7\t%d\t%.1f%% (BFD child)\n", ms, kd, kCPU)
		if st, err := ends["vigil"][0].Status(); err == nil && st.BFDRunner != nil {
			fmt.Fprintf(tw, "%d ms x 3\tvigil's BFD timer\tlate at most %v\t%d wakes later than the interval\n", ms,
				time.Duration(st.BFDRunner.WakeLateMax).Round(time.Microsecond), st.BFDRunner.LateOverInterval)
		}
		if ms == 50 && vd != 0 {
			t.Errorf("vigil had %d false downs at 50 ms x 3, target 0", vd)
		}
		_ = l.Close()
	}
	tw.Flush()
}

// TestBFDLoopLoad: vigil runs a 10 ms x 3 session beside 200 virtual
// servers (an nft apply each reload) and is reloaded 30 times in a row
// with a changed real server weight each time; BFD's timer lateness is
// compared with the daemon loop's own lag.
func TestBFDLoopLoad(t *testing.T) {
	requireBench(t)
	l := newLAN(t, "bbl")
	var ds []*labtest.Daemon
	var confs []string
	for i := 0; i < 2; i++ {
		h, _ := addNode(t, l, fmt.Sprintf("n%d", i), fmt.Sprintf("192.0.2.%d/24", i+1))
		conf := strings.NewReplacer("@PEER@", fmt.Sprintf("192.0.2.%d", 2-i), "@SRC@", fmt.Sprintf("192.0.2.%d", i+1), "@MS@", "10").Replace(bfdOnly)
		if i == 0 {
			conf += virtualServers(200, 1)
		}
		ds, confs = append(ds, startBFD(t, "vigil", h, conf)), append(confs, conf)
	}
	labtest.WaitFor(t, 10*time.Second, "the session Up", func() bool {
		st, err := ds[0].Status()
		return err == nil && len(st.BFD) == 1 && st.BFD[0].State == "Up"
	})
	time.Sleep(2 * time.Second)
	st0, _ := ds[0].Status()
	start := time.Now()
	const reloads = 30
	for i := 0; i < reloads; i++ {
		ds[0].Write(t, strings.Replace(confs[0], virtualServers(200, 1), virtualServers(200, 2+i%5), 1))
		if _, err := ds[0].ControlReload(30 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	st, _ := ds[0].Status()
	peer, _ := ds[1].Status()
	tw := newTable()
	fmt.Fprintf(tw, "\nBFD 10 ms x 3 while vigil reloads %d times (200 virtual servers, nft apply each) in %v\n", reloads, took.Round(time.Millisecond))
	fmt.Fprintln(tw, "measure\tvalue")
	fmt.Fprintf(tw, "daemon loop lag, max\t%v\n", time.Duration(st.LoopLag.Max).Round(time.Microsecond))
	if r := st.BFDRunner; r != nil {
		fmt.Fprintf(tw, "BFD timer late, max (whole run)\t%v\n", time.Duration(r.WakeLateMax).Round(time.Microsecond))
		fmt.Fprintf(tw, "BFD wakes later than the 10 ms interval\t%d of %d\n", r.LateOverInterval-st0.BFDRunner.LateOverInterval, r.Wakes-st0.BFDRunner.Wakes)
	}
	fmt.Fprintf(tw, "session flaps on this end / the peer\t%d / %d\n", st.BFD[0].Flaps-st0.BFD[0].Flaps, peer.BFD[0].Flaps)
	tw.Flush()
	if st.BFD[0].Flaps != st0.BFD[0].Flaps {
		t.Errorf("the session flapped while the daemon reloaded")
	}
}

// virtualServers is n NAT virtual servers of one real server each, weight w.
func virtualServers(n, w int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "virtual_server 198.51.100.%d %d {\n  protocol TCP\n  lb_algo rr\n  lb_kind NAT\n  real_server 203.0.113.1 80 {\n    weight %d\n  }\n}\n", 1+i/200, 1000+i, w)
	}
	return b.String()
}
