package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vigil/control"
	"vigil/internal/labtest"
)

// TestLBSpread sends 300 requests, each on a new connection, through one
// director to three nginx real servers and checks the spread the
// scheduler promises.
//
// NAT and FNAT rr/wrr use "numgen inc" over weighted slots: a counter that
// every new flow through the VIP advances by one, and nothing else goes
// through the VIP during the count (health checks go to the real servers'
// own addresses). So the spread is exact: 100/100/100 for rr, 50/100/150
// for wrr 1:2:3, no tolerance needed.
//
// DR directors share no per-flow state: a flow's first packet must find
// the same real server from its headers on any director, so rr becomes a Maglev table keyed by the
// flow's jhash, in which each real server owns a share of the slots in
// proportion to its weight (to well under 1% at this table size). With
// ephemeral source ports the count of each real server is then binomial,
// n=300 and p its share: for rr σ = √(300·⅓·⅔) ≈ 8.2, and the test
// accepts 100 ± 33 (4σ, rounded up; a correct data plane fails it with
// probability ≈ 2·10⁻⁴); for wrr 1:2:3, 50 ± 26, 100 ± 33, 150 ± 35.
func TestLBSpread(t *testing.T) {
	requireLBLab(t)
	cases := []struct {
		name, prefix, kind, algo string
		weights                  []int
		tables                   []string
	}{
		{name: "fnat-rr", prefix: "lbsfr", kind: "FNAT", algo: "rr", tables: []string{"table inet vigil"}},
		{name: "fnat-wrr-1:2:3", prefix: "lbsfw", kind: "FNAT", algo: "wrr", weights: []int{1, 2, 3}, tables: []string{"table inet vigil"}},
		{name: "nat-rr", prefix: "lbsnr", kind: "NAT", algo: "rr", tables: []string{"table inet vigil"}},
		{name: "dr-rr", prefix: "lbsdr", kind: "DR", algo: "rr", tables: []string{"table netdev vigil"}},
		{name: "dr-wrr-1:2:3", prefix: "lbsdw", kind: "DR", algo: "wrr", weights: []int{1, 2, 3}, tables: []string{"table netdev vigil"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x, d, c := startLB(t, tc.prefix, tc.kind, 2*time.Second, func(x *lbLab) string { return x.conf(tc.algo, 150, tc.weights) })

			const n = 300
			got := c.spread(t, x.url(), n)
			x.checkSpread(t, got, n, tc.weights)
			if len(got) != len(x.rs) {
				t.Errorf("answers from %v, want only the three real servers", got)
			}
			// Who the real server sees: the FNAT local address, or, for NAT
			// and DR, the client itself.
			k := x.keepAlive(t, c, 0)
			_, peer, err := k.get(2 * time.Second)
			k.Close()
			wantPeer := lbClientAddr + ":"
			if tc.kind == "FNAT" {
				wantPeer = lbLocalAddr + ":"
			}
			if err != nil || !strings.HasPrefix(peer, wantPeer) {
				t.Errorf("the real server saw the connection from %q (%v), want %sport", peer, err, wantPeer)
			}
			if tc.kind == "FNAT" && tc.weights == nil {
				wrkSpread(t, x)
			}
			stopAndCheckTables(t, d, tc.tables...)
		})
	}
}

// wrkSpread runs wrk for 2 s with "Connection: close" (a new connection
// per request) and counts the requests each nginx logged: rr hands out
// consecutive flows in turn, so the counts differ at most by the flows wrk
// abandoned when it stopped (one per connection).
func wrkSpread(t *testing.T, x *lbLab) {
	t.Helper()
	before := make([]int, len(x.rs))
	for i, r := range x.rs {
		before[i] = r.accessLines()
	}
	const conns = 4
	out := labtest.MustRun(t, x.client, "wrk", "-t", "1", "-c", strconv.Itoa(conns), "-d", "2s", "-H", "Connection: close", x.url())
	m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("wrk output without a request count:\n%s", out)
	}
	if strings.Contains(out, "Socket errors") || strings.Contains(out, "Non-2xx") {
		t.Errorf("wrk saw errors through the VIP:\n%s", out)
	}
	time.Sleep(100 * time.Millisecond) // nginx writes its log after the response
	counts := make([]int, len(x.rs))
	lo, hi, sum := 1<<30, 0, 0
	for i, r := range x.rs {
		counts[i] = r.accessLines() - before[i]
		lo, hi, sum = min(lo, counts[i]), max(hi, counts[i]), sum+counts[i]
	}
	t.Logf("wrk -c %d -d 2s, Connection: close: %s requests; nginx logged %v", conns, m[1], counts)
	if hi-lo > conns {
		t.Errorf("rr spread of wrk's %d requests: %v, want counts within %d of each other", sum, counts, conns)
	}
	if sum < 300 {
		t.Errorf("wrk made only %d requests in 2 s through the VIP", sum)
	}
}

