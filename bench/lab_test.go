//go:build vigil_bench

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/probe"
)

// newLAN builds the lab prefix with one segment "lan", removed when the
// test ends (a caller may Close it earlier: Close is idempotent).
func newLAN(t *testing.T, prefix string) *netlab.Lab {
	t.Helper()
	l := labtest.New(t, prefix)
	labtest.AddSegments(t, l, "lan")
	return l
}

// addNode adds host name to l with eth0 on segment "lan" at cidr; it
// returns the host and its switch-side port (for Cut and Heal).
func addNode(t *testing.T, l *netlab.Lab, name, cidr string) (*netlab.Host, string) {
	t.Helper()
	h := labtest.AddHost(t, l, name)
	return h, labtest.Connect(t, l, h, "eth0", "lan", cidr)
}

// serveName answers probes on h's :8080 with by until ctx ends.
func serveName(t *testing.T, ctx context.Context, h *netlab.Host, by string) {
	t.Helper()
	ln, err := h.Listen("tcp", ":8080")
	if err != nil {
		t.Fatal(err)
	}
	go probe.Serve(ctx, ln, by)
}

// runProber dials vip:8080 from client every 5 ms until ctx ends.
func runProber(ctx context.Context, client *netlab.Host, vip string) *probe.Prober {
	p := &probe.Prober{Addr: vip + ":8080", Period: 5 * time.Millisecond, Timeout: 20 * time.Millisecond}
	go func() { _ = client.Do(func() error { p.Run(ctx); return nil }) }()
	return p
}

// outagePair is one master/backup pair of an outage benchmark: impl runs
// conf(i, self, peer, vip) on node i (0 the master, 1 the backup; self and
// peer are the two nodes' addresses), which serve vip.
type outagePair struct {
	name, impl, vip string
	conf            func(i int, self, peer, vip string) string
}

// newTable is the writer of a benchmark's comparison table on standard
// output, where bench/*.sh read it: tab-separated columns aligned two
// spaces apart. Flush it at the end.
func newTable() *tabwriter.Writer { return tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0) }

// printOutages prints title, one outageRow per pair (the column of their
// names headed what) and the rows of more.
func printOutages(title, what string, pairs []outagePair, results [][]time.Duration, more ...string) {
	tw := newTable()
	fmt.Fprintf(tw, "\n%s\n", title)
	fmt.Fprintf(tw, "%s\tmedian\tmin\tmax\tall\n", what)
	for i, p := range pairs {
		outageRow(tw, p.name, results[i])
	}
	for _, row := range more {
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
}

// outageTrials builds lab prefix with the two nodes of each pair (pair p
// at 192.0.2.2p+1 and 192.0.2.2p+2), each answering probes as "n1" (the
// master) or "n2", and a client (192.0.2.10) dialling each pair's VIP. It
// then runs trials trials of: wait until every prober is answered by n1
// (within up), let them settle, cut every master port at once, wait for
// n2 to answer each prober, heal. It returns each pair's client-visible
// outages since the cut, in trial order.
func outageTrials(t *testing.T, prefix string, pairs []outagePair, trials int, up, settle time.Duration) [][]time.Duration {
	t.Helper()
	l := newLAN(t, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client, _ := addNode(t, l, "client", "192.0.2.10/24")
	var masters []string
	var probers []*probe.Prober
	for pi, p := range pairs {
		addr := func(i int) string { return fmt.Sprintf("192.0.2.%d", 1+2*pi+i) }
		for i := 0; i < 2; i++ {
			h, port := addNode(t, l, fmt.Sprintf("p%dn%d", pi, i+1), addr(i)+"/24")
			if i == 0 {
				masters = append(masters, port)
			}
			serveName(t, ctx, h, fmt.Sprintf("n%d", i+1))
			start(t, p.impl, h, p.conf(i, addr(i), addr(1-i), p.vip))
		}
		probers = append(probers, runProber(ctx, client, p.vip))
	}
	out := make([][]time.Duration, len(probers))
	for trial := 0; trial < trials; trial++ {
		for _, p := range probers {
			waitAnswer(t, p, "n1", up)
		}
		time.Sleep(settle)
		cut := time.Now()
		for _, port := range masters {
			if err := l.Cut(port); err != nil {
				t.Fatal(err)
			}
		}
		for i, p := range probers {
			waitAnswer(t, p, "n2", 10*time.Second)
			o, err := probe.OutageAfter(p.Samples(), cut)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = append(out[i], o.SinceEvent)
		}
		for _, port := range masters {
			if err := l.Heal(port); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// busyLoops runs n shell busy loops (nice 0) until ctx ends and returns
// once they have all exited.
func busyLoops(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	var loops []*exec.Cmd
	for range n {
		c := exec.CommandContext(ctx, "sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		loops = append(loops, c)
	}
	<-ctx.Done()
	for _, c := range loops {
		_ = c.Wait()
	}
}

// outageRow prints name, the median, min and max of d and all of d in
// trial order, tab-separated.
func outageRow(tw *tabwriter.Writer, name string, d []time.Duration) {
	sorted := slices.Sorted(slices.Values(d))
	var all []string
	for _, x := range d {
		all = append(all, x.Round(time.Millisecond).String())
	}
	fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%s\n", name, sorted[len(sorted)/2].Round(time.Millisecond),
		sorted[0].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond), strings.Join(all, " "))
}
