//go:build vigil_bench

package bench

import (
	"context"
	"fmt"
	"net"
	"sort"
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
	if err := l.AddSegment("lan"); err != nil {
		t.Fatal(err)
	}
	return l
}

// addNode adds host name to l with eth0 on segment "lan" at cidr; it
// returns the host and its switch-side port (for Cut and Heal).
func addNode(t *testing.T, l *netlab.Lab, name, cidr string) (*netlab.Host, string) {
	t.Helper()
	h, err := l.AddHost(name)
	if err != nil {
		t.Fatal(err)
	}
	port, err := l.Connect(h, "eth0", "lan", cidr)
	if err != nil {
		t.Fatal(err)
	}
	return h, port
}

// serveName answers probes on h's :8080 with by until ctx ends.
func serveName(t *testing.T, ctx context.Context, h *netlab.Host, by string) {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() error {
		var e error
		ln, e = net.Listen("tcp", ":8080")
		return e
	}); err != nil {
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

// outageTrials runs trials trials of: wait until every prober is
// answered by n1 (the masters), let them settle, cut every master port at
// once, wait for n2 to answer each prober, heal. It returns each prober's
// client-visible outages since the cut, in trial order.
func outageTrials(t *testing.T, l *netlab.Lab, trials int, up, settle time.Duration, masters []string, probers []*probe.Prober) [][]time.Duration {
	t.Helper()
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

// outageRow prints name, the median, min and max of d and all of d in
// trial order, tab-separated.
func outageRow(tw *tabwriter.Writer, name string, d []time.Duration) {
	sorted := append([]time.Duration(nil), d...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var all []string
	for _, x := range d {
		all = append(all, x.Round(time.Millisecond).String())
	}
	fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%s\n", name, sorted[len(sorted)/2].Round(time.Millisecond),
		sorted[0].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond), strings.Join(all, " "))
}