// TestLBKilledRealServer takes one real server away under a stream of
// requests (a new connection every 10 ms) and checks that it is out of the
// pool, in vigil's status and in the data plane, within the bound of its
// health check, that no request fails after that, and that the real server
// is back in the pool once it is healthy again, with no request failing
// when the table takes it back (with DR too: the director remembers the
// flows in flight).
//
// "kill": nginx is killed, so the check's connect is refused at once and
// the bound is delay_loop + connect_timeout × (retry+1) = 3 s. "unplug":
// the real server's link is cut, so every check attempt times out and
// waits delay_before_retry (1 s, keepalived's default) before its retry:
// delay_loop + connect_timeout × (retry+1) + delay_before_retry × retry
// = 4 s, which is also the worst case, so 250 ms are allowed for timers
// firing late on a loaded machine. Coming back takes at most one check that was already under way
// and failed plus the next one: delay_loop + connect_timeout (+ 250 ms for
// polling the status and scheduling on a loaded machine).
func TestLBKilledRealServer(t *testing.T) {
	requireLBLab(t)
	for _, tc := range []struct{ name, prefix, kind, fault string }{
		{"fnat-kill", "lbkf", "FNAT", "kill"},
		{"dr-kill", "lbkd", "DR", "kill"},
		{"fnat-unplug", "lbku", "FNAT", "unplug"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x, d, c := startLB(t, tc.prefix, tc.kind, 500*time.Millisecond, nil)
			victim := x.rs[1]
			removal := lbRemovalBound
			fail, recover := victim.kill, func() { victim.start(t) }
			if tc.fault == "unplug" {
				// The worst case is the bound itself (the link goes just
				// after a check passed): allow the timers to fire late and
				// the nft rules to follow, by 250 ms.
				removal += lbDelayBeforeRetry*lbRetry + 250*time.Millisecond
				fail = func() {
					if err := x.lab.Cut(victim.port); err != nil {
						t.Fatal(err)
					}
				}
				recover = func() {
					if err := x.lab.Heal(victim.port); err != nil {
						t.Fatal(err)
					}
				}
			}

			s := startStream(c, x.url(), 10*time.Millisecond)
			defer s.stop()
			time.Sleep(500 * time.Millisecond)
			kill := time.Now()
			fail()
			down := waitFor(t, 3*removal, victim.name+" to be down in vigil status", func() bool {
				r, ok := realStatus(d, victim.addr)
				return ok && !r.Up && r.Weight == 0
			})
			bound := kill.Add(removal)
			time.Sleep(time.Until(bound.Add(2 * time.Second)))
			res := s.results()
			pre := endedBefore(res, kill)
			during := summarize(res, kill, bound)
			post := summarize(res, bound, time.Now())
			var outFor time.Duration
			if !during.lastFail.IsZero() {
				outFor = during.lastFail.Sub(kill)
			}
			t.Logf("%s: %s %s; down in status after %v, last failed request ended %v after it (bound %v); "+
				"requests before/during/after the bound: %d/%d/%d, failed %d/%d/%d (%v)",
				tc.name, victim.name, map[string]string{"kill": "killed", "unplug": "unplugged"}[tc.fault], down.Round(time.Millisecond), outFor.Round(time.Millisecond), removal,
				pre.total, during.total, post.total, pre.failed, during.failed, post.failed, post.byServer)
			if pre.failed > 0 {
				t.Errorf("%d requests failed before the %s: %v", pre.failed, tc.fault, pre.lastErr)
			}
			if down > removal {
				t.Errorf("%s was marked down %v after the %s, more than the bound %v", victim.name, down, tc.fault, removal)
			}
			if post.failed > 0 {
				t.Errorf("%d of %d requests failed more than %v after the %s (last: %v)", post.failed, post.total, removal, tc.fault, post.lastErr)
			}
			if post.byServer[victim.name] > 0 {
				t.Errorf("%s answered %d requests after the %s", victim.name, post.byServer[victim.name], tc.fault)
			}
			if post.total < 100 {
				t.Errorf("only %d requests in the 2 s after the bound", post.total)
			}
			if during.failed == 0 {
				t.Errorf("no request failed between the %s and the bound: was %s in the pool at all?", tc.fault, victim.name)
			}

			recover()
			restart := time.Now()
			up := waitFor(t, 10*time.Second, victim.name+" to be up again in vigil status", func() bool {
				r, ok := realStatus(d, victim.addr)
				return ok && r.Up && r.Weight == 1
			})
			waitFor(t, 10*time.Second, victim.name+" to answer through the VIP again", func() bool {
				return summarize(s.results(), restart, time.Now()).byServer[victim.name] > 0
			})
			var serving time.Duration
			for _, r := range s.results() {
				if r.err == nil && r.server == victim.name && r.start.After(restart) {
					serving = r.end.Sub(restart)
					break
				}
			}
			time.Sleep(time.Second)
			res = s.stop()
			back := summarize(res, bound, time.Now())
			t.Logf("%s: healthy again; up in status %v and answering through the VIP %v after it; %d requests since the bound, %d failed (%v)",
				tc.name, up.Round(time.Millisecond), serving.Round(time.Millisecond), back.total, back.failed, summarize(res, restart, time.Now()).byServer)
			// With DR the Maglev table that takes the real server back
			// moves a third of its slots to it; a connection in flight on
			// one of them keeps its real server because the director
			// remembers the flow (IPVS keeps it too). Before the director
			// remembered flows, that request was reset.
			if back.failed > 0 {
				t.Errorf("%d requests failed after the bound, across the recovery (last: %v)", back.failed, back.lastErr)
			}
			if comeback := lbDelayLoop + lbConnectTimeout + 250*time.Millisecond; up > comeback {
				t.Errorf("%s came back %v after it was healthy again, want within delay_loop + connect_timeout (+ slack) = %v", victim.name, up, comeback)
			}
		})
	}
}

// instanceState waits until n's only instance is in state and its virtual
// server is active exactly when it is MASTER, with every real server up.
func waitDirector(t *testing.T, n *node, state string, timeout time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, timeout, n.Host.Name+" to be "+state+" with every real server up", func() bool {
		s, err := n.Status()
		return err == nil && len(s.Instances) == 1 && s.Instances[0].State == state && oneServiceUp(s) &&
			s.Services[0].Active == (state == "MASTER")
	})
}

