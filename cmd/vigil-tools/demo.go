package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"vigil/control"
	"vigil/internal/netlab"
	"vigil/internal/probe"
)

// The demo's lab, all in documentation addresses, in namespaces that are
// removed at the end: two vigil nodes and a client on segment "lan"
// (192.0.2.0/24), and three real servers with the nodes' second
// interfaces on segment "back" (198.51.100.0/24). The nodes are VRRP
// routers for the VIP and, for its port 80, FNAT directors in front of the
// real servers; 198.51.100.254, the FNAT local address, moves with the VIP.
// The real servers have no route off their segment: they answer the local
// address, never the client.
const (
	demoVIP       = "192.0.2.100"
	demoPort      = 8080
	demoLBPort    = 80
	demoLocalAddr = "198.51.100.254"
	demoInterval  = 100 * time.Millisecond
	demoConf      = `# written by vigil demo: the same file on both nodes but for the priority
global_defs {
  router_id %[1]s
}
local_address_group demo_laddr {
  ` + demoLocalAddr + `
}
vrrp_instance VI_DEMO {
  interface eth0
  state BACKUP
  virtual_router_id 42
  version 3
  priority %[2]d
  advert_int 0.1
  virtual_ipaddress {
    ` + demoVIP + `/24 dev eth0
    ` + demoLocalAddr + `/24 dev eth1
  }
}
virtual_server ` + demoVIP + ` 80 {
  delay_loop 1
  lb_algo rr
  lb_kind FNAT
  laddr_group_name demo_laddr
  protocol TCP
%[3]s}
`
	demoRealConf = `  real_server %s 80 {
    weight 1
    TCP_CHECK {
      connect_timeout 1
      retry 1
    }
  }
`
	// demoRemovalBound is delay_loop + connect_timeout × (retry+1).
	demoRemovalBound = 3 * time.Second
)

// demoReal is one real server: a responder that answers every connection
// with its name, until its listener is closed.
type demoReal struct {
	name string
	addr string
	host *netlab.Host
	stop context.CancelFunc
}

type demoNode struct {
	name string
	prio int
	addr string
	host *netlab.Host
	port string
	ctl  string
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keep := fs.Bool("keep-logs", false, "keep the nodes' logs and configs in a temporary directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(stderr, "vigil demo: needs root to create network namespaces (try: sudo vigil demo)")
		return 1
	}
	for _, tool := range []struct{ bin, pkg string }{{"ip", "iproute2"}, {"nft", "nftables"}} {
		if _, err := exec.LookPath(tool.bin); err != nil {
			fmt.Fprintf(stderr, "vigil demo: %s is not installed (Debian: apt-get install %s)\n", tool.bin, tool.pkg)
			return 1
		}
	}
	if err := runDemo(ctx, stdout, *keep); err != nil {
		fmt.Fprintln(stderr, "vigil demo:", err)
		return 1
	}
	return 0
}

