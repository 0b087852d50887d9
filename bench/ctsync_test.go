//go:build vigil_bench

package bench

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ti-mo/conntrack"

	"vigil/control"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// Connection sync end to end (issue 9): two vigil directors on one LAN,
// lvs_sync_daemon with an HMAC key, one NAT virtual server. The master's
// conntrack table is filled with N established flows to the VIP (10,000
// and 100,000; created through ctnetlink, as the kernel would for real
// clients: the sync sees the same NEW events), then new flows are created
// at rising rates for a few seconds each. A rate is kept up with when the
// backup holds every flow one second after the burst ends. The CPU of
// both vigil processes is measured over each burst, and the full tables
// the master sent during it and its second are counted (a burst's events
// once waited behind a full table).

const syncBenchConf = `global_defs {
  lvs_sync_daemon eth0 VI id 60
  lvs_sync_auth_key bench-sync-key-0123456789
}
vrrp_instance VI {
  interface eth0
  state BACKUP
  virtual_router_id 60
  version 3
  priority @PRIO@
  advert_int 0.1
  virtual_ipaddress { 192.0.2.100/24 }
}
virtual_server 192.0.2.100 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.50 80 {
  }
}
`

const syncVIP = "192.0.2.100"

// ctFiller creates established TCP flows to the VIP in h's namespace,
// each with its own client address and port, over ctWorkers netlink
// sockets at once (one socket makes about 17,000 a second here).
type ctFiller struct {
	c    []*conntrack.Conn
	next uint32
}

const ctWorkers = 4

func newCTFiller(t *testing.T, h *netlab.Host) *ctFiller {
	t.Helper()
	f := &ctFiller{}
	for range ctWorkers {
		if err := h.Do(func() error {
			c, err := conntrack.Dial(nil)
			f.c = append(f.c, c)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, c := range f.c {
			c.Close()
		}
	})
	return f
}

// create adds n flows; it returns how many the kernel took.
func (f *ctFiller) create(n int) (int, error) {
	vip := netip.MustParseAddr(syncVIP)
	first := f.next
	f.next += uint32(n)
	var wg sync.WaitGroup
	oks := make([]int, len(f.c))
	errs := make([]error, len(f.c))
	for w, c := range f.c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := first + uint32(w); k < first+uint32(n); k += uint32(len(f.c)) {
				// Clients in 203.0.113.0/24: 256 addresses x 60,000 ports.
				src := netip.AddrFrom4([4]byte{203, 0, 113, byte(k / 60000)})
				port := uint16(1024 + k%60000)
				fl := conntrack.NewFlow(6, conntrack.StatusAssured|conntrack.StatusSeenReply|conntrack.StatusConfirmed, src, vip, port, 80, 600, 0)
				fl.ProtoInfo.TCP = &conntrack.ProtoInfoTCP{State: 3} // ESTABLISHED
				if err := c.Create(fl); err != nil {
					errs[w] = err
					return
				}
				oks[w]++
			}
		}()
	}
	wg.Wait()
	ok := 0
	for _, o := range oks {
		ok += o
	}
	for _, err := range errs {
		if err != nil {
			return ok, err
		}
	}
	return ok, nil
}

// slowStatus counts status calls that did not answer within labtest.VigilStatus's
// 3 s (the machine is shared and loaded; see docs/benchmarks.md).
var slowStatus int

func syncState(t *testing.T, sock string) control.SyncStatus {
	t.Helper()
	s, err := labtest.VigilStatus(sock)
	for try := 0; err != nil && try < 5; try++ {
		slowStatus++
		s, err = labtest.VigilStatus(sock)
	}
	if err != nil {
		t.Fatal(err)
	}
	if s.Sync == nil {
		t.Fatal("no connection_sync in the status")
	}
	return *s.Sync
}

