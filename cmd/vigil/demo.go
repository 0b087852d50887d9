package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"vigil/control"
	"vigil/internal/netlab"
	"vigil/internal/probe"
)

// The demo's lab: two vigil nodes and a client on one segment, all in
// documentation addresses, in namespaces that are removed at the end.
const (
	demoVIP      = "192.0.2.100"
	demoPort     = 8080
	demoInterval = 100 * time.Millisecond
	demoConf     = `# written by vigil demo: the same file on both nodes but for the priority
global_defs {
  router_id %s
}
vrrp_instance VI_DEMO {
  interface eth0
  state BACKUP
  virtual_router_id 42
  version 3
  priority %d
  advert_int 0.1
  virtual_ipaddress {
    ` + demoVIP + `/24
  }
}
`
)

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
	for _, tool := range []string{"ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(stderr, "vigil demo: %s is not installed (Debian: apt-get install iproute2)\n", tool)
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
	exe, err := os.Executable()
	if err != nil {
		return err
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

	step(1, "build a lab: two vigil nodes and a client on one segment (network namespaces)")
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
	if err := lab.AddSegment("lan"); err != nil {
		return err
	}
	nodes := []*demoNode{{name: "n1", prio: 150, addr: "192.0.2.1/24"}, {name: "n2", prio: 100, addr: "192.0.2.2/24"}}
	for _, n := range nodes {
		if n.host, err = lab.AddHost(n.name); err != nil {
			return err
		}
		if n.port, err = lab.Connect(n.host, "eth0", "lan", n.addr); err != nil {
			return err
		}
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

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, n := range nodes {
		// Each node runs a tiny service on every address, the VIP included,
		// that answers with the node's name: the client sees who serves.
		var ln net.Listener
		if err := n.host.Do(func() error {
			var e error
			ln, e = net.Listen("tcp", fmt.Sprintf(":%d", demoPort))
			return e
		}); err != nil {
			return err
		}
		go probe.Serve(runCtx, ln, n.name)
		conf := filepath.Join(dir, n.name+".conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(demoConf, n.name, n.prio)), 0o644); err != nil {
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
	}

	step(2, "election")
	start := time.Now()
	master, err := demoWaitMaster(ctx, nodes, 10*time.Second)
	if err != nil {
		return err
	}
	say("   %s became MASTER after %v; the tables `vigil status` prints:", master.name, time.Since(start).Round(time.Millisecond))
	for _, n := range nodes {
		demoStatus(out, n)
	}

	step(3, "a client dials the VIP every 5 ms while n1's link is cut")
	p := &probe.Prober{Addr: fmt.Sprintf("%s:%d", demoVIP, demoPort), Period: 5 * time.Millisecond, Timeout: 50 * time.Millisecond}
	go func() { _ = client.Do(func() error { p.Run(runCtx); return nil }) }()
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
	cancel()

	step(6, "clean up")
	return nil
}

func demoMasterDown(prio int) time.Duration {
	return 3*demoInterval + time.Duration(256-prio)*demoInterval/256
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
	s, err := demoCall(context.Background(), n)
	if err != nil {
		fmt.Fprintf(out, "   [%s] status: %v\n", n.name, err)
		return
	}
	var b strings.Builder
	for _, in := range s.Instances {
		fmt.Fprintf(&b, "   [%s] %s %s prio %d, master %s, VIPs %s, since %s: %s\n", n.name, in.Name, in.State, in.Priority,
			in.MasterAddr, strings.Join(in.VIPs, ","), in.Since.Format("15:04:05.000"), in.Reason)
	}
	fmt.Fprint(out, b.String())
}
