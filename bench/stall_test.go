//go:build vigil_bench

package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/internal/inet"
	"vigil/internal/labtest"
	"vigil/netio"
	"vigil/vrrp/wire"
)

// TestStallFalseFailovers is issue #8's host-stall run: a vigil pair and a
// keepalived pair (VRRPv3, advert_int 10 ms, priorities 150 and 100) share
// one segment while 6 busy loops (`sh -c 'while :; do :; done'`, nice 0)
// saturate the machine's CPUs for 60 s. A false failover is the backup
// starting to advertise while its master is alive, counted on the wire by
// a sniffer in a third namespace (the same count for both
// implementations): each run of adverts from the backup with gaps under
// 200 ms is one. Runs: VIGIL_BENCH_STALL_RUNS (default 5); seconds per run:
// VIGIL_BENCH_STALL_SECONDS (default 60); busy loops: VIGIL_BENCH_STALL_HOGS
// (default 6).
func TestStallFalseFailovers(t *testing.T) {
	requireBench(t)
	runs, secs, hogs := envInt("VIGIL_BENCH_STALL_RUNS", 5), envInt("VIGIL_BENCH_STALL_SECONDS", 60), envInt("VIGIL_BENCH_STALL_HOGS", 6)
	type pair struct {
		impl string
		vrid uint8
	}
	pairs := []pair{{"vigil", 81}, {"keepalived", 82}}
	results := map[string][]int{}
	for run := 0; run < runs; run++ {
		l := newLAN(t, "bst")
		sniff, _ := addNode(t, l, "sniff", "192.0.2.250/24")
		var procs []*labtest.Daemon
		backups := map[uint8]netip.Addr{}
		for pi, p := range pairs {
			for i := 0; i < 2; i++ {
				addr := fmt.Sprintf("192.0.2.%d", 1+2*pi+i)
				h, _ := addNode(t, l, fmt.Sprintf("%s%d", p.impl[:1], i+1), addr+"/24")
				if i == 1 {
					backups[p.vrid] = netip.MustParseAddr(addr)
				}
				conf := pairConf(int(p.vrid), 150-50*i, "0.01", fmt.Sprintf("192.0.2.%d", 100+pi))
				procs = append(procs, start(t, p.impl, h, conf))
				if i == 0 {
					time.Sleep(300 * time.Millisecond) // the master first: no election race in the count
				}
			}
		}
		time.Sleep(2 * time.Second) // elected and settled
		var conn *netio.Conn
		if err := sniff.Do(func() (e error) {
			conn, e = netio.Listen("eth0", inet.IPv4, netio.Options{Multicast: true, ReadBuffer: 4 << 20})
			return e
		}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
		episodes := map[uint8]int{}
		last := map[uint8]time.Time{}
		var mu sync.Mutex
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 65536)
			for {
				_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				pkt, err := conn.ReadPacket(buf)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					continue
				}
				a, err := wire.Parse(pkt.Data, inet.IPv4)
				if err != nil || a.Priority == 0 || backups[a.VRID] != pkt.Src {
					continue
				}
				now := time.Now()
				mu.Lock()
				if now.Sub(last[a.VRID]) > 200*time.Millisecond {
					episodes[a.VRID]++
				}
				last[a.VRID] = now
				mu.Unlock()
			}
		}()
		busyLoops(t, ctx, hogs)
		<-done
		cancel()
		_ = conn.Close()
		// Every status before any daemon stops: the master's priority 0
		// advert as it stops makes its backup master at once, and a status
		// read after that reads as a failover that was not one.
		for _, c := range procs {
			if c.Kind == "vigil" {
				st, err := c.Status()
				if err != nil {
					t.Logf("vigil status: %v", err)
				} else if len(st.Instances) == 1 {
					in := st.Instances[0]
					t.Logf("vigil %s: state %s, became_master %d, loop lag max %v, adverts sent %d received %d", in.MasterAddr, in.State,
						in.Counters["became_master"], time.Duration(st.LoopLag.Max), in.Counters["adverts_sent"], in.Counters["adverts_received"])
				}
			}
		}
		for _, c := range procs {
			c.Stop()
		}
		_ = l.Close()
		for _, p := range pairs {
			results[p.impl] = append(results[p.impl], episodes[p.vrid])
		}
		t.Logf("run %d: false failovers vigil %d, keepalived %d", run+1, episodes[81], episodes[82])
	}
	tw := newTable()
	fmt.Fprintf(tw, "\nfalse failovers under CPU saturation (%d busy loops on %d CPUs, %d s per run, VRRPv3 advert_int 10 ms, both pairs at once)\n", hogs, runtime.NumCPU(), secs)
	fmt.Fprintln(tw, "impl\truns\ttotal\tper run")
	for _, p := range pairs {
		total := 0
		var all []string
		for _, n := range results[p.impl] {
			total += n
			all = append(all, strconv.Itoa(n))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", p.impl, runs, total, strings.Join(all, " "))
	}
	tw.Flush()
	for _, n := range results["vigil"] {
		if n != 0 {
			t.Errorf("vigil had false failovers under saturation: %v", results["vigil"])
			break
		}
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