func TestConnSyncLoad(t *testing.T) {
	testenv.RequireLab(t, "conntrack")
	sizes := []int{10000, 100000}
	if s := os.Getenv("VIGIL_BENCH_SYNC_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	rates := []int{5000, 10000, 20000, 40000}
	const burst = 2 * time.Second

	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "established\toffered new/s\tcreated new/s\tbackup has after 1 s\tkept up\tall there after the burst\tgaps\tfull tables sent\tlag\tmaster CPU\tbackup CPU\t")
	for _, size := range sizes {
		l := newLAN(t, fmt.Sprintf("bcs%d", size/1000))
		n1, _ := addNode(t, l, "n1", "192.0.2.1/24")
		n2, _ := addNode(t, l, "n2", "192.0.2.2/24")
		c1 := start(t, "vigil", n1, strings.ReplaceAll(syncBenchConf, "@PRIO@", "150"))
		c2 := start(t, "vigil", n2, strings.ReplaceAll(syncBenchConf, "@PRIO@", "100"))
		s1, s2 := c1.Ctl, c2.Ctl
		labtest.WaitFor(t, 20*time.Second, "n1 master and n2 synced", func() bool {
			a, err1 := labtest.VigilStatus(s1)
			bb, err2 := labtest.VigilStatus(s2)
			return err1 == nil && err2 == nil && a.Sync != nil && bb.Sync != nil && a.Sync.Master && !bb.Sync.Master && bb.Sync.Synced &&
				len(a.Instances) == 1 && a.Instances[0].State == "MASTER"
		})
		f := newCTFiller(t, n1)
		t0 := time.Now()
		if got, err := f.create(size); err != nil {
			t.Fatalf("preload: %d flows, then %v", got, err)
		}
		preload := time.Since(t0)
		labtest.WaitFor(t, 60*time.Second, fmt.Sprintf("n2 to hold the %d preloaded flows", size), func() bool {
			return syncState(t, s2).Entries >= size
		})
		t.Logf("%d flows created in %v; the backup held them all after %v", size, preload.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		total := size
		for _, rate := range rates {
			gaps0, fulls0 := syncState(t, s2).Gaps, syncState(t, s1).FullSent
			p1, p2 := procTree(c1.Cmd.Process.Pid), procTree(c2.Cmd.Process.Pid)
			t1, t2 := cpuTicks(p1), cpuTicks(p2)
			begin := time.Now()
			created := 0
			var err error
			// 100 steps a second, each creating its share.
			for step := 1; time.Since(begin) < burst; step++ {
				want := rate * step / 100
				var n int
				n, err = f.create(want - created)
				created += n
				if err != nil {
					break
				}
				if d := time.Until(begin.Add(time.Duration(step) * 10 * time.Millisecond)); d > 0 {
					time.Sleep(d)
				}
			}
			took := time.Since(begin)
			total += created
			time.Sleep(time.Second)
			cpu1 := float64(cpuTicks(p1)-t1) / 100 / time.Since(begin).Seconds() * 100
			cpu2 := float64(cpuTicks(p2)-t2) / 100 / time.Since(begin).Seconds() * 100
			st := syncState(t, s2)
			kept := st.Entries >= total
			// How long until the backup has them all (a lost datagram is
			// a gap, repaired by a full table).
			all := time.Since(begin)
			for !kept && time.Since(begin) < 40*time.Second {
				time.Sleep(50 * time.Millisecond)
				if syncState(t, s2).Entries >= total {
					all = time.Since(begin)
					break
				}
			}
			allText := "≤ 1 s"
			switch {
			case syncState(t, s2).Entries < total:
				allText = "> 40 s"
			case !kept:
				allText = fmt.Sprintf("%.1f s", (all - took).Seconds())
			}
			fmt.Fprintf(tw, "%d\t%d\t%.0f\t%d of %d\t%v\t%s\t%d\t%d\t%v\t%.0f%%\t%.0f%%\t\n", size, rate, float64(created)/took.Seconds(),
				st.Entries, total, kept, allText, syncState(t, s2).Gaps-gaps0, syncState(t, s1).FullSent-fulls0, time.Duration(st.Lag).Round(100*time.Microsecond), cpu1, cpu2)
			if err != nil {
				t.Logf("rate %d: creating flows failed after %d: %v", rate, created, err)
				break
			}
			if !kept {
				break // a higher rate would not keep up either
			}
		}
	}
	tw.Flush()
	t.Logf("connection sync, end to end (two vigil directors, one LAN, HMAC on; new flows for %v per rate; %d status calls slower than 3 s):\n%s", burst, slowStatus, b.String())
}
