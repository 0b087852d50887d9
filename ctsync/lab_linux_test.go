package ctsync

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// The failover lab: a client, two directors and a real server.
//
//	client ── front 198.51.100.0/24, 2001:db8:1::/64 ── dira, dirb ── back 203.0.113.0/24, 2001:db8:2::/64 ── rs
//
// Both directors carry the same nft rules: NAT virtual servers
// 198.51.100.100:80 and [2001:db8:1::100]:80 (DNAT to the real server,
// whose default route is the floating gateway .1 / ::1), and FNAT virtual
// servers .101 and ::101 (DNAT plus SNAT to the floating local address .200
// / ::200). The VIPs, the gateway and the local addresses start on dira;
// the test opens connections through it, lets dira's Syncer send them to
// dirb's, moves every floating address to dirb, takes dira's links down and
// sends on the same connections. Both directors run with
// nf_conntrack_tcp_loose=0 (the setting conntrackd recommends for
// directors): a packet of a flow the kernel does not know is invalid, not
// picked up mid-stream and sent to whichever real server and local port
// the rules choose now, so without Install every connection must break.
const labRules = `
table inet lab {
	chain pre {
		type nat hook prerouting priority dstnat;
		ip daddr { 198.51.100.100, 198.51.100.101 } tcp dport 80 dnat ip to 203.0.113.10:8080
		ip6 daddr { 2001:db8:1::100, 2001:db8:1::101 } tcp dport 80 dnat ip6 to [2001:db8:2::10]:8080
	}
	chain post {
		type nat hook postrouting priority srcnat;
		ct original ip daddr 198.51.100.101 snat ip to 203.0.113.200
		ct original ip6 daddr 2001:db8:1::101 snat ip6 to 2001:db8:2::200
	}
}
`

var labServices = []Service{
	{VIP: netip.MustParseAddr("198.51.100.100"), Proto: 6, Port: 80},
	{VIP: netip.MustParseAddr("198.51.100.101"), Proto: 6, Port: 80},
	{VIP: netip.MustParseAddr("2001:db8:1::100"), Proto: 6, Port: 80},
	{VIP: netip.MustParseAddr("2001:db8:1::101"), Proto: 6},
}

// floating addresses: on the front and back interfaces of the master.
var labFloating = [][2]string{
	{"eth0", "198.51.100.100/24"}, {"eth0", "198.51.100.101/24"},
	{"eth0", "2001:db8:1::100/64"}, {"eth0", "2001:db8:1::101/64"},
	{"eth1", "203.0.113.1/24"}, {"eth1", "203.0.113.200/24"},
	{"eth1", "2001:db8:2::1/64"}, {"eth1", "2001:db8:2::200/64"},
}

type failoverLab struct {
	lab              *netlab.Lab
	client, a, b, rs *netlab.Host
}

