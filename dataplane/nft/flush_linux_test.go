package nft

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/internal/pace"
	"vigil/lb"
)

// TestNoStaleResetFlow: a real server resets connections it was serving
// (it died, or aborted them, with requests in flight) and then leaves the
// pool. The director's conntrack keeps each such flow in CLOSE for
// nf_conntrack_tcp_timeout_close (10 s) with its NAT binding, and the
// kernel reopens a CLOSE entry on a new SYN only when the client sent the
// reset (or a FIN was seen): a SYN from the same client address and port
// follows the old binding to the removed real server, which refuses it if
// it is dead. A client that binds before it connects picks a random port
// and, at a hundred connections a second, reuses one of those ports within
// seconds (e2e TestLBSorryServer failed so). Once the real server has left,
// a new connection from each of those ports must be scheduled among the
// real servers in the pool. The removed real server stays up here, so a
// stale binding shows as its answer rather than as a refusal.
func TestNoStaleResetFlow(t *testing.T) { forNATs(t, "nftrst", noStaleResetFlow) }

// forNATs runs test for NAT and FNAT, each in its natLab (prefix and the
// method's initial) with rr over rs1-rs3 behind 203.0.113.10:80.
func forNATs(t *testing.T, prefix string, test func(t *testing.T, method lb.Method, x *lab, dp *Dataplane, b1, b2, b3 lb.Backend)) {
	for _, m := range []lb.Method{lb.NAT, lb.FNAT} {
		t.Run(m.String(), func(t *testing.T) {
			x := natLab(t, prefix+strings.ToLower(m.String())[:1], m == lb.NAT)
			dp := x.dataplane(t)
			b1, b2, b3 := backend("198.51.100.11:80", 1), backend("198.51.100.12:80", 1), backend("198.51.100.13:80", 1)
			apply(t, dp, natService(m, "203.0.113.10", b1, b2, b3))
			test(t, m, x, dp, b1, b2, b3)
		})
	}
}

func noStaleResetFlow(t *testing.T, method lb.Method, x *lab, dp *Dataplane, b1, b2, b3 lb.Backend) {
	vip := "203.0.113.10:80"

	// rs2's ten connections of 30, which it then resets.
	reset := resetByRS2(t, rs2Conns(t, x, vip, 41000))
	expectClosed(t, dp, b2, reset)

	apply(t, dp, natService(method, "203.0.113.10", b1, b3))
	stale := reachRS2(x, vip, reset)
	if len(stale) > 0 {
		t.Errorf("%d of %d client ports whose flow rs2 had reset were not scheduled among rs1 and rs3 after rs2 left (port: answered by, error): %v",
			len(stale), len(reset), stale)
	}
}

// rs2Conn is a client's connection to rs2 and its port.
type rs2Conn struct {
	port uint16
	c    *conn
}

// rs2Conns opens 30 connections to vip from the client ports from to
// from+29, one request each, and keeps open the ten rr gives rs2.
func rs2Conns(t *testing.T, x *lab, vip string, from uint16) []rs2Conn {
	t.Helper()
	var kept []rs2Conn
	for p := from; p < from+30; p++ {
		c, err := x.dialFrom(p, vip)
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		srv, err := c.get()
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		if srv != "rs2" {
			c.Close()
			continue
		}
		kept = append(kept, rs2Conn{p, c})
	}
	if len(kept) != 10 {
		t.Fatalf("rr gave rs2 %d of 30 connections, want 10", len(kept))
	}
	return kept
}

// resetByRS2 has rs2 reset each connection of cs (a request it answers
// with a reset) and returns their client ports.
func resetByRS2(t *testing.T, cs []rs2Conn) []uint16 {
	t.Helper()
	var ports []uint16
	for _, o := range cs {
		if _, err := o.c.request("/reset"); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("port %d: rs2 was asked to reset the connection; the client got %v, want a reset", o.port, err)
		}
		o.c.Close()
		ports = append(ports, o.port)
	}
	return ports
}