// TestLBDirectorFailover runs two directors on the same keepalived.conf
// (priorities 150 and 100) under a stream of requests (a new connection
// every 10 ms, 300 ms timeout) and cuts the master's link: requests fail
// only in a short window after the cut, and all succeed after it, spread
// over the three real servers by the new master.
//
// The window is bounded by what a client can see at worst: the backup's
// Master_Down_Interval (3 × 0.1 s + skew 0.061 s) plus one advert
// interval, the time to install the VIP, announce it and apply the nft
// rules (0.3 s allowed, ~0.1 s measured), and a request that started just
// before the new master answered and times out (0.3 s).
func TestLBDirectorFailover(t *testing.T) {
	fnatAndDR(t, "lbf", func(t *testing.T, tc lbCase) {
		x := newLBLab(t, tc.prefix, tc.kind, 2)
		d1 := x.director(0, x.conf("rr", 150, nil))
		d2 := x.director(1, x.conf("rr", 100, nil))
		const timeout = 300 * time.Millisecond
		c := newLBClient(x.client, timeout)
		x.waitServing(d1, c)
		waitDirector(t, d2, "BACKUP", 10*time.Second)

		s := startStream(c, x.url(), 10*time.Millisecond)
		defer s.stop()
		time.Sleep(time.Second)
		cut := time.Now()
		if err := x.lab.Cut(x.ports[0]); err != nil {
			t.Fatal(err)
		}
		takeover := waitDirector(t, d2, "MASTER", 10*time.Second)
		// RFC 5798 section 6.4.2: the new master's first advert goes
		// out before the slow work of the takeover (the nft apply
		// before the VIPs). The daemon measures both from the
		// transition; the order holds however loaded the host is.
		for _, n := range []*node{d1, d2} {
			waitFor(t, 5*time.Second, n.Host.Name+"'s VIPs claimed", func() bool { return instStatus(t, n).Counters["vips_claimed_us"] > 0 })
			c := instStatus(t, n).Counters
			t.Logf("%s: first advert %dus after becoming MASTER, VIPs in after %dus", n.Host.Name, c["first_advert_us"], c["vips_claimed_us"])
			if c["first_advert_us"] > c["vips_claimed_us"] {
				t.Errorf("%s: first advert %dus after the transition, VIPs claimed after %dus: want the advert first", n.Host.Name, c["first_advert_us"], c["vips_claimed_us"])
			}
		}
		time.Sleep(3 * time.Second)
		res := s.stop()
		pre := endedBefore(res, cut)
		post := summarize(res, cut, time.Now())
		var window time.Duration
		if post.failed > 0 {
			window = post.lastFail.Sub(cut)
		}
		after := summarize(res, cut.Add(window), time.Now())
		bound := masterDown(3, 100, lbAdvert) + lbAdvert + 300*time.Millisecond + timeout
		t.Logf("%s: master's link cut; dir2 MASTER and serving after %v; requests before the cut %d (failed %d), after it %d, failed %d in a window of %v (bound %v); "+
			"after the window %d requests, none failed: %v",
			tc.name, takeover.Round(time.Millisecond), pre.total, pre.failed, post.total, post.failed, window.Round(time.Millisecond), bound, after.total, after.byServer)
		if pre.failed > 0 {
			t.Errorf("%d requests failed before the cut (last: %v)", pre.failed, pre.lastErr)
		}
		if window > bound {
			t.Errorf("requests failed until %v after the cut, more than %v (last: %v)", window, bound, post.lastErr)
		}
		if after.total < 150 || len(after.byServer) != len(x.rs) {
			t.Errorf("after the failover window: %d requests answered by %v, want ≥ 150 spread over all three real servers", after.total, after.byServer)
		}
	})
}

