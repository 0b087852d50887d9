//go:build vigil_bench

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// The BGP benchmarks (issue #13): one director announces 1 or 1,000
// virtual servers (IPv6 addresses of a virtual_server_group, over an
// MP-BGP session) to FRR in a router namespace; its one real server's
// health decides the quorum. Latency is from the daemon's log line of the
// quorum change to the router's FIB holding all (or none) of the
// prefixes, polled every 5 ms.

type bgpBench struct {
	t      *testing.T
	lab    *netlab.Lab
	router *netlab.Host
	dir    *netlab.Host
	rs     *netlab.Host
	frr    *labtest.FRR
}

func newBGPBench(t *testing.T) *bgpBench {
	t.Helper()
	testenv.RequireTool(t, "vtysh", "nft")
	l := labtest.New(t, "bgpbench")
	labtest.AddSegments(t, l, "back")
	b := &bgpBench{t: t, lab: l}
	add := func(name string, addrs ...string) *netlab.Host {
		h := labtest.AddHost(t, l, name)
		labtest.Connect(t, l, h, "eth0", "back", addrs...)
		return h
	}
	b.router = add("router", "198.51.100.254/24", "2001:db8:100::254/64")
	b.dir = add("dir", "198.51.100.1/24", "2001:db8:100::1/64")
	b.rs = add("rs", "2001:db8:100::11/64")
	for _, h := range []*netlab.Host{b.router, b.dir, b.rs} {
		if out, err := h.Run("sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.eth0.accept_dad=0"); err != nil {
			t.Fatal(out, err)
		}
	}
	// The real server: a listener that accepts and closes, for TCP_CHECK.
	time.Sleep(300 * time.Millisecond) // the address leaves tentative state
	ln, err := b.rs.Listen("tcp", "[2001:db8:100::11]:80")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	b.startFRR()
	return b
}

func (b *bgpBench) startFRR() {
	conf := `router bgp 65000
 bgp router-id 198.51.100.254
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor 2001:db8:100::1 remote-as 65001
 neighbor 2001:db8:100::1 timers connect 1
 address-family ipv6 unicast
  neighbor 2001:db8:100::1 activate
  maximum-paths 8
 exit-address-family
`
	labtest.StartFRR(b.t, b.router, map[string]string{"zebra.conf": "hostname router\n", "bgpd.conf": conf}, "bgpd")
}

// conf is the director's keepalived.conf: n virtual servers
// (2001:db8:200::1 on), announced when bgp is set.
func bgpBenchConf(n int, bgp bool) string {
	var s strings.Builder
	if bgp {
		s.WriteString("bgp_instance EDGE {\n  local_as 65001\n  router_id 198.51.100.1\n  drain_time 0\n  neighbor 2001:db8:100::254 {\n    remote_as 65000\n  }\n}\n")
	}
	fmt.Fprintf(&s, "virtual_server_group VIPS {\n  2001:db8:200::1-%x 80\n}\n", n)
	s.WriteString("virtual_server group VIPS {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n")
	if bgp {
		s.WriteString("  bgp_announce EDGE\n")
	}
	s.WriteString("  real_server 2001:db8:100::11 80 {\n    TCP_CHECK {\n      connect_timeout 1\n      retry 0\n    }\n  }\n}\n")
	return s.String()
}

// fibCount counts the router's BGP routes to 2001:db8:200::/64.
func (b *bgpBench) fibCount() int {
	out, err := b.router.Run("ip", "-6", "route", "show", "proto", "bgp")
	if err != nil {
		return -1
	}
	return strings.Count(out, "2001:db8:200::")
}

// logWatch records the time of the first log line matching each pattern.
type logWatch struct {
	mu   sync.Mutex
	seen map[string]time.Time
	pats map[string]*regexp.Regexp
}

var logTime = regexp.MustCompile(`time=(\S+)`)

func (w *logWatch) run(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		for name, p := range w.pats {
			if !p.MatchString(l) {
				continue
			}
			m := logTime.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				continue
			}
			w.mu.Lock()
			if _, ok := w.seen[name]; !ok {
				w.seen[name] = at
			}
			w.mu.Unlock()
		}
	}
}

