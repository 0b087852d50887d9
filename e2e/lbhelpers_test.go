package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vigil/control"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
	"vigil/lb"
)

// The load-balancing labs. Documentation addresses only:
//
// FNAT and NAT: the client and the directors' eth0 share segment "front"
// (192.0.2.0/24, VIP 192.0.2.100); the directors' eth1 and the real servers
// share segment "back" (198.51.100.0/24). The instance also floats
// 198.51.100.254 on eth1: the FNAT local address (laddr_group) and the NAT
// real servers' gateway, so both move with mastership. FNAT real servers
// have no route off their subnet at all: they can only answer the local
// address.
//
// DR: the client (192.0.2.10, segment "front") reaches the service through
// a router (192.0.2.254 / 198.51.100.254). The directors, the router and
// the real servers share segment "back"; the VIP 198.51.100.100 floats on
// the directors' only interface (the side client traffic arrives on) and
// sits on every real server's lo with arp_ignore=1/arp_announce=2. The
// real servers' default route is the router, so their replies go straight
// back to the client without crossing a director.
const (
	lbClientAddr = "192.0.2.10"
	lbLocalAddr  = "198.51.100.254" // FNAT local address, NAT gateway
	lbVIPFront   = "192.0.2.100"    // FNAT and NAT
	lbVIPDR      = "198.51.100.100" // DR
	lbVRID       = 60
	lbAdvert     = 100 * time.Millisecond
	// lbClientAliases are extra client addresses (192.0.2.11-18) that give
	// source-hashing schedulers (mh) more than one client to spread.
	lbClientAliases = 8
)

// Health checking of every lab: delay_loop 1, connect_timeout 1, retry 1,
// so a dead real server is out within delay_loop + connect_timeout ×
// (retry+1) = 3 s.
const (
	lbDelayLoop      = time.Second
	lbConnectTimeout = time.Second
	lbRetry          = 1
	lbRemovalBound   = lbDelayLoop + lbConnectTimeout*(lbRetry+1)
	// lbDelayBeforeRetry is keepalived's default for TCP_CHECK: a real
	// server that does not answer at all (its host gone) costs it once
	// per retry on top of the timeouts.
	lbDelayBeforeRetry = time.Second
)

// requireLBLab skips or, under CI, fails unless the LB labs can run.
func requireLBLab(t *testing.T) {
	t.Helper()
	testenv.RequireLab(t, "nft", "sysctl", "nginx", "wrk")
}

// addAddr6 adds the IPv6 address prefix to dev in h without duplicate
// address detection: the labs' addresses are unique, and DAD would only
// hold them back as tentative for a while.
func addAddr6(t *testing.T, h *netlab.Host, dev, prefix string) {
	t.Helper()
	labtest.MustRun(t, h, "ip", "-6", "addr", "add", prefix, "dev", dev, "nodad")
}

// lbCase is one forwarding method a test runs with: its subtest name, the
// lab prefix and the lb_kind.
type lbCase struct{ name, prefix, kind string }

// fnatAndDR runs test as two parallel subtests, "fnat" and "dr", in labs
// prefix+"f" and prefix+"d": for behaviour that must hold whether the
// director keeps flow state (FNAT) or not (DR).
func fnatAndDR(t *testing.T, prefix string, test func(t *testing.T, tc lbCase)) {
	requireLBLab(t)
	for _, tc := range []lbCase{{"fnat", prefix + "f", "FNAT"}, {"dr", prefix + "d", "DR"}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			test(t, tc)
		})
	}
}

// The IPv6 half of the labs (addIPv6) follows the IPv4 one. FNAT and NAT:
// the client 2001:db8:f::10 and the directors' eth0 (2001:db8:f::1, ::2)
// on front, the directors' eth1 (2001:db8:b::1, ::2) and the real servers
// (2001:db8:b::11-13) on back; lbLocal6 is the FNAT local address and the
// NAT real servers' gateway. DR: the client 2001:db8:c::10 behind the
// router (2001:db8:c::fe, 2001:db8:b::fe), the directors (2001:db8:b::1,
// ::2) and the real servers on back, the VIP lbVIP6DR on the real servers'
// lo and their default route the router.
const (
	lbLocal6    = "2001:db8:b::fe"
	lbVIP6Front = "2001:db8:f::100" // FNAT (conf6)
	lbVIP6DR    = "2001:db8:b::100" // DR (conf6)
)