// TestLBDRMaglevKeepsConnections opens keep-alive HTTP/1.1 connections
// through a DR mh virtual server, one from each of nine client addresses
// (mh hashes the client address), keeps a request going on each every
// 50 ms, and cuts the master director's link. The new master never saw
// these flows (each director remembers only its own), and both directors build the same Maglev table with the same
// jhash seed (the test compares the two nft maps slot by slot), so every
// packet of every connection reaches the same real
// server through the new master: no request fails, and each connection
// keeps being answered by the same real server, which keeps seeing the
// same client address and port (the same TCP connection, never re-opened).
// `vigil conns` lists every connection on the master before the cut, with
// its real server, none on the backup, and every one on the new master
// after its takeover (each director remembers the flows it forwards).
func TestLBDRMaglevKeepsConnections(t *testing.T) {
	requireLBLab(t)
	t.Parallel()
	x := newLBLab(t, "lbmh", "DR", 2)
	d1 := x.director(0, x.conf("mh", 150, nil))
	d2 := x.director(1, x.conf("mh", 100, nil))
	c := newLBClient(x.client, time.Second)
	x.waitServing(d1, c)
	waitDirector(t, d2, "BACKUP", 10*time.Second)
	// The backup has programmed the same table as the master, slot for
	// slot, with the same hash and seed (it reads the real servers' MACs
	// from its own neighbour table, every 2 s).
	var table, sel string
	waitFor(t, 10*time.Second, "both directors to hold the same Maglev table", func() bool {
		e1, s1 := maglevTable(t, x.dirs[0])
		e2, s2 := maglevTable(t, x.dirs[1])
		table, sel = e1, s1
		// Every slot has a MAC: "slot : aa:bb:cc:dd:ee:ff" holds 6 colons.
		var m int
		_, err := fmt.Sscanf(sel[strings.Index(sel, " mod ")+1:], "mod %d", &m)
		return err == nil && e1 != "" && e1 == e2 && s1 == s2 && strings.Count(e1, ":") == 6*m
	})
	t.Logf("both directors: %q through the same %d-slot map", sel, strings.Count(table, ",")+1)

	type answer struct {
		at           time.Time
		took         time.Duration
		server, peer string
		err          error
	}
	n := lbClientAliases + 1
	answers := make([][]answer, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	clients := make([]string, n)
	for i := 0; i < n; i++ {
		k := x.keepAlive(t, c, i)
		clients[i] = k.c.LocalAddr().String()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				a := answer{at: time.Now()}
				// A packet lost in the cut is retransmitted by TCP: the
				// request is late, not failed.
				a.server, a.peer, a.err = k.get(10 * time.Second)
				a.took = time.Since(a.at)
				answers[i] = append(answers[i], a)
				if a.err != nil {
					return
				}
				select {
				case <-ctx.Done():
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
	}
	time.Sleep(time.Second)
	// Each director lists the flows it remembers, as ipvsadm -lnc does on
	// a DR director: the master every connection, the backup none.
	remembered := func(d *node) map[string]control.Conn {
		_, cs := conns(t, d, true)
		out := map[string]control.Conn{}
		for _, cn := range cs {
			out[cn.Client] = cn
		}
		return out
	}
	before, backup := remembered(d1), remembered(d2)
	cut := time.Now()
	if err := x.lab.Cut(x.ports[0]); err != nil {
		t.Fatal(err)
	}
	takeover := waitDirector(t, d2, "MASTER", 10*time.Second)
	time.Sleep(2 * time.Second)
	after := remembered(d2)
	cancel()
	wg.Wait()
	for i, client := range clients {
		if len(answers[i]) == 0 {
			continue
		}
		var real string
		for _, r := range x.rs {
			if r.name == answers[i][0].server {
				real = netip.AddrPortFrom(r.addr, 80).String()
			}
		}
		for _, l := range []struct {
			who string
			m   map[string]control.Conn
		}{{"dir1 before the cut", before}, {"dir2 after its takeover", after}} {
			if cn, ok := l.m[client]; !ok || cn.Real != real || cn.State != "ESTABLISHED" || cn.Virtual != netip.AddrPortFrom(x.vip, 80).String() {
				t.Errorf("vigil conns on %s: connection %d from %s listed %+v (%v), want ESTABLISHED to %s", l.who, i, client, cn, ok, real)
			}
		}
	}
	if len(backup) != 0 {
		t.Errorf("the backup lists %d flows it never forwarded: %v", len(backup), backup)
	}

	servers := map[string]int{}
	var worst time.Duration
	for i, as := range answers {
		if len(as) == 0 {
			t.Errorf("connection %d: no answer at all", i)
			continue
		}
		first := as[0]
		var afterCut int
		for _, a := range as {
			if a.err != nil {
				t.Errorf("connection %d from 192.0.2.%d: request at %v after the cut failed: %v", i, 10+i, a.at.Sub(cut).Round(time.Millisecond), a.err)
				continue
			}
			if a.server != first.server || a.peer != first.peer {
				t.Errorf("connection %d: answered by %s seeing %s, then by %s seeing %s", i, first.server, first.peer, a.server, a.peer)
			}
			if a.at.After(cut.Add(takeover)) {
				afterCut++
			}
			if !a.at.Before(cut.Add(-time.Second)) {
				worst = max(worst, a.took)
			}
		}
		if !strings.HasPrefix(first.peer, fmt.Sprintf("192.0.2.%d:", 10+i)) {
			t.Errorf("connection %d: the real server saw %s, want the client's own address (DR does not rewrite it)", i, first.peer)
		}
		if afterCut < 10 {
			t.Errorf("connection %d: only %d answers after dir2 took over", i, afterCut)
		}
		servers[first.server]++
	}
	t.Logf("mh over DR: %d keep-alive connections by real server %v; master's link cut, dir2 MASTER after %v; "+
		"every connection kept its real server and TCP connection, no request failed; slowest request around the cut %v",
		n, servers, takeover.Round(time.Millisecond), worst.Round(time.Millisecond))
	if len(servers) < 2 {
		t.Errorf("all connections hashed to one real server %v: the test shows nothing about spreading", servers)
	}
}

// TestLBFNATConns holds a request in flight through an FNAT virtual server
// (the client sends its request line and headers but not the blank line
// that ends them, so nginx waits) and checks that `vigil conns` lists the
// connection like `ipvsadm -lnc`: the client's address and port, the VIP,
// the local address the real server sees and the real server. Once the
// request completes, the real server's own view (X-Server, X-Peer) must be
// exactly that real server and that local address and port.
func TestLBFNATConns(t *testing.T) {
	requireLBLab(t)
	t.Parallel()
	x, d, c := startLB(t, "lbconn", "FNAT", 2*time.Second, nil)

	k := x.keepAlive(t, c, 0)
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: vigil-e2e\r\n"); err != nil {
		t.Fatal(err)
	}
	client := k.c.LocalAddr().String()
	var conn control.Conn
	waitFor(t, 5*time.Second, "vigil conns to list "+client, func() bool {
		_, cs := conns(t, d, true)
		for _, cn := range cs {
			if cn.Client == client {
				conn = cn
				return true
			}
		}
		return false
	})
	text, _ := conns(t, d, false)
	t.Logf("vigil conns while the request is in flight:\n%s", text)
	if conn.Proto != "tcp" || conn.State != "ESTABLISHED" || conn.Virtual != netip.AddrPortFrom(x.vip, 80).String() {
		t.Errorf("conns entry %+v: want tcp ESTABLISHED to %v:80", conn, x.vip)
	}
	local, err := netip.ParseAddrPort(conn.Local)
	if err != nil || local.Addr() != netip.MustParseAddr(lbLocalAddr) {
		t.Errorf("conns entry %+v: local address %q, want %s:port from the laddr group", conn, conn.Local, lbLocalAddr)
	}
	var line string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, client) {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) != 7 || f[0] != "TCP" || f[2] != "ESTABLISHED" || f[3] != client || f[5] != conn.Local || f[6] != conn.Real {
		t.Errorf("vigil conns line for %s: %q, want TCP EXPIRE ESTABLISHED %s VIP %s %s", client, line, client, conn.Local, conn.Real)
	}

	if _, err := io.WriteString(k.c, "\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = k.c.SetDeadline(time.Now().Add(2 * time.Second))
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	srv, peer := resp.Header.Get("X-Server"), resp.Header.Get("X-Peer")
	var want string
	for _, r := range x.rs {
		if r.name == srv {
			want = netip.AddrPortFrom(r.addr, 80).String()
		}
	}
	if want != conn.Real || peer != conn.Local {
		t.Errorf("the request was answered by %s (%s) seeing the client as %s; vigil conns said real %s, local %s", srv, want, peer, conn.Real, conn.Local)
	}
}

// TestLBFailoverNoReset dials the VIP every 2 ms (50 ms timeout, so many
// dials are in flight) while the master director's link is cut, and while
// it preempts back once the link heals. A client may lose a SYN while the
// VIP moves (it times out, and TCP would
// retransmit it), but it must never get a reset: the new master must
// forward the service from the moment it owns the VIP, as a keepalived
// backup does with its IPVS services in place before it takes the VIP.
func TestLBFailoverNoReset(t *testing.T) {
	fnatAndDR(t, "lbr", func(t *testing.T, tc lbCase) {
		x := newLBLab(t, tc.prefix, tc.kind, 2)
		d1 := x.director(0, x.conf("rr", 150, nil))
		d2 := x.director(1, x.conf("rr", 100, nil))
		c := newLBClient(x.client, 50*time.Millisecond)
		x.waitServing(d1, c)
		waitDirector(t, d2, "BACKUP", 10*time.Second)

		var mu sync.Mutex
		var refused []time.Time
		var answered, lost int
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		src := netip.AddrPortFrom(netip.MustParseAddr(lbClientAddr), 0)
		vip := netip.AddrPortFrom(x.vip, 80).String()
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					at := time.Now()
					conn, err := c.dial(context.Background(), src, vip)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						answered++
						conn.Close()
					case errors.Is(err, syscall.ECONNREFUSED):
						refused = append(refused, at)
					default:
						lost++
					}
				}()
			}
		}()
		time.Sleep(300 * time.Millisecond)
		cut := time.Now()
		if err := x.lab.Cut(x.ports[0]); err != nil {
			t.Fatal(err)
		}
		takeover := waitDirector(t, d2, "MASTER", 10*time.Second)
		time.Sleep(time.Second)
		// And back: dir1 (priority 150) preempts once its link heals,
		// and dir2 hands over.
		heal := time.Now()
		if err := x.lab.Heal(x.ports[0]); err != nil {
			t.Fatal(err)
		}
		preempt := waitDirector(t, d1, "MASTER", 10*time.Second)
		time.Sleep(time.Second)
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		var at []string
		for _, r := range refused {
			if r.Before(heal) {
				at = append(at, "cut+"+r.Sub(cut).Round(time.Millisecond).String())
			} else {
				at = append(at, "heal+"+r.Sub(heal).Round(time.Millisecond).String())
			}
		}
		t.Logf("%s: dials every 2 ms across the cut and the heal: %d answered, %d lost (timed out), %d reset; dir2 MASTER %v after the cut, dir1 MASTER again %v after the heal; resets at %v",
			tc.name, answered, lost, len(refused), takeover.Round(time.Millisecond), preempt.Round(time.Millisecond), at)
		if len(refused) > 0 {
			t.Errorf("%d dials to the VIP were reset (connection refused) while the VIP moved, at %v: a director answered for the VIP without forwarding its port",
				len(refused), at)
		}
	})
}