// expectClosed fails the test unless conntrack holds the flow of every
// client port in reset in CLOSE, bound to rs: the case under test.
func expectClosed(t *testing.T, dp *Dataplane, rs lb.Backend, reset []uint16) {
	t.Helper()
	conns, err := dp.Conns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed := 0
	for _, cn := range conns {
		if cn.Real == rs.AddrPort() && cn.State == "CLOSE" && slices.Contains(reset, cn.Client.Port()) {
			closed++
		}
	}
	if closed != len(reset) {
		t.Fatalf("conntrack holds %d of the %d flows rs2 reset in CLOSE bound to it, the case under test: %+v", closed, len(reset), conns)
	}
}

// reachRS2 connects to vip from each client port in ports and lists those
// that failed or were answered by rs2 ("port: answered by, error").
func reachRS2(x *lab, vip string, ports []uint16) []string {
	var stale []string
	for _, p := range ports {
		c, err := x.dialFrom(p, vip)
		if err != nil {
			stale = append(stale, fmt.Sprintf("%d: %v", p, err))
			continue
		}
		srv, err := c.get()
		c.Close()
		if err != nil || srv == "rs2" {
			stale = append(stale, fmt.Sprintf("%d: %q %v", p, srv, err))
		}
	}
	return stale
}

// TestSweepResetAfterLeaving: a real server leaves the pool while
// connections to it are established (a failed check: flushGone keeps
// them, as IPVS does), and resets them later (it dies, or aborts them).
// Each becomes a CLOSE entry bound to it, which a client reusing the port
// within 10 s would follow; Sweep deletes them, and forgets the server
// once no flow to it is left.
func TestSweepResetAfterLeaving(t *testing.T) { forNATs(t, "nftswp", sweepResetAfterLeaving) }

// TestFlushWholeTable: the flush and the sweep read the whole table
// instead of one filtered dump per real server when many servers left at
// once (maxFilteredDumps), and find the same flows.
func TestFlushWholeTable(t *testing.T) {
	defer func(n int) { maxFilteredDumps = n }(maxFilteredDumps)
	maxFilteredDumps = 0
	t.Run("flush", func(t *testing.T) { forNATs(t, "nftwrs", noStaleResetFlow) })
	t.Run("sweep", func(t *testing.T) { forNATs(t, "nftwsw", sweepResetAfterLeaving) })
}

func sweepResetAfterLeaving(t *testing.T, method lb.Method, x *lab, dp *Dataplane, b1, b2, b3 lb.Backend) {
	vip := "203.0.113.10:80"

	// rs2's ten connections of 30 stay open.
	kept := rs2Conns(t, x, vip, 42000)
	apply(t, dp, natService(method, "203.0.113.10", b1, b3))
	if n := dp.Lingering(); n != 1 {
		t.Fatalf("%d removed real servers watched, want rs2", n)
	}
	// While its connections are established, rs2 stays watched; a sweep
	// right after one does not read the table again (package pace).
	if n, err := dp.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep with rs2's connections established: %d watched, %v; want rs2", n, err)
	}
	dumps := 0
	dumpHook = func() { dumps++ }
	_, err := dp.Sweep(ctx)
	dumpHook = nil
	if err != nil || dumps != 0 {
		t.Errorf("a sweep right after one: %d dumps, %v; want none (the next waits %d times the last dump)", dumps, err, pace.Share)
	}
	reset := resetByRS2(t, kept)
	expectClosed(t, dp, b2, reset)

	dp.sweepPace = pace.Spacer{} // the budget spent above
	if _, err := dp.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	stale := reachRS2(x, vip, reset)
	if len(stale) > 0 {
		t.Errorf("%d of %d client ports whose flow rs2 reset after it left were not scheduled among rs1 and rs3 after a sweep (port: answered by, error): %v",
			len(stale), len(reset), stale)
	}
	dp.sweepPace = pace.Spacer{} // the budget spent
	if n, err := dp.Sweep(ctx); err != nil || n != 0 {
		t.Errorf("second sweep: %d servers still watched, %v; want none left (no flow to rs2)", n, err)
	}
	if n := dp.Lingering(); n != 0 {
		t.Errorf("%d removed real servers still watched with no flow left to rs2, want 0", n)
	}
}