// lbLab is a client, one or two directors and three nginx real servers.
type lbLab struct {
	t      *testing.T
	lab    *netlab.Lab
	kind   string // FNAT, NAT or DR
	vip    netip.Addr
	client *netlab.Host
	router *netlab.Host // DR only
	dirs   []*netlab.Host
	ports  []string // switch-side port of each director's VIP link, for Cut
	rs     []*realServer
}

// lbFrontBack adds the segments front and back to l and the client on
// front (lbClientAddr and its aliases); it returns the client and a
// function that adds a host.
func lbFrontBack(t *testing.T, l *netlab.Lab) (client *netlab.Host, add func(string) *netlab.Host) {
	t.Helper()
	labtest.AddSegments(t, l, "front", "back")
	add = func(name string) *netlab.Host { return labtest.AddHost(t, l, name) }
	client = add("client")
	caddrs := []string{lbClientAddr + "/24"}
	for i := 1; i <= lbClientAliases; i++ {
		caddrs = append(caddrs, fmt.Sprintf("192.0.2.%d/24", 10+i))
	}
	labtest.Connect(t, l, client, "eth0", "front", caddrs...)
	return client, add
}

// oneServiceUp reports whether s has exactly one virtual server and every
// one of its real servers is up.
func oneServiceUp(s control.Status) bool {
	if len(s.Services) != 1 {
		return false
	}
	for _, r := range s.Services[0].RealServers {
		if !r.Up {
			return false
		}
	}
	return true
}