func newFailoverLab(t *testing.T, prefix string) *failoverLab {
	t.Helper()
	testenv.RequireLab(t, "nft", "sysctl")
	l := labtest.New(t, prefix)
	labtest.AddSegments(t, l, "front", "back")
	f := &failoverLab{lab: l}
	host := func(name string) *netlab.Host {
		h := labtest.AddHost(t, l, name)
		labtest.MustRun(t, h, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
		return h
	}
	f.client, f.a, f.b, f.rs = host("client"), host("dira"), host("dirb"), host("rs")
	labtest.Connect(t, l, f.client, "eth0", "front", "198.51.100.10/24", "2001:db8:1::10/64")
	labtest.Connect(t, l, f.a, "eth0", "front", "198.51.100.2/24", "2001:db8:1::2/64")
	labtest.Connect(t, l, f.b, "eth0", "front", "198.51.100.3/24", "2001:db8:1::3/64")
	labtest.Connect(t, l, f.a, "eth1", "back", "203.0.113.2/24", "2001:db8:2::2/64")
	labtest.Connect(t, l, f.b, "eth1", "back", "203.0.113.3/24", "2001:db8:2::3/64")
	labtest.Connect(t, l, f.rs, "eth0", "back", "203.0.113.10/24", "2001:db8:2::10/64")
	labtest.MustRun(t, f.rs, "ip", "route", "add", "default", "via", "203.0.113.1")
	labtest.MustRun(t, f.rs, "ip", "-6", "route", "add", "default", "via", "2001:db8:2::1")
	for _, d := range []*netlab.Host{f.a, f.b} {
		labtest.MustRun(t, d, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
			"net.ipv6.conf.all.keep_addr_on_down=1", "net.ipv6.conf.eth0.keep_addr_on_down=1", "net.ipv6.conf.eth1.keep_addr_on_down=1")
		cmd := d.Command(context.Background(), "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(labRules)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("[%s] nft: %v: %s", d.Name, err, out)
		}
		// The conntrack sysctls exist once the rules loaded conntrack.
		labtest.MustRun(t, d, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0")
	}
	f.float(t, f.a, "add")
	return f
}

func (f *failoverLab) float(t *testing.T, h *netlab.Host, verb string) {
	t.Helper()
	for _, fl := range labFloating {
		args := []string{"addr", verb, fl[1], "dev", fl[0]}
		if verb == "add" && strings.Contains(fl[1], ":") {
			args = append(args, "nodad")
		}
		labtest.MustRun(t, h, "ip", args...)
	}
}

// move moves the floating addresses from one director to the other and
// cuts the first off, as a failed master (and brings the second's links
// up, if it was cut off before); the client and real server forget the old
// MACs (in a real failover, gratuitous ARP and unsolicited NA do this).
func (f *failoverLab) move(t *testing.T, from, to *netlab.Host) {
	t.Helper()
	f.float(t, from, "del")
	labtest.MustRun(t, from, "ip", "link", "set", "eth0", "down")
	labtest.MustRun(t, from, "ip", "link", "set", "eth1", "down")
	f.float(t, to, "add")
	for _, h := range []*netlab.Host{f.client, f.rs} {
		labtest.MustRun(t, h, "ip", "neigh", "flush", "dev", "eth0")
		labtest.MustRun(t, h, "ip", "-6", "neigh", "flush", "dev", "eth0")
	}
}

// echoServer serves line echo on port 8080 in the real server's namespace;
// the function it returns counts the connections from an address.
func echoServer(t *testing.T, rs *netlab.Host) func(string) int {
	t.Helper()
	var ln net.Listener
	if err := rs.Do(func() (err error) { ln, err = net.Listen("tcp", ":8080"); return err }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	from := map[netip.Addr]int{}
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			from[c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()]++
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return func(a string) int {
		mu.Lock()
		defer mu.Unlock()
		return from[netip.MustParseAddr(a)]
	}
}

type labConn struct {
	name string
	c    net.Conn
	r    *bufio.Reader
}

func (lc *labConn) echo(msg string, wait time.Duration) error {
	_ = lc.c.SetDeadline(time.Now().Add(wait))
	if _, err := fmt.Fprintf(lc.c, "%s\n", msg); err != nil {
		return err
	}
	line, err := lc.r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != msg+"\n" {
		return fmt.Errorf("echo %q, want %q", line, msg)
	}
	return nil
}

func newSyncer(t testing.TB, h *netlab.Host, cfg Config) *Syncer {
	t.Helper()
	cfg.Logf = func(format string, args ...any) { t.Logf("["+h.Name+"] "+format, args...) }
	var s *Syncer
	if err := h.Do(func() (err error) { s, err = New(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); s.Close() })
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// established counts the copy's entries in TCP state ESTABLISHED.
func (s *Syncer) established() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, it := range s.table.m {
		if it.e.TCPState == 3 {
			n++
		}
	}
	return n
}

func TestFailoverKeepsConnections(t *testing.T) {
	testenv.Short(t)
	key := []byte("lab key")
	for _, tc := range []struct {
		name    string
		install bool
		cfg     func(a bool) Config
	}{
		{"install-v4-multicast-hmac", true, func(bool) Config {
			return Config{Interface: "eth1", SyncID: 7, Key: key}
		}},
		{"install-v6-unicast", true, func(a bool) Config {
			// Source: the floating addresses on eth1 must not be chosen.
			self, peer := "2001:db8:2::2", "2001:db8:2::3"
			if !a {
				self, peer = peer, self
			}
			return Config{Interface: "eth1", Peers: []netip.Addr{netip.MustParseAddr(peer)},
				Source: netip.MustParseAddr(self), MaxLen: 400}
		}},
		{"no-install", false, func(bool) Config {
			return Config{Interface: "eth1", Group: DefaultGroup6}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFailoverLab(t, "ctfo")
			seen := echoServer(t, f.rs)
			sa := newSyncer(t, f.a, tc.cfg(true))
			sb := newSyncer(t, f.b, tc.cfg(false))
			syncPair(t, sa, sb, labServices)

			const perVS = 5
			var conns []*labConn
			for _, vip := range []string{"198.51.100.100", "198.51.100.101", "2001:db8:1::100", "2001:db8:1::101"} {
				for i := range perVS {
					var c net.Conn
					err := f.client.Do(func() (err error) {
						c, err = net.DialTimeout("tcp", net.JoinHostPort(vip, "80"), 3*time.Second)
						return err
					})
					if err != nil {
						t.Fatalf("dial %s: %v", vip, err)
					}
					t.Cleanup(func() { c.Close() })
					lc := &labConn{name: fmt.Sprintf("%s#%d", vip, i), c: c, r: bufio.NewReader(c)}
					if err := lc.echo("before "+lc.name, 3*time.Second); err != nil {
						t.Fatalf("%s through dira: %v", lc.name, err)
					}
					conns = append(conns, lc)
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for sb.established() < len(conns) {
				if time.Now().After(deadline) {
					t.Fatalf("dirb holds %d established entries, want %d; status %+v", sb.established(), len(conns), sb.Status())
				}
				time.Sleep(20 * time.Millisecond)
			}
			st := sb.Status()
			t.Logf("dirb before the move: %d entries, %d received, lag %v, drops %v", st.Entries, st.Received, st.Lag, st.Dropped)
			// FNAT: the real server saw the local addresses; NAT: the client.
			for _, a := range []string{"203.0.113.200", "2001:db8:2::200", "198.51.100.10", "2001:db8:1::10"} {
				if n := seen(a); n != perVS {
					t.Errorf("the real server saw %d connections from %s, want %d", n, a, perVS)
				}
			}

			f.move(t, f.a, f.b)
			if tc.install {
				start := time.Now()
				n, err := sb.Install(context.Background())
				if err != nil {
					t.Fatalf("install: %v", err)
				}
				t.Logf("installed %d entries in %v", n, time.Since(start))
				if n != len(conns) {
					t.Errorf("installed %d entries, want %d", n, len(conns))
				}
			}
			broken := map[string][]string{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, lc := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := lc.echo("after "+lc.name, 2*time.Second); err != nil {
						k := lc.name[:strings.Index(lc.name, "#")]
						mu.Lock()
						broken[k] = append(broken[k], err.Error())
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			if !tc.install {
				for _, vip := range []string{"198.51.100.100", "198.51.100.101", "2001:db8:1::100", "2001:db8:1::101"} {
					if len(broken[vip]) != perVS {
						t.Errorf("without Install %d of %d connections to %s broke, want all: the test cannot tell a working sync from none", len(broken[vip]), perVS, vip)
					}
				}
				return
			}
			for vip, errs := range broken {
				t.Errorf("%s: %d of %d connections broke after the failover: %v", vip, len(errs), perVS, errs)
			}
			if t.Failed() {
				return
			}

			// Fail back: dira returns (its kernel still holds the flows,
			// with the sequence numbers of before: the traffic since went
			// through dirb), gets dirb's table and takes over again.
			for _, lc := range conns {
				if err := lc.echo("on dirb "+lc.name, 2*time.Second); err != nil {
					t.Fatalf("%s through dirb: %v", lc.name, err)
				}
			}
			sb.SetMaster(true)
			sa.SetMaster(false)
			labtest.MustRun(t, f.a, "ip", "link", "set", "eth0", "up")
			labtest.MustRun(t, f.a, "ip", "link", "set", "eth1", "up")
			labtest.WaitFor(t, 15*time.Second, "dira's copy of dirb's table", func() bool { return sa.established() == len(conns) })
			f.move(t, f.b, f.a)
			n, err := sa.Install(context.Background())
			if err != nil || n != len(conns) {
				t.Fatalf("install on dira: %d, %v; want %d", n, err, len(conns))
			}
			for _, lc := range conns {
				if err := lc.echo("back on dira "+lc.name, 2*time.Second); err != nil {
					t.Errorf("%s after the fail-back: %v", lc.name, err)
				}
			}
			return
		})
	}
}