func (w *logWatch) wait(t *testing.T, name string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		at, ok := w.seen[name]
		w.mu.Unlock()
		if ok {
			return at
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %s log line in %v", name, timeout)
	return time.Time{}
}

func (w *logWatch) reset() {
	w.mu.Lock()
	w.seen = map[string]time.Time{}
	w.mu.Unlock()
}

func (b *bgpBench) startVigil(conf string, w *logWatch) *exec.Cmd {
	b.t.Helper()
	dir := b.t.TempDir()
	f := writeConf(b.t, dir, conf)
	cmd := b.dir.Command(context.Background(), buildVigil(b.t), "run", "-f", f, "-control", filepath.Join(dir, "s"), "-log-level", "info")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if w == nil {
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	} else {
		go w.run(pr)
	}
	b.t.Cleanup(func() { pw.Close() }) // after Stop: the process has exited
	if err := b.dir.Start(cmd); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { labtest.Stop(cmd) })
	return cmd
}

func (b *bgpBench) waitFIB(want int, timeout time.Duration) time.Time {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b.fibCount() == want {
			return time.Now()
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.t.Fatalf("the router's FIB did not reach %d routes in %v (has %d)", want, timeout, b.fibCount())
	return time.Time{}
}

func TestBGPLatency(t *testing.T) {
	requireBench(t)
	b := newBGPBench(t)
	type row struct {
		n                  int
		withdraw, announce []time.Duration
	}
	var rows []row
	for _, n := range []int{1, 1000} {
		w := &logWatch{seen: map[string]time.Time{}, pats: map[string]*regexp.Regexp{
			"down": regexp.MustCompile(`virtual server quorum.?down|quorum lost|QuorumDown`),
			"up":   regexp.MustCompile(`virtual server quorum.?up|QuorumUp`),
		}}
		cmd := b.startVigil(bgpBenchConf(n, true), w)
		b.waitFIB(n, 60*time.Second)
		r := row{n: n}
		for trial := 0; trial < 5; trial++ {
			w.reset()
			block := b.dir.Command(context.Background(), "nft", "-f", "-")
			block.Stdin = strings.NewReader("table inet benchblock {\n chain o {\n  type filter hook output priority 0;\n  tcp dport 80 drop\n }\n}\n")
			if out, err := block.CombinedOutput(); err != nil {
				t.Fatal(string(out), err)
			}
			t0 := w.wait(t, "down", 20*time.Second)
			t1 := b.waitFIB(0, 30*time.Second)
			r.withdraw = append(r.withdraw, t1.Sub(t0))
			b.dir.Run("nft", "delete", "table", "inet", "benchblock")
			t2 := w.wait(t, "up", 20*time.Second)
			t3 := b.waitFIB(n, 60*time.Second)
			r.announce = append(r.announce, t3.Sub(t2))
		}
		rows = append(rows, r)
		labtest.Stop(cmd)
		b.waitFIB(0, 30*time.Second)
	}
	tw := newTable()
	fmt.Fprintln(tw, "\nBGP: quorum change (daemon log) → router FIB (FRR, MP-BGP over IPv6), median and worst of 5")
	fmt.Fprintln(tw, "virtual servers\twithdraw median\twithdraw worst\tannounce median\tannounce worst")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%v\t%v\t%v\t%v\n", r.n, median(r.withdraw).Round(time.Millisecond), worst(r.withdraw).Round(time.Millisecond),
			median(r.announce).Round(time.Millisecond), worst(r.announce).Round(time.Millisecond))
	}
	tw.Flush()
}

func worst(d []time.Duration) time.Duration { return slices.Max(d) }

func TestBGPResources(t *testing.T) {
	requireBench(t)
	b := newBGPBench(t)
	const window = 10 * time.Second
	tw := newTable()
	fmt.Fprintln(tw, "\nBGP: one director, 1,000 virtual servers (RSS after settling; CPU in % of one core over 10 s idle)")
	fmt.Fprintln(tw, "director\tRSS\tCPU")
	for _, bgp := range []bool{false, true} {
		cmd := b.startVigil(bgpBenchConf(1000, bgp), nil)
		if bgp {
			b.waitFIB(1000, 60*time.Second)
		}
		time.Sleep(5 * time.Second)
		pids := procTree(cmd.Process.Pid)
		rss := rssKiB(pids)
		c0 := cpuTicks(pids)
		time.Sleep(window)
		cpu := float64(cpuTicks(pids)-c0) / window.Seconds()
		name := "without BGP"
		if bgp {
			name = "with BGP, 1,000 prefixes announced"
		}
		fmt.Fprintf(tw, "%s\t%d KiB\t%.1f%%\n", name, rss, cpu)
		labtest.Stop(cmd)
	}
	tw.Flush()
}