// newLBLab builds the lab for kind with ndirs directors and starts the
// three real servers.
func newLBLab(t *testing.T, prefix, kind string, ndirs int) *lbLab {
	t.Helper()
	l := labtest.New(t, prefix)
	x := &lbLab{t: t, lab: l, kind: kind}
	var add func(string) *netlab.Host
	x.client, add = lbFrontBack(t, l)
	for i := 1; i <= ndirs; i++ {
		x.dirs = append(x.dirs, add(fmt.Sprintf("dir%d", i)))
	}
	switch kind {
	case "FNAT", "NAT":
		x.vip = netip.MustParseAddr(lbVIPFront)
		for i, d := range x.dirs {
			x.ports = append(x.ports, labtest.Connect(t, l, d, "eth0", "front", fmt.Sprintf("192.0.2.%d/24", i+1)))
			labtest.Connect(t, l, d, "eth1", "back", fmt.Sprintf("198.51.100.%d/24", i+1))
			labtest.MustRun(t, d, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		}
	case "DR":
		x.vip = netip.MustParseAddr(lbVIPDR)
		x.router = add("router")
		labtest.Connect(t, l, x.router, "eth0", "front", "192.0.2.254/24")
		labtest.Connect(t, l, x.router, "eth1", "back", "198.51.100.254/24")
		labtest.MustRun(t, x.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		labtest.MustRun(t, x.client, "ip", "route", "add", "default", "via", "192.0.2.254")
		for i, d := range x.dirs {
			x.ports = append(x.ports, labtest.Connect(t, l, d, "eth0", "back", fmt.Sprintf("198.51.100.%d/24", i+1)))
			// A director is a host like any other: it reaches the world
			// through the router (and so could answer a client itself).
			labtest.MustRun(t, d, "ip", "route", "add", "default", "via", "198.51.100.254")
		}
	default:
		t.Fatalf("unknown lb kind %q", kind)
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("r%d", i)
		h := add(name)
		addr := fmt.Sprintf("198.51.100.%d", 10+i)
		port := labtest.Connect(t, l, h, "eth0", "back", addr+"/24")
		switch kind {
		case "NAT":
			labtest.MustRun(t, h, "ip", "route", "add", "default", "via", lbLocalAddr)
		case "DR":
			labtest.MustRun(t, h, "ip", "addr", "add", lbVIPDR+"/32", "dev", "lo")
			labtest.MustRun(t, h, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
			labtest.MustRun(t, h, "ip", "route", "add", "default", "via", "198.51.100.254")
		}
		r := newRealServer(t, h, name, netip.MustParseAddr(addr))
		r.port = port
		x.rs = append(x.rs, r)
	}
	for _, r := range x.rs {
		r.start(t)
	}
	return x
}

// lbConf is the keepalived.conf of every director of the lab: only the
// priority differs between two directors. weights gives the real servers'
// weights (nil: 1 each).
func (x *lbLab) conf(algo string, prio int, weights []int) string {
	var b strings.Builder
	if x.kind == "FNAT" {
		fmt.Fprintf(&b, "local_address_group laddr {\n  %s\n}\n", lbLocalAddr)
	}
	iface := "eth0"
	fmt.Fprintf(&b, `vrrp_instance VI_LB {
  interface %s
  state BACKUP
  virtual_router_id %d
  version 3
  priority %d
  advert_int %v
  virtual_ipaddress {
    %s/24 dev %s
`, iface, lbVRID, prio, lbAdvert.Seconds(), x.vip, iface)
	if x.kind != "DR" {
		fmt.Fprintf(&b, "    %s/24 dev eth1\n", lbLocalAddr)
	}
	fmt.Fprintf(&b, `  }
}
virtual_server %s 80 {
  delay_loop %d
  lb_algo %s
  lb_kind %s
  protocol TCP
`, x.vip, int(lbDelayLoop/time.Second), algo, x.kind)
	if x.kind == "FNAT" {
		b.WriteString("  laddr_group_name laddr\n")
	}
	for i, r := range x.rs {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		fmt.Fprintf(&b, `  real_server %s 80 {
    weight %d
    TCP_CHECK {
      connect_timeout %d
      retry %d
    }
  }
`, r.addr, w, int(lbConnectTimeout/time.Second), lbRetry)
	}
	b.WriteString("}\n")
	return b.String()
}

// director starts vigil on director i with conf (waitServing and
// waitDirector wait for it).
func (x *lbLab) director(i int, conf string) *node {
	x.t.Helper()
	return startNode(x.t, "vigil", x.dirs[i], conf)
}

// waitServing waits until n is MASTER with its virtual server active and
// every real server up, and then until a request through the VIP reaches
// each real server (DR needs the real servers' MACs, which the daemon
// reads from the neighbour table every 2 s).
func (x *lbLab) waitServing(n *node, c *lbClient) {
	x.t.Helper()
	waitFor(x.t, 15*time.Second, n.Host.Name+" to be MASTER with all real servers up", func() bool {
		s, err := n.Status()
		return err == nil && len(s.Instances) == 1 && s.Instances[0].State == "MASTER" && oneServiceUp(s) && s.Services[0].Active
	})
	x.waitAllAnswer(c, 15*time.Second)
}

// waitAllAnswer sends requests until every real server has answered one
// (from varying client addresses, so source hashing spreads too).
func (x *lbLab) waitAllAnswer(c *lbClient, timeout time.Duration) {
	x.t.Helper()
	seen := map[string]bool{}
	i := 0
	waitFor(x.t, timeout, "every real server to answer through the VIP", func() bool {
		i++
		if srv, err := c.getFrom(i%(lbClientAliases+1), x.url()); err == nil {
			seen[srv] = true
		}
		return len(seen) == len(x.rs)
	})
}

// startLB builds the LB lab of kind with one director, starts vigil on it
// with conf(x) (nil: round robin, x.conf("rr", 150, nil)), and waits until
// it is MASTER and every real server answers a client whose requests time
// out after timeout.
func startLB(t *testing.T, prefix, kind string, timeout time.Duration, conf func(x *lbLab) string) (*lbLab, *node, *lbClient) {
	t.Helper()
	x := newLBLab(t, prefix, kind, 1)
	if conf == nil {
		conf = func(x *lbLab) string { return x.conf("rr", 150, nil) }
	}
	d := x.director(0, conf(x))
	c := newLBClient(x.client, timeout)
	x.waitServing(d, c)
	return x, d, c
}

// waitServing6 waits for n to be MASTER and every real server to answer
// through the IPv6 url (one client address: the IPv6 labs have no aliases).
func (x *lbLab) waitServing6(n *node, c *lbClient, url string) {
	x.t.Helper()
	waitDirector(x.t, n, "MASTER", 15*time.Second)
	seen := map[string]bool{}
	waitFor(x.t, 15*time.Second, "every real server to answer through the IPv6 VIP", func() bool {
		if srv, err := c.get(url); err == nil {
			seen[srv] = true
		}
		return len(seen) == len(x.rs)
	})
}

func (x *lbLab) url() string { return "http://" + x.vip.String() + "/" }

// addIPv6 adds the lab's IPv6 addresses and routes (see lbLocal6).
func (x *lbLab) addIPv6() {
	t := x.t
	t.Helper()
	switch x.kind {
	case "FNAT", "NAT":
		addAddr6(t, x.client, "eth0", "2001:db8:f::10/64")
		for i, d := range x.dirs {
			addAddr6(t, d, "eth0", fmt.Sprintf("2001:db8:f::%d/64", i+1))
			addAddr6(t, d, "eth1", fmt.Sprintf("2001:db8:b::%d/64", i+1))
			labtest.MustRun(t, d, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
		}
	case "DR":
		addAddr6(t, x.client, "eth0", "2001:db8:c::10/64")
		labtest.MustRun(t, x.client, "ip", "-6", "route", "add", "default", "via", "2001:db8:c::fe")
		addAddr6(t, x.router, "eth0", "2001:db8:c::fe/64")
		addAddr6(t, x.router, "eth1", "2001:db8:b::fe/64")
		labtest.MustRun(t, x.router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
		for i, d := range x.dirs {
			addAddr6(t, d, "eth0", fmt.Sprintf("2001:db8:b::%d/64", i+1))
		}
	}
	for i, r := range x.rs {
		addAddr6(t, r.host, "eth0", fmt.Sprintf("2001:db8:b::%d/64", 11+i))
		switch x.kind {
		case "NAT":
			labtest.MustRun(t, r.host, "ip", "-6", "route", "add", "default", "via", lbLocal6)
		case "DR":
			addAddr6(t, r.host, "lo", lbVIP6DR+"/128")
			labtest.MustRun(t, r.host, "ip", "-6", "route", "add", "default", "via", "2001:db8:b::fe")
		}
	}
}

// realServers6 are the three IPv6 real servers of the IPv6 labs, each with
// a TCP_CHECK.
const realServers6 = `  real_server 2001:db8:b::11 80 {
    TCP_CHECK {
      connect_timeout 1
      retry 1
    }
  }
  real_server 2001:db8:b::12 80 {
    TCP_CHECK {
      connect_timeout 1
      retry 1
    }
  }
  real_server 2001:db8:b::13 80 {
    TCP_CHECK {
      connect_timeout 1
      retry 1
    }
  }
`

// conf6 is the IPv6 virtual server of an FNAT or DR lab (lbVIP6Front or
// lbVIP6DR, round robin) behind its own VRRPv3 instance.
func (x *lbLab) conf6() string {
	vip, vrid, fnat := lbVIP6DR, 62, x.kind == "FNAT"
	var b strings.Builder
	if fnat {
		vip, vrid = lbVIP6Front, 61
		fmt.Fprintf(&b, "local_address_group laddr6 {\n  %s\n}\n", lbLocal6)
	}
	fmt.Fprintf(&b, "vrrp_instance VI_LB6 {\n  interface eth0\n  state BACKUP\n  virtual_router_id %d\n  version 3\n  priority 150\n  advert_int 0.1\n  virtual_ipaddress {\n    %s/64 dev eth0\n", vrid, vip)
	if fnat {
		fmt.Fprintf(&b, "    %s/64 dev eth1\n", lbLocal6)
	}
	fmt.Fprintf(&b, "  }\n}\nvirtual_server %s 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind %s\n", vip, x.kind)
	if fnat {
		b.WriteString("  laddr_group_name laddr6\n")
	}
	b.WriteString("  protocol TCP\n" + realServers6 + "}\n")
	return b.String()
}

// startLB6 builds the lab of kind (FNAT or DR) with one director and its
// IPv6 addresses, starts vigil on it with conf6, and waits until it is
// MASTER and every real server answers through the IPv6 VIP's url, which
// it returns with a client whose requests time out after 2 s.
func startLB6(t *testing.T, prefix, kind string) (*lbLab, *node, *lbClient, string) {
	t.Helper()
	requireLBLab(t)
	t.Parallel()
	x := newLBLab(t, prefix, kind, 1)
	x.addIPv6()
	d := x.director(0, x.conf6())
	c := newLBClient6(x.client, 2*time.Second)
	url := "http://[" + lbVIP6DR + "]/"
	if kind == "FNAT" {
		url = "http://[" + lbVIP6Front + "]/"
	}
	x.waitServing6(d, c, url)
	return x, d, c, url
}

// tables lists the nft tables in host h.
func tables(t *testing.T, h *netlab.Host) string {
	t.Helper()
	return labtest.MustRun(t, h, "nft", "list", "tables")
}

// stopAndCheckTables requires vigil's tables (want, e.g. "table inet
// vigil") while the director runs, stops it, and requires that no vigil
// table is left.
func stopAndCheckTables(t *testing.T, n *node, want ...string) {
	t.Helper()
	before := tables(t, n.Host)
	for _, w := range want {
		if !strings.Contains(before, w) {
			t.Errorf("%s while vigil runs: nft list tables lacks %q:\n%s", n.Host.Name, w, before)
		}
	}
	n.Stop()
	if after := tables(t, n.Host); strings.Contains(after, " vigil") {
		t.Errorf("%s: vigil's tables left after it stopped:\n%s", n.Host.Name, after)
	}
}

// realServer is one nginx real server in its own namespace, answering
// every request with its name (body and X-Server) and, in X-Peer, the
// address it saw the connection come from.
type realServer struct {
	name string
	host *netlab.Host
	addr netip.Addr
	dir  string
	port string // switch-side port of its link, for Cut

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *labtest.Buffer
}

// nginxConf runs nginx as one process (master_process off), so that
// killing it really takes the listener away, with every path in dir.
const nginxConf = `# a real server of a vigil e2e test
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr warn;
events {
  worker_connections 4096;
}
http {
  access_log %[1]s/access.log;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  default_type text/plain;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  server {
    listen 80 backlog=4096;
    listen [::]:80 backlog=4096;
    location / {
      add_header X-Server %[2]s always;
      add_header X-Peer $remote_addr:$remote_port always;
      return 200 "%[2]s\n";
    }
  }
}
`

func newRealServer(t *testing.T, h *netlab.Host, name string, addr netip.Addr) *realServer {
	t.Helper()
	r := &realServer{name: name, host: h, addr: addr, dir: t.TempDir(), out: &labtest.Buffer{}}
	if err := os.WriteFile(filepath.Join(r.dir, "nginx.conf"), []byte(fmt.Sprintf(nginxConf, r.dir, name)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("--- nginx %s ---\n%s", name, r.out.String())
		}
	})
	return r
}

// start runs nginx and waits until it accepts connections.
func (r *realServer) start(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	conf := filepath.Join(r.dir, "nginx.conf")
	cmd := r.host.Command(context.Background(), "nginx", "-c", conf, "-p", r.dir, "-e", "stderr", "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		r.mu.Unlock()
		t.Fatalf("start nginx %s: %v", r.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	waitFor(t, 10*time.Second, "nginx "+r.name+" to listen", func() bool {
		select {
		case <-done:
			t.Fatalf("nginx %s exited:\n%s", r.name, r.out.String())
		default:
		}
		return r.host.Do(func() error {
			c, err := net.DialTimeout("tcp", netip.AddrPortFrom(r.addr, 80).String(), time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}) == nil
	})
}

// kill kills nginx (SIGKILL: its listener goes at once) and waits for it.
func (r *realServer) kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// accessLines counts the requests nginx logged.
func (r *realServer) accessLines() int {
	b, _ := os.ReadFile(filepath.Join(r.dir, "access.log"))
	return strings.Count(string(b), "\n")
}

// lbClient makes HTTP requests from the client's namespace: every dial
// enters it, so the rest of the client runs on ordinary goroutines.
type lbClient struct {
	h       *netlab.Host
	timeout time.Duration
	clients []*http.Client // one per client address: [0] is lbClientAddr
}

func newLBClient(h *netlab.Host, timeout time.Duration) *lbClient {
	c := &lbClient{h: h, timeout: timeout}
	for i := 0; i <= lbClientAliases; i++ {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), 0)
		tr := &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return c.dial(ctx, src, addr)
			},
		}
		c.clients = append(c.clients, &http.Client{Transport: tr, Timeout: timeout})
	}
	return c
}

// newLBClient6 is a client of IPv6 VIPs: it lets the kernel choose the
// source address.
func newLBClient6(h *netlab.Host, timeout time.Duration) *lbClient {
	c := &lbClient{h: h, timeout: timeout}
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return c.dial(ctx, netip.AddrPort{}, addr)
		},
	}
	c.clients = append(c.clients, &http.Client{Transport: tr, Timeout: timeout})
	return c
}

// dial opens a TCP connection from src (any, when invalid) inside the
// client's namespace.
func (c *lbClient) dial(ctx context.Context, src netip.AddrPort, addr string) (net.Conn, error) {
	var conn net.Conn
	err := c.h.Do(func() error {
		d := net.Dialer{Timeout: c.timeout}
		if src.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(src)
		}
		var err error
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
}

// get makes one request on a new connection from lbClientAddr and returns
// the real server that answered.
func (c *lbClient) get(url string) (string, error) { return c.getFrom(0, url) }

// getFrom is get from client address i (0: 192.0.2.10, i: 192.0.2.10+i).
func (c *lbClient) getFrom(i int, url string) (string, error) {
	resp, err := c.clients[i].Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// spread makes n requests, each on a new connection, and counts them per
// real server.
func (c *lbClient) spread(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		srv, err := c.get(url)
		if err != nil {
			t.Fatalf("request %d of %d: %v", i+1, n, err)
		}
		got[srv]++
	}
	return got
}

// checkSpread fails the test unless got, the real servers' answers to n
// new flows (connections or UDP queries) through the VIP, follows their
// weights (nil: equal): exactly for FNAT and NAT, whose counted
// schedulers take turns (numgen), and within 4σ of the binomial for DR,
// whose Maglev table hashes each flow (see TestLBSpread).
func (x *lbLab) checkSpread(t *testing.T, got map[string]int, n int, weights []int) {
	t.Helper()
	t.Logf("%s: %d flows through the VIP, one request each: %v", x.kind, n, got)
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, r := range x.rs {
		want, tol := n/len(x.rs), 0
		if weights != nil {
			want = n * weights[i] / total
		}
		if x.kind == "DR" {
			p := float64(want) / float64(n)
			tol = int(math.Ceil(4 * math.Sqrt(float64(n)*p*(1-p))))
		}
		if g := got[r.name]; g < want-tol || g > want+tol {
			t.Errorf("%s answered %d of %d, want %d ± %d (spread %v)", r.name, g, n, want, tol, got)
		}
	}
}

// result is one request of a stream.
type result struct {
	start, end time.Time
	server     string
	err        error
}

// stream sends requests one after another (a new connection each, the
// next one period after the previous started) until stopped.
type stream struct {
	mu     sync.Mutex
	res    []result
	cancel context.CancelFunc
	done   chan struct{}
}

func startStream(c *lbClient, url string, period time.Duration) *stream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			r := result{start: time.Now()}
			r.server, r.err = c.get(url)
			r.end = time.Now()
			s.mu.Lock()
			s.res = append(s.res, r)
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends the stream and returns every result.
func (s *stream) stop() []result {
	s.cancel()
	<-s.done
	return s.results()
}

func (s *stream) results() []result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.res)
}