// TestLinger: the servers Sweep watches are those it watched and those
// that left now, each once, less any back in its service; one that left
// before keeps when it left.
func TestLinger(t *testing.T) {
	svc := func(name string, backends ...string) lb.Service {
		s := lb.Service{Name: name, Method: lb.NAT}
		for _, b := range backends {
			s.Backends = append(s.Backends, backend(b, 1))
		}
		return s
	}
	a, b := svc("a", "198.51.100.1:80"), svc("b", "198.51.100.2:80")
	then, now := time.Unix(100, 0), time.Unix(200, 0)
	rs1, rs2, rs3 := netip.MustParseAddrPort("198.51.100.1:80"), netip.MustParseAddrPort("198.51.100.2:80"), netip.MustParseAddrPort("198.51.100.3:80")
	cur := []goneBackend{{svc: a, rs: rs2, left: then}, {svc: b, rs: rs3, left: then}}
	gone := []goneBackend{{svc: a, rs: rs2}, {svc: a, rs: rs3}, {svc: b, rs: rs1}}
	// rs3 came back to b; rs1 left b now; rs2 left a before and is gone again.
	next := []lb.Service{svc("a", "198.51.100.1:80"), svc("b", "198.51.100.2:80", "198.51.100.3:80")}
	got := linger(cur, gone, next, now)
	want := []goneBackend{{svc: a, rs: rs2, left: then}, {svc: a, rs: rs3, left: now}, {svc: b, rs: rs1, left: now}}
	if len(got) != len(want) {
		t.Fatalf("linger: %d servers %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].svc.Name != want[i].svc.Name || got[i].rs != want[i].rs || !got[i].left.Equal(want[i].left) {
			t.Errorf("server %d: %s %v left %v, want %s %v left %v", i, got[i].svc.Name, got[i].rs, got[i].left, want[i].svc.Name, want[i].rs, want[i].left)
		}
	}
}

// TestApplyDoesNotWaitForADump: Conns and Sweep dump the conntrack table
// on a handle of their own, outside the lock Apply takes. An Apply (a new
// master's claim) made while a dump is under way, held here by dumpHook,
// completes without waiting for it; the dump then completes too.
func TestApplyDoesNotWaitForADump(t *testing.T) {
	x := natLab(t, "nftdmp", true)
	dp := x.dataplane(t)
	b1, b2 := backend("198.51.100.11:80", 1), backend("198.51.100.12:80", 1)
	both := lb.Desired{Services: []lb.Service{natService(lb.NAT, "203.0.113.10", b1, b2)}}
	apply(t, dp, both.Services...)
	apply(t, dp, natService(lb.NAT, "203.0.113.10", b1)) // rs2 left: Sweep has one to watch
	for _, tc := range []struct {
		name string
		dump func() error
	}{
		{"Sweep", func() error { _, err := dp.Sweep(ctx); return err }},
		{"Conns", func() error { _, err := dp.Conns(ctx); return err }},
	} {
		entered, release := make(chan struct{}), make(chan struct{})
		dumpHook = func() {
			close(entered)
			<-release
		}
		dumped := make(chan error, 1)
		go func() { dumped <- tc.dump() }()
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			dumpHook = nil
			t.Fatalf("%s never reached its dump", tc.name)
		}
		applied := make(chan error, 1)
		go func() { applied <- dp.Apply(ctx, both) }()
		waited := false
		select {
		case err := <-applied:
			if err != nil {
				t.Errorf("Apply during %s's dump: %v", tc.name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Apply waited for %s's dump", tc.name)
			waited = true
		}
		close(release)
		if err := <-dumped; err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		dumpHook = nil
		if waited {
			<-applied
		}
		apply(t, dp, natService(lb.NAT, "203.0.113.10", b1))
	}
}