func runDemo(ctx context.Context, out io.Writer, keep bool) (err error) {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	step := func(n int, title string) { say("\n== %d. %s", n, title) }
	// The vigil binary that executed this one runs the demo's daemons.
	exe := os.Getenv("VIGIL_EXE")
	if exe == "" {
		return errors.New("run it as `vigil demo`: VIGIL_EXE, the vigil binary, is not set")
	}
	dir, err := os.MkdirTemp("", "vigil-demo-")
	if err != nil {
		return err
	}
	defer func() {
		if keep {
			say("\nlogs and configs kept in %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()

	step(1, "build a lab: two vigil nodes and a client on one segment, three real servers behind the nodes (network namespaces)")
	lab, err := netlab.New("vdemo")
	if err != nil {
		return err
	}
	defer func() {
		cerr := lab.Close()
		if cerr == nil {
			say("\nremoved every namespace of the lab (vdemo-*)")
		}
		err = errors.Join(err, cerr)
	}()
	for _, seg := range []string{"lan", "back"} {
		if err := lab.AddSegment(seg); err != nil {
			return err
		}
	}
	nodes := []*demoNode{{name: "n1", prio: 150, addr: "192.0.2.1/24"}, {name: "n2", prio: 100, addr: "192.0.2.2/24"}}
	for i, n := range nodes {
		if n.host, err = lab.AddHost(n.name); err != nil {
			return err
		}
		if n.port, err = lab.Connect(n.host, "eth0", "lan", n.addr); err != nil {
			return err
		}
		if _, err = lab.Connect(n.host, "eth1", "back", fmt.Sprintf("198.51.100.%d/24", i+1)); err != nil {
			return err
		}
		// A director forwards: NAT and FNAT flows cross it.
		if err := n.host.Do(func() error { return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644) }); err != nil {
			return fmt.Errorf("%s: enable forwarding: %w", n.name, err)
		}
	}
	reals := []*demoReal{{name: "r1", addr: "198.51.100.11"}, {name: "r2", addr: "198.51.100.12"}, {name: "r3", addr: "198.51.100.13"}}
	var realConf strings.Builder
	for _, r := range reals {
		if r.host, err = lab.AddHost(r.name); err != nil {
			return err
		}
		if _, err = lab.Connect(r.host, "eth0", "back", r.addr+"/24"); err != nil {
			return err
		}
		fmt.Fprintf(&realConf, demoRealConf, r.addr)
	}
	client, err := lab.AddHost("client")
	if err != nil {
		return err
	}
	if _, err := lab.Connect(client, "eth0", "lan", "192.0.2.10/24"); err != nil {
		return err
	}
	say("   n1 192.0.2.1 (priority 150), n2 192.0.2.2 (priority 100), client 192.0.2.10; VIP %s", demoVIP)
	say("   VRRPv3 multicast, advert_int 0.1 s: Master_Down_Interval for n2 = %v", demoMasterDown(100))
	say("   real servers r1 198.51.100.11, r2 .12, r3 .13 behind the nodes' eth1 (198.51.100.1, .2)")

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, r := range reals {
		// Each real server answers every connection on port 80 with its
		// name: the client sees where the director sent it.
		ln, err := r.host.Listen("tcp", fmt.Sprintf(":%d", demoLBPort))
		if err != nil {
			return err
		}
		var rctx context.Context
		rctx, r.stop = context.WithCancel(runCtx)
		go probe.Serve(rctx, ln, r.name)
	}
	for _, n := range nodes {
		// Each node runs a tiny service on every address, the VIP included,
		// that answers with the node's name: the client sees who serves.
		ln, err := n.host.Listen("tcp", fmt.Sprintf(":%d", demoPort))
		if err != nil {
			return err
		}
		go probe.Serve(runCtx, ln, n.name)
		conf := filepath.Join(dir, n.name+".conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(demoConf, n.name, n.prio, realConf.String())), 0o644); err != nil {
			return err
		}
		n.ctl = filepath.Join(dir, n.name+".sock")
		logf, err := os.Create(filepath.Join(dir, n.name+".log"))
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd := n.host.Command(runCtx, exe, "run", "-f", conf, "-control", n.ctl)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := n.host.Start(cmd); err != nil {
			return err
		}
		if n == nodes[0] {
			// n2 starts once n1 runs, as an operator brings up a backup
			// beside a running master: otherwise whichever process happens
			// to start first on a loaded host is alone on the segment for a
			// moment and rightly becomes MASTER.
			if err := demoWaitUp(ctx, n, 10*time.Second); err != nil {
				return err
			}
		}
	}

	step(2, "election")
	start := time.Now()
	master, err := demoWaitMaster(ctx, nodes, 10*time.Second)
	if err != nil {
		return err
	}
	say("   %s became MASTER after %v; the tables `vigil status` prints:", master.name, time.Since(start).Round(time.Millisecond))
	// The other node must never have been MASTER: the winner's first advert
	// goes out before its nft rules and VIPs, within the skew between the
	// two Master_Down_Intervals. Look again once that window is well past.
	time.Sleep(3 * demoMasterDown(100))
	for _, n := range nodes {
		s, err := demoCall(ctx, n)
		if err != nil || len(s.Instances) != 1 {
			continue
		}
		c := s.Instances[0].Counters
		switch {
		case n == master:
			say("   %s sent its first advert %dus after becoming MASTER, and had its VIPs in after %dus", n.name, c[control.CounterFirstAdvertUs], c[control.CounterVIPsClaimedUs])
		case c[control.CounterBecameMaster] == 0:
			say("   %s never became MASTER during the election", n.name)
		default:
			say("   %s was MASTER too during the election (%d times)", n.name, c[control.CounterBecameMaster])
		}
	}
	for _, n := range nodes {
		demoStatus(out, n)
	}

	step(3, "a client dials the VIP every 5 ms while n1's link is cut")
	p := &probe.Prober{Addr: fmt.Sprintf("%s:%d", demoVIP, demoPort), Period: 5 * time.Millisecond, Timeout: 50 * time.Millisecond}
	vrrpCtx, stopVRRPProbe := context.WithCancel(runCtx)
	defer stopVRRPProbe()
	go func() { _ = client.Do(func() error { p.Run(vrrpCtx); return nil }) }()
	if err := demoWaitAnswer(ctx, p, "n1", 5*time.Second); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	cut := time.Now()
	if err := lab.Cut(nodes[0].port); err != nil {
		return err
	}
	say("   cut n1's link at %s", cut.Format("15:04:05.000"))
	if err := demoWaitAnswer(ctx, p, "n2", 10*time.Second); err != nil {
		return err
	}

	step(4, "measured client-visible outage")
	o, err := probe.OutageAfter(p.Samples(), cut)
	if err != nil {
		return err
	}
	say("   last answer from %s %v before the cut... first answer from %s %v after it", o.From, cut.Sub(o.LastBefore).Round(time.Millisecond), o.To, o.SinceEvent.Round(time.Millisecond))
	say("   outage seen by the client: %v (%d failed dials); protocol floor Master_Down_Interval = %v",
		o.Gap.Round(time.Millisecond), o.FailedAttempts, demoMasterDown(100))
	demoStatus(out, nodes[1])

	step(5, "heal the link: n1 (priority 150) preempts back")
	heal := time.Now()
	if err := lab.Heal(nodes[0].port); err != nil {
		return err
	}
	if err := demoWaitAnswer(ctx, p, "n1", 15*time.Second); err != nil {
		return err
	}
	if o2, err := probe.OutageAfter(p.Samples(), heal); err == nil {
		say("   n1 serves again %v after the heal; clients saw a gap of %v (%d failed dials)", o2.SinceEvent.Round(time.Millisecond), o2.Gap.Round(time.Millisecond), o2.FailedAttempts)
	}
	for _, n := range nodes {
		demoStatus(out, n)
	}
	stopVRRPProbe()

	if err := demoBalance(ctx, out, step, lab, client, nodes, reals); err != nil {
		return err
	}
	cancel()

	step(9, "clean up")
	return nil
}

// demoBalance is the load-balancing act: traffic through the VIP's port
// 80, spread over the real servers; a real server killed and taken out of
// the pool by the health checks; a director failover under traffic.
func demoBalance(ctx context.Context, out io.Writer, step func(int, string), lab *netlab.Lab, client *netlab.Host, nodes []*demoNode, reals []*demoReal) error {
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	n1, n2 := nodes[0], nodes[1]

	step(6, "load balancing: port 80 of the VIP spreads over r1, r2, r3 (FNAT, rr; both nodes health-check them)")
	if err := demoWaitService(ctx, n1, func(s control.ServiceStatus) bool { return s.Active && demoUp(s) == len(reals) }, 10*time.Second); err != nil {
		return err
	}
	for _, n := range nodes {
		demoServices(out, n)
	}
	lbCtx, stopLB := context.WithCancel(ctx)
	defer stopLB()
	p := &probe.Prober{Addr: fmt.Sprintf("%s:%d", demoVIP, demoLBPort), Period: 10 * time.Millisecond, Timeout: 300 * time.Millisecond}
	go func() { _ = client.Do(func() error { p.Run(lbCtx); return nil }) }()
	// The count starts with the first answer through the VIP.
	for {
		if s, ok := p.Last(); ok && s.By != "" {
			break
		}
		if err := demoSleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := demoSleep(ctx, 2*time.Second); err != nil {
		return err
	}
	say("   the client opens a connection to %s:%d every 10 ms", demoVIP, demoLBPort)
	say("   spread over the real servers in 2 s: %s", demoSpread(p.Samples(), start, time.Now()))

	step(7, "kill r2 (close its listener): the health checks take it out of the pool")
	victim := reals[1]
	kill := time.Now()
	victim.stop()
	say("   r2 killed at %s", kill.Format("15:04:05.000"))
	if err := demoWaitService(ctx, n1, func(s control.ServiceStatus) bool { return demoUp(s) == len(reals)-1 }, 10*time.Second); err != nil {
		return err
	}
	down := time.Since(kill)
	say("   n1 marked r2 DOWN %v after the kill (bound: delay_loop + connect_timeout × (retry+1) = %v): removed from the pool",
		down.Round(time.Millisecond), demoRemovalBound)
	demoServices(out, n1)
	if err := demoSleep(ctx, 300*time.Millisecond); err != nil { // the nft rules follow off the loop
		return err
	}
	removed := time.Now()
	say("   between the kill and the removal: %s", demoSpread(p.Samples(), kill, removed))
	if err := demoSleep(ctx, 2*time.Second); err != nil {
		return err
	}
	say("   the next 2 s: %s", demoSpread(p.Samples(), removed, time.Now()))

	step(8, "director failover while the traffic flows: cut n1's link")
	cut := time.Now()
	if err := lab.Cut(n1.port); err != nil {
		return err
	}
	say("   cut n1's link at %s", cut.Format("15:04:05.000"))
	if err := demoWaitService(ctx, n2, func(s control.ServiceStatus) bool { return s.Active }, 10*time.Second); err != nil {
		return err
	}
	took := time.Since(cut)
	if err := demoSleep(ctx, 2*time.Second); err != nil {
		return err
	}
	stopLB()
	samples := p.Samples()
	var failed int
	var last time.Time
	for _, s := range samples {
		if !s.At.Before(cut) && s.By == "" {
			failed++
			last = s.At
		}
	}
	window := time.Duration(0)
	if failed > 0 {
		window = last.Sub(cut) + p.Timeout
	}
	say("   n2 took over the VIP and the virtual server %v after the cut", took.Round(time.Millisecond))
	say("   failed requests during the director failover: %d, all within %v of the cut", failed, window.Round(time.Millisecond))
	say("   after that: %s", demoSpread(samples, cut.Add(window), time.Now()))
	demoServices(out, n2)
	return nil
}

// demoSpread counts the answers of samples in [from, to) per real server.
func demoSpread(samples []probe.Sample, from, to time.Time) string {
	counts := map[string]int{}
	var total, failed int
	for _, s := range samples {
		if s.At.Before(from) || !s.At.Before(to) {
			continue
		}
		total++
		if s.By == "" {
			failed++
			continue
		}
		counts[s.By]++
	}
	var b strings.Builder
	for _, name := range []string{"r1", "r2", "r3"} {
		fmt.Fprintf(&b, "%s %d, ", name, counts[name])
	}
	fmt.Fprintf(&b, "%d failed of %d requests", failed, total)
	return b.String()
}

func demoUp(s control.ServiceStatus) int {
	n := 0
	for _, r := range s.RealServers {
		if r.Up {
			n++
		}
	}
	return n
}

func demoWaitService(ctx context.Context, n *demoNode, ok func(control.ServiceStatus) bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s, err := demoCall(ctx, n); err == nil && len(s.Services) == 1 && ok(s.Services[0]) {
			return nil
		}
		if err := demoSleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s: the virtual server did not reach the expected state within %v", n.name, timeout)
}

func demoSleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// demoServices prints n's virtual servers as `vigil status` does.
func demoServices(out io.Writer, n *demoNode) {
	demoPrint(out, n, func(s control.Status) []string {
		var b strings.Builder
		_ = control.WriteStatus(&b, s, time.Now())
		text := b.String()
		if i := strings.Index(text, "VIRTUAL SERVER"); i >= 0 {
			text = text[i:]
		}
		return strings.Split(strings.TrimRight(text, "\n"), "\n")
	})
}

func demoMasterDown(prio int) time.Duration {
	return 3*demoInterval + time.Duration(256-prio)*demoInterval/256
}

func demoWaitUp(ctx context.Context, n *demoNode, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := demoCall(ctx, n); err == nil {
			return nil
		}
		if err := demoSleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s did not answer on its control socket within %v", n.name, timeout)
}

func demoWaitMaster(ctx context.Context, nodes []*demoNode, timeout time.Duration) (*demoNode, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if s, err := demoCall(ctx, n); err == nil && len(s.Instances) == 1 && s.Instances[0].State == "MASTER" {
				return n, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("no node became MASTER within %v", timeout)
}

func demoWaitAnswer(ctx context.Context, p *probe.Prober, from string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s, ok := p.Last(); ok && s.By == from {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return fmt.Errorf("the client got no answer from %s within %v", from, timeout)
}

func demoCall(ctx context.Context, n *demoNode) (control.Status, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	r, err := control.Call(cctx, n.ctl, control.Request{Cmd: "status"})
	if err != nil {
		return control.Status{}, err
	}
	return *r.Status, nil
}

func demoStatus(out io.Writer, n *demoNode) {
	demoPrint(out, n, func(s control.Status) (lines []string) {
		for _, in := range s.Instances {
			lines = append(lines, fmt.Sprintf("%s %s prio %d, master %s, VIPs %s, since %s: %s", in.Name, in.State, in.Priority,
				in.MasterAddr, strings.Join(in.VIPs, ","), in.Since.Format("15:04:05.000"), in.Reason))
		}
		return lines
	})
}

// demoPrint prints, in one write, the lines format makes of n's status,
// each after n's name, or why there is no status.
func demoPrint(out io.Writer, n *demoNode, format func(control.Status) []string) {
	s, err := demoCall(context.Background(), n)
	if err != nil {
		fmt.Fprintf(out, "   [%s] status: %v\n", n.name, err)
		return
	}
	var b strings.Builder
	for _, line := range format(s) {
		fmt.Fprintf(&b, "   [%s] %s\n", n.name, line)
	}
	fmt.Fprint(out, b.String())
}