// summary of the requests that started in [from, to).
type summary struct {
	total, failed int
	byServer      map[string]int
	firstFail     time.Time // start of the first failed request
	lastFail      time.Time // end of the last failed request
	lastErr       error
}

// endedBefore is the summary of the requests that were over by t: those
// an event at t could not touch (one that started before t but was still
// in flight may fail because of it).
func endedBefore(res []result, t time.Time) summary {
	var done []result
	for _, r := range res {
		if r.end.Before(t) {
			done = append(done, r)
		}
	}
	return summarize(done, time.Time{}, t)
}

func summarize(res []result, from, to time.Time) summary {
	s := summary{byServer: map[string]int{}}
	for _, r := range res {
		if r.start.Before(from) || !r.start.Before(to) {
			continue
		}
		s.total++
		if r.err != nil {
			s.failed++
			if s.firstFail.IsZero() {
				s.firstFail = r.start
			}
			s.lastFail, s.lastErr = r.end, r.err
			continue
		}
		s.byServer[r.server]++
	}
	return s
}

// conns runs `vigil conns` (with -json when asJSON, parsed) against n.
func conns(t *testing.T, n *node, asJSON bool) (string, []control.Conn) {
	t.Helper()
	if !asJSON {
		return string(n.vigil(t, "conns")), nil
	}
	var cs []control.Conn
	n.vigilJSON(t, &cs, "conns", "-json")
	return "", cs
}