// TestLBFNATIPv6 is the rr spread over IPv6: 300 requests to
// [2001:db8:f::100]:80, each on a new connection, exactly 100 per real
// server (numgen, as over IPv4), each real server seeing the IPv6 local
// address, and `vigil conns` listing them.
func TestLBFNATIPv6(t *testing.T) {
	x, d, c, url := startLB6(t, "lbsf6", "FNAT")
	const n = 300
	x.checkSpread(t, c.spread(t, url, n), n, nil)
	_, cs := conns(t, d, true)
	var local int
	for _, cn := range cs {
		if ap, err := netip.ParseAddrPort(cn.Local); err == nil && ap.Addr() == netip.MustParseAddr(lbLocal6) &&
			cn.Virtual == "["+lbVIP6Front+"]:80" && strings.HasPrefix(cn.Client, "[2001:db8:f::10]:") {
			local++
		}
	}
	if local < n {
		t.Errorf("vigil conns lists %d IPv6 FNAT connections through local address 2001:db8:b::fe, want the %d just made (%d entries)", local, n, len(cs))
	}
	stopAndCheckTables(t, d, "table inet vigil")
}

// TestLBInhibitOnFailure fails a real server's health check (a MISC_CHECK
// on a file) while nginx on it keeps running: with inhibit_on_failure it
// stays configured with weight 0, so the keep-alive connections it already
// serves go on being answered by it while no new connection reaches it;
// once its check passes again it takes new connections. For FNAT conntrack
// keeps the old flows' NAT bindings; for DR, which has no flow state, the
// data plane keeps sending the draining real server's old Maglev slots to
// it for packets that are not a new connection. The connections of the
// other real servers stay too: their Maglev slots do not move, but for a
// handful (7 of 16381 for these three real servers, so the test's few
// connections all stay with probability above 99.5%).
func TestLBInhibitOnFailure(t *testing.T) {
	fnatAndDR(t, "lbi", func(t *testing.T, tc lbCase) {
		flags := t.TempDir()
		x, d, c := startLB(t, tc.prefix, tc.kind, time.Second, func(x *lbLab) string { return x.confInhibit("rr", 150, flags) })

		// Keep-alive connections from every client address until
		// each real server holds at least two of them.
		type kept struct {
			k            *kaConn
			server, peer string
		}
		var ka []kept
		held := map[string]int{}
		for i := 0; len(ka) < 60 && (held["r1"] < 2 || held["r2"] < 2 || held["r3"] < 2); i++ {
			k := x.keepAlive(t, c, i%(lbClientAliases+1))
			srv, peer, err := k.get(2 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ka = append(ka, kept{k, srv, peer})
			held[srv]++
		}
		t.Logf("%d keep-alive connections, by real server: %v", len(ka), held)

		victim := x.rs[1]
		if err := os.WriteFile(filepath.Join(flags, victim.name+".down"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, 5*time.Second, victim.name+" to be down with weight 0", func() bool {
			r, ok := realStatus(d, victim.addr)
			return ok && !r.Up && r.Weight == 0
		})
		lag := x.waitScheduled(t, d, victim, false)
		newConns := c.spread(t, x.url(), 150)
		var moved []string
		for round := 0; round < 3; round++ {
			for i, kc := range ka {
				srv, peer, err := kc.k.get(2 * time.Second)
				switch {
				case err != nil && kc.server == victim.name:
					t.Errorf("keep-alive connection %d to the draining %s failed: %v", i, victim.name, err)
				case err != nil:
					moved = append(moved, fmt.Sprintf("%d (%s): %v", i, kc.server, err))
				case srv != kc.server || peer != kc.peer:
					t.Errorf("keep-alive connection %d: answered by %s seeing %s, first by %s seeing %s", i, srv, peer, kc.server, kc.peer)
				}
			}
		}
		t.Logf("%s: %s down (weight 0) in status %v after its check failed, seen gone from the nft scheduling map %v later (polling included); 150 new connections went to %v; its %d keep-alive connections still answered by it",
			tc.name, victim.name, took.Round(time.Millisecond), lag.Round(time.Millisecond), newConns, held[victim.name])
		if newConns[victim.name] > 0 {
			t.Errorf("%d new connections reached %s while its weight was 0", newConns[victim.name], victim.name)
		}
		if len(moved) > 0 {
			t.Errorf("keep-alive connections to the real servers that stayed up broke when %s drained: %v", victim.name, moved)
		}

		if err := os.Remove(filepath.Join(flags, victim.name+".down")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, victim.name+" to be up again", func() bool {
			r, ok := realStatus(d, victim.addr)
			return ok && r.Up && r.Weight == 1
		})
		x.waitScheduled(t, d, victim, true)
		again := c.spread(t, x.url(), 150)
		t.Logf("%s: %s up again; 150 new connections went to %v", tc.name, victim.name, again)
		if again[victim.name] == 0 {
			t.Errorf("no new connection reached %s after it was up again: %v", victim.name, again)
		}
	})
}

// TestLBReload changes the virtual server under traffic (SIGHUP: rr to
// wrr 1:2:3) while one real server is down, and checks that the reload
// costs nothing: no request fails, the established keep-alive connection
// goes on, the dead real server stays out of the pool (its health is
// known, the reload must not forget it), and new connections follow the
// new weights at once: 1:3 between the two live real servers, exactly
// (numgen). Once the dead one runs again it takes its weight of 2.
func TestLBReload(t *testing.T) {
	requireLBLab(t)
	t.Parallel()
	x, d, c := startLB(t, "lbrld", "FNAT", 500*time.Millisecond, nil)
	victim := x.rs[1]
	victim.kill()
	waitFor(t, 2*lbRemovalBound, victim.name+" to be down", func() bool {
		r, ok := realStatus(d, victim.addr)
		return ok && !r.Up
	})
	x.waitScheduled(t, d, victim, false)
	k := x.keepAlive(t, c, 0)
	first, _, err := k.get(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}

	s := startStream(c, x.url(), 10*time.Millisecond)
	defer s.stop()
	time.Sleep(500 * time.Millisecond)
	hup := time.Now()
	if ok, errs, _ := d.reload(t, x.conf("wrr", 150, []int{1, 2, 3}), "the reload to be reported", 5*time.Second); !ok {
		t.Fatalf("reload rejected: %v", errs)
	}
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Services) != 1 || st.Services[0].Scheduler != "wrr" {
		t.Fatalf("after the reload: %+v, want the wrr virtual server", st.Services)
	}
	if r, _ := realStatus(d, victim.addr); r.Up {
		t.Errorf("%s is up right after the reload although nginx on it is dead: the reload forgot its health", victim.name)
	}
	time.Sleep(3 * time.Second)
	res := s.stop()
	all := summarize(res, time.Time{}, time.Now())
	t.Logf("reload (changes %v) under a stream: %d requests, %d failed, by server %v", st.LastReload.Changes, all.total, all.failed, all.byServer)
	if all.failed > 0 {
		after := summarize(res, hup, time.Now())
		t.Errorf("%d requests failed, %d of them after the SIGHUP (first %v after it, last: %v)", all.failed, after.failed, after.firstFail.Sub(hup).Round(time.Millisecond), all.lastErr)
	}
	if srv, _, err := k.get(2 * time.Second); err != nil || srv != first {
		t.Errorf("keep-alive connection across the reload: answered by %q (%v), first by %s", srv, err, first)
	}
	got := c.spread(t, x.url(), 200)
	t.Logf("after the reload, 200 new connections: %v", got)
	if got["r1"] != 50 || got["r3"] != 150 || got[victim.name] != 0 {
		t.Errorf("after the reload to wrr 1:2:3 with %s down: %v, want r1 50, r3 150 exactly", victim.name, got)
	}

	victim.start(t)
	waitFor(t, 5*time.Second, victim.name+" to be up with weight 2", func() bool {
		r, ok := realStatus(d, victim.addr)
		return ok && r.Up && r.Weight == 2
	})
	x.waitScheduled(t, d, victim, true)
	got = c.spread(t, x.url(), 300)
	t.Logf("%s back: 300 new connections: %v", victim.name, got)
	if got["r1"] != 50 || got["r2"] != 100 || got["r3"] != 150 {
		t.Errorf("wrr 1:2:3 with every real server up: %v, want 50/100/150", got)
	}
}

// TestLBPersistence: with persistence_timeout every client address keeps
// its real server across new connections; the clients themselves are
// spread (rr hands the first connections of 9 clients out in turn: 3 per
// real server for FNAT; DR hashes the client address into the Maglev
// table). When a client's real server dies, the client moves, once, to
// another one and sticks to it.
func TestLBPersistence(t *testing.T) {
	fnatAndDR(t, "lbp", func(t *testing.T, tc lbCase) {
		x, d, c := startLB(t, tc.prefix, tc.kind, time.Second, func(x *lbLab) string {
			return strings.Replace(x.conf("rr", 150, nil), "  protocol TCP\n", "  protocol TCP\n  persistence_timeout 30\n", 1)
		})

		// Each client address makes 10 connections, round after
		// round, so that the first connections of the 9 clients come
		// one after the other.
		owner := func() (map[int]string, map[string]int) {
			t.Helper()
			seen := map[int]map[string]int{}
			for round := 0; round < 10; round++ {
				for i := 0; i <= lbClientAliases; i++ {
					srv, err := c.getFrom(i, x.url())
					if err != nil {
						t.Fatalf("client 192.0.2.%d: %v", 10+i, err)
					}
					if seen[i] == nil {
						seen[i] = map[string]int{}
					}
					seen[i][srv]++
				}
			}
			own, per := map[int]string{}, map[string]int{}
			for i, m := range seen {
				if len(m) != 1 {
					t.Errorf("client 192.0.2.%d was not kept on one real server: %v", 10+i, m)
				}
				for srv := range m {
					own[i] = srv
					per[srv]++
				}
			}
			return own, per
		}
		// The warm-up pinned a few clients already, in turn too: the
		// numgen counter only moves for clients not pinned yet.
		own, per := owner()
		t.Logf("%s: 9 clients × 10 connections, clients per real server: %v", tc.name, per)
		if tc.kind == "FNAT" {
			for _, r := range x.rs {
				if per[r.name] != 3 {
					t.Errorf("clients per real server %v: rr should give each 3 of the 9", per)
				}
			}
		} else if len(per) < 2 {
			t.Errorf("all 9 clients hashed to one real server: %v", per)
		}

		victim := x.rs[0]
		for _, r := range x.rs {
			if r.name == own[0] {
				victim = r
			}
		}
		victim.kill()
		waitFor(t, 2*lbRemovalBound, victim.name+" to be down", func() bool {
			r, ok := realStatus(d, victim.addr)
			return ok && !r.Up
		})
		x.waitScheduled(t, d, victim, false)
		own2, per2 := owner()
		t.Logf("%s: %s (client 192.0.2.10's) killed; clients per real server now: %v", tc.name, victim.name, per2)
		for i, srv := range own {
			switch {
			case own2[i] == victim.name:
				t.Errorf("client 192.0.2.%d still sent to the dead %s", 10+i, victim.name)
			case srv != victim.name && own2[i] != srv:
				t.Errorf("client 192.0.2.%d moved from %s to %s though its real server is alive", 10+i, srv, own2[i])
			}
		}
	})
}

// TestLBSorryServer: r3 is the sorry_server of a virtual server whose real
// servers are r1 and r2. While either lives, r3 gets nothing; once both
// are dead (quorum 1 lost) every new connection goes to r3 and none fails
// after the removal bound; when r1 comes back, it takes the traffic again.
func TestLBSorryServer(t *testing.T) {
	requireLBLab(t)
	t.Parallel()
	x := newLBLab(t, "lbsorry", "FNAT", 1)
	r3 := fmt.Sprintf("  real_server %s 80 {\n    weight 1\n    TCP_CHECK {\n      connect_timeout %d\n      retry %d\n    }\n  }\n",
		x.rs[2].addr, int(lbConnectTimeout/time.Second), lbRetry)
	conf := x.conf("rr", 150, nil)
	if !strings.Contains(conf, r3) {
		t.Fatalf("conf lacks %q", r3)
	}
	conf = strings.Replace(conf, r3, fmt.Sprintf("  sorry_server %s 80\n", x.rs[2].addr), 1)
	d := x.director(0, conf)
	c := newLBClient(x.client, 500*time.Millisecond)
	waitDirector(t, d, "MASTER", 15*time.Second)
	waitFor(t, 10*time.Second, "r1 and r2 to answer", func() bool {
		got := map[string]bool{}
		for i := 0; i < 4; i++ {
			if srv, err := c.get(x.url()); err == nil {
				got[srv] = true
			}
		}
		return got["r1"] && got["r2"]
	})
	if got := c.spread(t, x.url(), 60); got["r1"] != 30 || got["r2"] != 30 {
		t.Errorf("with r1 and r2 up: %v, want 30/30 and nothing for the sorry server", got)
	}

	s := startStream(c, x.url(), 10*time.Millisecond)
	defer s.stop()
	kill := time.Now()
	x.rs[0].kill()
	x.rs[1].kill()
	waitFor(t, 2*lbRemovalBound, "quorum to be lost", func() bool {
		st, err := d.Status()
		return err == nil && len(st.Services) == 1 && !st.Services[0].Quorum
	})
	lost := time.Since(kill)
	bound := kill.Add(lbRemovalBound)
	time.Sleep(time.Until(bound.Add(time.Second)))
	post := summarize(s.results(), bound, time.Now())
	t.Logf("r1 and r2 killed: quorum lost after %v; after the bound %d requests, %d failed, by server %v", lost.Round(time.Millisecond), post.total, post.failed, post.byServer)
	if post.failed > 0 || post.byServer["r3"] != post.total || post.total < 50 {
		t.Errorf("after r1 and r2 died: %d of %d requests failed, %v answered; want every one answered by the sorry server r3 (last error: %v)", post.failed, post.total, post.byServer, post.lastErr)
	}

	x.rs[0].start(t)
	back := time.Now()
	waitFor(t, 5*time.Second, "quorum to be back", func() bool {
		st, err := d.Status()
		return err == nil && len(st.Services) == 1 && st.Services[0].Quorum
	})
	x.waitScheduled(t, d, x.rs[0], true)
	settled := time.Now()
	time.Sleep(time.Second)
	res := s.stop()
	after := summarize(res, settled, time.Now())
	t.Logf("r1 back: quorum up again after %v; then %d requests by %v, %d failed", time.Since(back).Round(time.Millisecond), after.total, after.byServer, after.failed)
	if after.failed > 0 || after.byServer["r1"] != after.total || after.total < 50 {
		t.Errorf("with r1 back: %d of %d requests failed, %v answered; want all by r1", after.failed, after.total, after.byServer)
	}
	if all := summarize(res, bound, time.Now()); all.failed > 0 {
		t.Errorf("%d requests failed after the bound, across r1's return (last: %v)", all.failed, all.lastErr)
	}
}

// TestLBUDP balances a UDP service (port 53; the real servers are Go
// responders, their health a TCP_CHECK of nginx on port 80): 300 queries,
// each from a new socket and so a new flow, exactly 100 per real server
// for FNAT (numgen over conntrack's new flows, listed by `vigil conns` with
// the local address) and within 4σ for DR (flow hash, as for TCP).
func TestLBUDP(t *testing.T) {
	fnatAndDR(t, "lbu", func(t *testing.T, tc lbCase) {
		x := newLBLab(t, tc.prefix, tc.kind, 1)
		for _, r := range x.rs {
			bind := ":53"
			if tc.kind == "DR" {
				bind = lbVIPDR + ":53"
			}
			serveUDP(t, r, bind)
		}
		conf := x.conf("rr", 150, nil)
		conf = strings.Replace(conf, fmt.Sprintf("virtual_server %s 80 {", x.vip), fmt.Sprintf("virtual_server %s 53 {", x.vip), 1)
		conf = strings.Replace(conf, "  protocol TCP\n", "  protocol UDP\n", 1)
		conf = strings.ReplaceAll(conf, " 80 {\n    weight", " 53 {\n    weight")
		conf = strings.ReplaceAll(conf, "    TCP_CHECK {\n", "    TCP_CHECK {\n      connect_port 80\n")
		d := x.director(0, conf)
		c := newLBClient(x.client, 300*time.Millisecond)
		waitDirector(t, d, "MASTER", 15*time.Second)
		vip := netip.AddrPortFrom(x.vip, 53).String()
		seen := map[string]bool{}
		waitFor(t, 15*time.Second, "every real server to answer through the VIP", func() bool {
			if ans, err := c.query(vip); err == nil {
				seen[ans] = true
			}
			return len(seen) == len(x.rs)
		})
		const n = 300
		got := map[string]int{}
		for i := 0; i < n; i++ {
			ans, err := c.queryFrom(vip, 20000+i)
			if err != nil {
				t.Fatalf("query %d: %v", i+1, err)
			}
			got[ans]++
		}
		x.checkSpread(t, got, n, nil)
		if tc.kind == "FNAT" {
			_, cs := conns(t, d, true)
			var udp int
			for _, cn := range cs {
				if cn.Proto == "udp" && cn.Virtual == vip && strings.HasPrefix(cn.Local, lbLocalAddr+":") {
					udp++
				}
			}
			if udp < n {
				t.Errorf("vigil conns lists %d UDP flows through the local address, want the %d just made", udp, n)
			}
		}
	})
}

// TestLBDRIPv6 is DR over IPv6: the DR lab gets IPv6 addresses (client
// 2001:db8:c::10 behind the router, the rest on 2001:db8:b::/64, the VIP
// 2001:db8:b::100 on the real servers' lo, where they do not answer
// neighbour solicitations for it), the director learns the real servers'
// MACs from its IPv6 neighbour table, and 300 new connections spread
// within 4σ, each real server seeing the client's own address.
func TestLBDRIPv6(t *testing.T) {
	x, d, c, url := startLB6(t, "lbsd6", "DR")
	const n = 300
	x.checkSpread(t, c.spread(t, url, n), n, nil)
	var peer string
	k, err := c.dialKeepAlive6("[" + lbVIP6DR + "]:80")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if _, peer, err = k.get(2 * time.Second); err != nil || !strings.HasPrefix(peer, "2001:db8:c::10:") {
		t.Errorf("the real server saw the connection from %q (%v), want the client 2001:db8:c::10", peer, err)
	}
	stopAndCheckTables(t, d, "table netdev vigil")
}

// TestLBNoStaleFlowToDeadServer unplugs a real server and dials the VIP
// from 30 fixed client ports while it is still in the pool: the SYNs the
// director sends to it go unanswered. Once it is out of the pool, a new
// connection from one of those same ports must reach a live real server.
// (A client reuses a port as soon as its failed connect is closed, and one
// retrying from a fixed port, or many clients behind a NAT, do so all the
// time.) With FNAT/NAT the director's conntrack still holds the unreplied
// entry, which keeps its NAT binding to the dead real server for as long
// as SYNs keep coming (nf_conntrack_tcp_timeout_syn_sent, 120 s, renewed
// by each retry): the data plane must forget the flows of a real server
// that left the pool, as IPVS does (expire_nodest_conn). DR keeps no
// conntrack state, and its memory of a flow is not followed to a real
// server that left: it is the control case.
func TestLBNoStaleFlowToDeadServer(t *testing.T) {
	fnatAndDR(t, "lbst", func(t *testing.T, tc lbCase) {
		x, d, c := startLB(t, tc.prefix, tc.kind, 300*time.Millisecond, nil)
		victim := x.rs[1]
		if err := x.lab.Cut(victim.port); err != nil {
			t.Fatal(err)
		}
		vip := netip.AddrPortFrom(x.vip, 80).String()
		from := func(port uint16) netip.AddrPort {
			return netip.AddrPortFrom(netip.MustParseAddr(lbClientAddr), port)
		}
		var lost []uint16
		for p := uint16(40000); p < 40030; p++ {
			conn, err := c.dial(context.Background(), from(p), vip)
			if err != nil {
				lost = append(lost, p)
				continue
			}
			conn.Close()
		}
		if len(lost) == 0 {
			t.Fatalf("no connection went to the unplugged %s", victim.name)
		}
		waitFor(t, 3*lbRemovalBound, victim.name+" to be down", func() bool {
			r, ok := realStatus(d, victim.addr)
			return ok && !r.Up
		})
		x.waitScheduled(t, d, victim, false)
		// The data plane deletes the stale flows right after it swaps
		// the rules, in the same Apply: give it that moment.
		time.Sleep(200 * time.Millisecond)
		var stuck []uint16
		for _, p := range lost {
			conn, err := c.dial(context.Background(), from(p), vip)
			if err != nil {
				stuck = append(stuck, p)
				continue
			}
			conn.Close()
		}
		t.Logf("%s: %d of 30 fixed client ports lost their connection to the unplugged %s; after its removal, %d of them still fail: %v",
			tc.name, len(lost), victim.name, len(stuck), stuck)
		if len(stuck) > 0 {
			t.Errorf("%d of %d client ports still cannot connect after %s left the pool: their new SYNs follow the stale flow to it", len(stuck), len(lost), victim.name)
		}
	})
}