// realStatus returns the status of real server addr in n's only virtual
// server.
func realStatus(n *node, addr netip.Addr) (control.RealStatus, bool) {
	s, err := n.Status()
	if err != nil || len(s.Services) != 1 {
		return control.RealStatus{}, false
	}
	for _, r := range s.Services[0].RealServers {
		if ap, err := netip.ParseAddrPort(r.Addr); err == nil && ap.Addr() == addr {
			return r, true
		}
	}
	return control.RealStatus{}, false
}

// kaConn is an HTTP/1.1 keep-alive connection from the client's
// namespace: every request goes over the same TCP connection.
type kaConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialKeepAlive opens a connection from client address i to addr.
func (c *lbClient) dialKeepAlive(i int, addr string) (*kaConn, error) {
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), 0)
	conn, err := c.dial(context.Background(), src, addr)
	if err != nil {
		return nil, err
	}
	return &kaConn{c: conn, r: bufio.NewReader(conn)}, nil
}

// keepAlive opens a keep-alive connection from client address i to the
// VIP's port 80, closed when the test ends; a failure fails the test.
func (x *lbLab) keepAlive(t *testing.T, c *lbClient, i int) *kaConn {
	t.Helper()
	k, err := c.dialKeepAlive(i, netip.AddrPortFrom(x.vip, 80).String())
	if err != nil {
		t.Fatalf("keep-alive connection from client address %d: %v", i, err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// get makes one request on the connection and returns who answered and
// the peer address the real server saw.
func (k *kaConn) get(timeout time.Duration) (server, peer string, err error) {
	_ = k.c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: vigil-e2e\r\n\r\n"); err != nil {
		return "", "", err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK || resp.Close {
		return "", "", fmt.Errorf("status %s, close %v", resp.Status, resp.Close)
	}
	return strings.TrimSpace(string(body)), resp.Header.Get("X-Peer"), nil
}

func (k *kaConn) Close() error { return k.c.Close() }

var maglevSelector = regexp.MustCompile(`ether daddr set (jhash .*? seed \S+) map`)

// mapElems returns the elements of the map of vigil's table in family fam
// whose name ends in suffix ("_mh": DR's Maglev slots, "_rs": the NAT and
// FNAT scheduling slots), whitespace normalized, and whether the table has
// such a map at all (an empty map has no elements; a table without the
// map, or a wrong suffix, is not an empty map). reject reports whether
// the table refuses new flows of a service with no real server (it then
// has no map to schedule them).
func mapElems(t *testing.T, h *netlab.Host, fam, suffix string) (elems string, found, reject bool) {
	t.Helper()
	out := labtest.MustRun(t, h, "nft", "list", "table", fam, "vigil")
	reject = strings.Contains(out, " reject")
	block := regexp.MustCompile(`map \S+` + suffix + ` \{[^}]*?(elements = \{([^}]*)\})?[^{}]*\}`).FindStringSubmatch(out)
	if block == nil {
		return "", false, reject
	}
	return strings.Join(strings.Fields(block[2]), " "), true, reject
}

// maglevTable returns the DR Maglev table in h's netdev vigil table (slot
// : real server MAC) and the rule's selector (jhash expression, table size
// and seed).
func maglevTable(t *testing.T, h *netlab.Host) (elems, selector string) {
	t.Helper()
	elems, _, _ = mapElems(t, h, "netdev", "_mh") // "": no table yet, which no caller takes for one
	out := labtest.MustRun(t, h, "nft", "list", "table", "netdev", "vigil")
	if m := maglevSelector.FindStringSubmatch(out); m != nil {
		selector = m[1]
	}
	return elems, selector
}

// slotKey is how real server r appears in the director's scheduling map:
// its MAC for DR, "address . port" for NAT and FNAT.
func (x *lbLab) slotKey(t *testing.T, r *realServer) (fam, suffix, key string) {
	t.Helper()
	if x.kind == "DR" {
		return "netdev", "_mh", strings.TrimSpace(labtest.MustRun(t, r.host, "cat", "/sys/class/net/eth0/address"))
	}
	return "inet", "_rs", r.addr.String() + " . 80"
}

// waitScheduled waits until the data plane of director n schedules new
// connections to r (in) or no longer does (!in), and returns how long it
// took: the rules follow the model off the daemon's loop.
func (x *lbLab) waitScheduled(t *testing.T, n *node, r *realServer, in bool) time.Duration {
	t.Helper()
	fam, suffix, key := x.slotKey(t, r)
	what := fmt.Sprintf("the nft rules of %s to schedule %s (%s)", n.Host.Name, r.name, key)
	if !in {
		what = fmt.Sprintf("the nft rules of %s to stop scheduling %s (%s)", n.Host.Name, r.name, key)
	}
	// A persistent service's map sends each slot to its real server's
	// own chain (vs_..._rs_198_51_100_11_80), not to its address: matching
	// only the address, the wait for a removal passed at once, before the
	// rules had changed (TestLBPersistence then met the killed server).
	chain := "_rs_" + lb.NameOf(r.addr) + "_80"
	return waitFor(t, 10*time.Second, what, func() bool {
		elems, found, reject := mapElems(t, n.Host, fam, suffix)
		if !found {
			// No map: not scheduled only if the service refuses new
			// flows (no real server left); otherwise the rules are not
			// there yet, or the suffix is wrong: keep waiting, and fail.
			return !in && reject
		}
		has := slices.ContainsFunc(strings.Split(elems, ","), func(e string) bool {
			e = strings.TrimSpace(e)
			return strings.HasSuffix(e, key) || (x.kind != "DR" && strings.HasSuffix(e, chain))
		})
		return has == in
	})
}

// confInhibit is conf with inhibit_on_failure and a MISC_CHECK per real
// server that fails while the file <dir>/<name>.down exists: a real server
// the test can fail while nginx keeps serving its established connections.
func (x *lbLab) confInhibit(algo string, prio int, dir string) string {
	tcp := fmt.Sprintf("    TCP_CHECK {\n      connect_timeout %d\n      retry %d\n    }\n", int(lbConnectTimeout/time.Second), lbRetry)
	conf := "global_defs {\n  enable_script_security\n  script_user root\n}\n" + x.conf(algo, prio, nil)
	for _, r := range x.rs {
		misc := fmt.Sprintf("    inhibit_on_failure\n    MISC_CHECK {\n      misc_path \"/usr/bin/test ! -e %s\"\n      misc_timeout 1\n    }\n",
			filepath.Join(dir, r.name+".down"))
		conf = strings.Replace(conf, tcp, misc, 1)
	}
	return conf
}

// serveUDP answers every datagram to addr in r's namespace with r's name
// until the test ends. (nginx-light has no UDP.) For DR addr must be the
// VIP: a socket bound to the wildcard would answer from the real server's
// own address, which the client does not accept.
func serveUDP(t *testing.T, r *realServer, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := r.host.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(r.name), from)
		}
	}()
}

// query sends one datagram to addr from a new socket in the client's
// namespace (a new flow) and returns the answer.
func (c *lbClient) query(addr string) (string, error) { return c.queryFrom(addr, 0) }

// queryFrom is query from a fixed local port (0: the kernel picks one).
// A fixed port below the ephemeral range makes each query a flow of its
// own: a kernel-picked port may repeat within conntrack's UDP timeout, and
// the repeat then follows the earlier flow instead of the scheduler.
func (c *lbClient) queryFrom(addr string, port int) (string, error) {
	var ans string
	err := c.h.Do(func() error {
		d := net.Dialer{}
		if port != 0 {
			d.LocalAddr = &net.UDPAddr{Port: port}
		}
		conn, err := d.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(c.timeout))
		if _, err := conn.Write([]byte("who")); err != nil {
			return err
		}
		b := make([]byte, 64)
		n, err := conn.Read(b)
		ans = string(b[:n])
		return err
	})
	return ans, err
}

// dialKeepAlive6 opens a keep-alive connection to an IPv6 addr, the kernel
// choosing the source.
func (c *lbClient) dialKeepAlive6(addr string) (*kaConn, error) {
	conn, err := c.dial(context.Background(), netip.AddrPort{}, addr)
	if err != nil {
		return nil, err
	}
	return &kaConn{c: conn, r: bufio.NewReader(conn)}, nil
}
