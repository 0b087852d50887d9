package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"vigil/control"
	"vigil/doctor"
	"vigil/internal/doctortest"
	"vigil/internal/labtest"
	"vigil/internal/testenv"
)

// Connection sync (lvs_sync_daemon, issue 9) end to end: two directors on
// the NAT lab of lbhelpers_test.go (VRRPv3 at 100 ms; the VIPs and the
// FNAT local address / NAT gateway float on the master) with four virtual
// servers over the same three nginx real servers: NAT and FNAT, IPv4 and
// IPv6 (a second instance in a vrrp_sync_group with the first). 300
// keep-alive connections, 75 per virtual server, each send a request every
// 50 ms through a run of failovers; a connection "sees an error" when a
// request on it fails: a reset, a close, an answer from another real
// server, or no answer within syncReqTimeout. Each error is counted in the
// phase its request was sent in, and stop waits for the requests in
// flight: a request that fails after its phase's window (or after the
// last phase) is still counted.
//
// The bound is tighter than it looks: a request held up by the takeover
// is answered at the client's first TCP retransmission after the new
// master has the VIPs, and those come 0.2, 0.6, 1.4, 3.0 s after the
// request (the minimum RTO, doubling; later under load), so 3 s fails a
// request whose takeover took the VIPs away for more than about 1.5-2 s.
// The longest answered wait of each phase is logged: 0.9-2.0 s at the
// link cut on a 2-core host at load 15-18.
const (
	syncConns      = 300
	syncPeriod     = 50 * time.Millisecond
	syncReqTimeout = 3 * time.Second
	syncSettle     = 2 * time.Second // traffic after each failover before the next
	syncKey        = "e2e-sync-key-0123456789"
	syncVIPNAT     = "192.0.2.100"
	syncVIPFNAT    = "192.0.2.101"
	syncVIPNAT6    = "2001:db8:f::100"
	syncVIPFNAT6   = "2001:db8:f::101"
)

// syncConf is both directors' keepalived.conf, by priority.
func syncConf(prio int, sync bool) string {
	var b strings.Builder
	if sync {
		fmt.Fprintf(&b, "global_defs {\n  lvs_sync_daemon eth1 VI_LB id 60\n  lvs_sync_auth_key %s\n}\n", syncKey)
	}
	fmt.Fprintf(&b, "local_address_group laddr {\n  %s\n}\nlocal_address_group laddr6 {\n  %s\n}\n", lbLocalAddr, lbLocal6)
	b.WriteString("vrrp_sync_group G {\n  group {\n    VI_LB\n    VI_LB6\n  }\n}\n")
	// One instance per family, each with the NAT and FNAT VIPs and the
	// local address / gateway of that family.
	for _, in := range []struct {
		name          string
		vrid          int
		nat, fnat, gw string
		plen          int
	}{{"VI_LB", 60, syncVIPNAT, syncVIPFNAT, lbLocalAddr, 24}, {"VI_LB6", 61, syncVIPNAT6, syncVIPFNAT6, lbLocal6, 64}} {
		fmt.Fprintf(&b, "vrrp_instance %s {\n  interface eth0\n  state BACKUP\n  virtual_router_id %d\n  version 3\n  priority %d\n  advert_int 0.1\n", in.name, in.vrid, prio)
		fmt.Fprintf(&b, "  virtual_ipaddress {\n    %[1]s/%[4]d dev eth0\n    %[2]s/%[4]d dev eth0\n    %[3]s/%[4]d dev eth1\n  }\n}\n", in.nat, in.fnat, in.gw, in.plen)
	}
	for _, vs := range []struct{ vip, kind, laddr, rsNet string }{
		{syncVIPNAT, "NAT", "", "198.51.100.1"},
		{syncVIPFNAT, "FNAT", "laddr", "198.51.100.1"},
		{syncVIPNAT6, "NAT", "", "2001:db8:b::1"},
		{syncVIPFNAT6, "FNAT", "laddr6", "2001:db8:b::1"},
	} {
		fmt.Fprintf(&b, "virtual_server %s 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind %s\n  protocol TCP\n", vs.vip, vs.kind)
		if vs.laddr != "" {
			fmt.Fprintf(&b, "  laddr_group_name %s\n", vs.laddr)
		}
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(&b, "  real_server %s%d 80 {\n    TCP_CHECK {\n      connect_timeout 1\n      retry 1\n    }\n  }\n", vs.rsNet, i)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// newSyncLab is the NAT lab of two directors with the IPv6 addresses the
// four services need.
func newSyncLab(t *testing.T, prefix string) *lbLab {
	t.Helper()
	x := newLBLab(t, prefix, "NAT", 2)
	x.addIPv6()
	return x
}

// waitSyncDirector waits until both of n's instances are in state and its
// four virtual servers have every real server up, active exactly when
// MASTER.
func waitSyncDirector(t *testing.T, n *node, state string, timeout time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, timeout, n.Host.Name+" to be "+state+" with every real server up", func() bool {
		s, err := n.Status()
		if err != nil || len(s.Instances) != 2 || len(s.Services) != 4 {
			return false
		}
		for _, in := range s.Instances {
			if in.State != state {
				return false
			}
		}
		for _, vip := range []string{syncVIPNAT, syncVIPFNAT6} {
			if n.hasAddr(netip.MustParseAddr(vip)) != (state == "MASTER") {
				return false // the VIPs are claimed after the takeover's install
			}
		}
		for _, v := range s.Services {
			if v.Active != (state == "MASTER") {
				return false
			}
			for _, r := range v.RealServers {
				if !r.Up {
					return false
				}
			}
		}
		return true
	})
}

// syncTraffic is the 300 keep-alive connections and what they saw.
type syncTraffic struct {
	mu     sync.Mutex
	errs   map[int][]time.Time // by connection: when each failed request was sent
	detail map[int]string      // the first error of each connection
	ok     map[int]int         // answered requests by connection
	slow   []syncWait          // answered requests that waited over syncSlow
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// syncWait is an answered request that waited: when it was sent, how long.
type syncWait struct {
	at   time.Time
	took time.Duration
}

// syncSlow is the wait from which an answered request is recorded: the
// client's first TCP retransmission comes 0.2 s after the request.
const syncSlow = 150 * time.Millisecond

var syncTargets = []string{
	netip.AddrPortFrom(netip.MustParseAddr(syncVIPNAT), 80).String(),
	netip.AddrPortFrom(netip.MustParseAddr(syncVIPFNAT), 80).String(),
	netip.AddrPortFrom(netip.MustParseAddr(syncVIPNAT6), 80).String(),
	netip.AddrPortFrom(netip.MustParseAddr(syncVIPFNAT6), 80).String(),
}

var syncTargetNames = []string{"NAT/IPv4", "FNAT/IPv4", "NAT/IPv6", "FNAT/IPv6"}

// startSyncPair starts dir1 (priority 150) and dir2 (100) of x with the
// connection sync on or off, waits for dir1 to be MASTER and dir2 BACKUP,
// and starts the client's traffic.
func startSyncPair(t *testing.T, x *lbLab, on bool) (d1, d2 *node, tr *syncTraffic) {
	t.Helper()
	d1 = x.director(0, syncConf(150, on))
	d2 = x.director(1, syncConf(100, on))
	waitSyncDirector(t, d1, "MASTER", 20*time.Second)
	waitSyncDirector(t, d2, "BACKUP", 10*time.Second)
	return d1, d2, startSyncTraffic(t, newLBClient(x.client, syncReqTimeout))
}

// startSyncTraffic opens the connections (connection i to service i%4) and
// keeps each sending; a failed connection is recorded and reopened.
func startSyncTraffic(t *testing.T, c *lbClient) *syncTraffic {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &syncTraffic{errs: map[int][]time.Time{}, detail: map[int]string{}, ok: map[int]int{}, cancel: cancel}
	for i := 0; i < syncConns; i++ {
		tr.wg.Add(1)
		go func() {
			defer tr.wg.Done()
			target := syncTargets[i%4]
			var k *kaConn
			var server string
			fail := func(at time.Time, what string, err error) {
				tr.mu.Lock()
				tr.errs[i] = append(tr.errs[i], at)
				if _, ok := tr.detail[i]; !ok {
					tr.detail[i] = fmt.Sprintf("%s: %s: %v", syncTargetNames[i%4], what, err)
				}
				tr.mu.Unlock()
			}
			defer func() {
				if k != nil {
					k.Close()
				}
			}()
			for ctx.Err() == nil {
				sent := time.Now()
				if k == nil {
					var err error
					if i%4 < 2 {
						k, err = c.dialKeepAlive((i/4)%(lbClientAliases+1), target)
					} else {
						k, err = c.dialKeepAlive6(target)
					}
					if err != nil {
						if ctx.Err() == nil {
							fail(sent, "dial", err)
						}
						time.Sleep(100 * time.Millisecond)
						continue
					}
					server = ""
				}
				sent = time.Now()
				srv, _, err := k.get(syncReqTimeout)
				took := time.Since(sent)
				if err != nil {
					// Even after stop: the request was sent before it,
					// and nothing but its own deadline ends it.
					fail(sent, "request", err)
					k.Close()
					k = nil
					continue
				}
				if server != "" && srv != server {
					fail(sent, "request", fmt.Errorf("answered by %s, then by %s on the same connection", server, srv))
				}
				server = srv
				tr.mu.Lock()
				tr.ok[i]++
				if took > syncSlow {
					tr.slow = append(tr.slow, syncWait{sent, took})
				}
				tr.mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(syncPeriod):
				}
			}
		}()
	}
	t.Cleanup(tr.stop)
	waitFor(t, 20*time.Second, "every connection to answer a request", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.ok) == syncConns
	})
	return tr
}

// stop sends no more requests and waits for those in flight to be
// answered or to fail.
func (tr *syncTraffic) stop() {
	tr.cancel()
	tr.wg.Wait()
}

// longest returns the longest wait of an answered request sent in
// [from, to).
func (tr *syncTraffic) longest(from, to time.Time) time.Duration {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var m time.Duration
	for _, w := range tr.slow {
		if !w.at.Before(from) && w.at.Before(to) {
			m = max(m, w.took)
		}
	}
	return m
}

// broken returns the connections with a request sent in [from, to) that
// failed, per service.
func (tr *syncTraffic) broken(from, to time.Time) (n int, per [4]int, sample []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, ts := range tr.errs {
		for _, at := range ts {
			if !at.Before(from) && at.Before(to) {
				n++
				per[i%4]++
				if len(sample) < 5 {
					sample = append(sample, tr.detail[i])
				}
				break
			}
		}
	}
	sort.Strings(sample)
	return n, per, sample
}

// syncPhase is one failover and the window whose errors it owns.
type syncPhase struct {
	name     string
	from, to time.Time
}

// syncStatus returns n's connection sync status (it must be configured).
func syncStatus(t *testing.T, n *node) control.SyncStatus {
	t.Helper()
	s, err := n.Status()
	if err != nil {
		t.Fatalf("%s: status: %v", n.Host.Name, err)
	}
	if s.Sync == nil {
		t.Fatalf("%s: status has no connection_sync", n.Host.Name)
	}
	return *s.Sync
}

// TestConnSyncFailover is issue 9's proof: with lvs_sync_daemon at most 1%
// of 300 keep-alive connections (NAT and FNAT, IPv4 and IPv6) see an error
// across (a) a cut of the master's link and its return (the master
// preempts and takes back its own flows, whose kernel entries are now out
// of date), (b) a kill -9 of the master, the killed director's restart
// (its conntrack table flushed, as at a reboot: it must get the whole
// table before it preempts, and the status shows the order), and (c) a
// planned SIGTERM hand-over. The same lab without the sync loses most
// connections at the link cut, so the test can fail; there a reload turns
// the sync on and off, and doctor reports different keys (VDB04).
func TestConnSyncFailover(t *testing.T) {
	requireLBLab(t)
	testenv.RequireTool(t, "conntrack")
	t.Run("sync", func(t *testing.T) {
		t.Parallel()
		x := newSyncLab(t, "cso")
		d1, d2, tr := startSyncPair(t, x, true)
		waitFor(t, 10*time.Second, "dir2 to hold a copy of every connection", func() bool {
			s := syncStatus(t, d2)
			return s.Running && !s.Master && s.Entries >= syncConns
		})

		var phases []syncPhase
		// phase runs event, which returns the director that must take
		// over, and lets the traffic run on.
		phase := func(name string, event func() *node) *node {
			t.Helper()
			from := time.Now()
			m := event()
			took := waitSyncDirector(t, m, "MASTER", 15*time.Second)
			t.Logf("%s: %s MASTER after %v", name, m.Host.Name, took.Round(time.Millisecond))
			time.Sleep(syncSettle)
			phases = append(phases, syncPhase{name, from, time.Now()})
			return m
		}
		restart := func(name string) *node {
			t.Helper()
			var started time.Time
			d := phase(name, func() *node {
				// The director's conntrack table goes (as at a reboot;
				// the traffic left it at the takeover): what it takes
				// back must come from the sync.
				labtest.MustRun(t, x.dirs[0], "conntrack", "-F")
				started = time.Now()
				return x.director(0, syncConf(150, true))
			})
			// It held its instances back until it had the master's
			// whole table.
			s, err := d.Status()
			if err != nil || s.Sync == nil {
				t.Fatalf("dir1 status: %v", err)
			}
			masterSince := s.Instances[0].Since
			t.Logf("%s: synced %v after its start, MASTER %v after it; %d full tables, %d entries received, last install %d entries in %v",
				name, s.Sync.SyncedAt.Sub(started).Round(time.Millisecond), masterSince.Sub(started).Round(time.Millisecond),
				s.Sync.FullSyncs, s.Sync.Received, s.Sync.LastInstall.Entries, time.Duration(s.Sync.LastInstall.Took))
			if s.Sync.FullSyncs == 0 || !s.Sync.Synced || s.Sync.SyncedAt.After(masterSince) {
				t.Errorf("%s: dir1 became MASTER at %v without the full table first (synced %v at %v, %d full tables)",
					name, masterSince, s.Sync.Synced, s.Sync.SyncedAt, s.Sync.FullSyncs)
			}
			if s.Sync.LastInstall.Entries < syncConns {
				t.Errorf("%s: dir1 installed %d entries at its takeover, want the %d connections", name, s.Sync.LastInstall.Entries, syncConns)
			}
			return d
		}
		// (a) the master's link cut, and its return: dir1 preempts and
		// takes back its own flows, whose packets went through dir2
		// meanwhile (its kernel's entries have stale sequence numbers).
		phase("link cut", func() *node {
			if err := x.lab.Cut(x.ports[0]); err != nil {
				t.Fatal(err)
			}
			return d2
		})
		phase("link back, dir1 preempts", func() *node {
			if err := x.lab.Heal(x.ports[0]); err != nil {
				t.Fatal(err)
			}
			return d1
		})
		// (b) kill -9 of the master: its VIPs, rules and conntrack stay,
		// as after a crash, until the backup's announcements move the
		// traffic.
		phase("kill -9", func() *node {
			d1.StopWith(syscall.SIGKILL)
			return d2
		})
		d1 = restart("restart, dir1 preempts")
		// (c) a planned hand-over.
		phase("SIGTERM", func() *node {
			d1.Stop()
			return d2
		})
		tr.stop()

		for _, p := range phases {
			n, per, sample := tr.broken(p.from, p.to)
			t.Logf("%s: %d of %d connections saw an error (NAT4 %d, FNAT4 %d, NAT6 %d, FNAT6 %d), longest answered wait %v %v",
				p.name, n, syncConns, per[0], per[1], per[2], per[3], tr.longest(p.from, p.to).Round(time.Millisecond), sample)
			if n > syncConns/100 {
				t.Errorf("%s: %d of %d connections saw an error with the sync on, want at most %d: %v", p.name, n, syncConns, syncConns/100, sample)
			}
		}
	})
	t.Run("no sync", func(t *testing.T) {
		t.Parallel()
		x := newSyncLab(t, "csf")
		d1, d2, tr := startSyncPair(t, x, false)
		time.Sleep(500 * time.Millisecond)
		from := time.Now()
		if err := x.lab.Cut(x.ports[0]); err != nil {
			t.Fatal(err)
		}
		waitSyncDirector(t, d2, "MASTER", 15*time.Second)
		time.Sleep(syncSettle)
		tr.stop()
		n, per, sample := tr.broken(from, time.Now())
		t.Logf("link cut without sync: %d of %d connections saw an error (NAT4 %d, FNAT4 %d, NAT6 %d, FNAT6 %d) %v", n, syncConns, per[0], per[1], per[2], per[3], sample)
		if n < syncConns/4 {
			t.Errorf("without the sync only %d of %d connections broke at the link cut, want at least %d: the lab does not show the loss the sync prevents", n, syncConns, syncConns/4)
		}

		// A reload turns the sync on and off. With different keys on the
		// two directors the master's datagrams are dropped for their HMAC
		// and doctor says so (VDB04); with the same key it is content.
		if err := x.lab.Heal(x.ports[0]); err != nil {
			t.Fatal(err)
		}
		waitSyncDirector(t, d1, "MASTER", 15*time.Second)
		otherKey := strings.Replace(syncConf(100, true), syncKey, "another-key-0123456789", 1)
		reloadSync(t, d1, syncConf(150, true), "connection sync started")
		reloadSync(t, d2, otherKey, "connection sync started")
		waitFor(t, 10*time.Second, "dir2 to drop dir1's datagrams for their HMAC", func() bool {
			return syncStatus(t, d2).Dropped["auth"] > 0
		})
		rep, _ := d2.doctor(t, "300ms")
		if len(doctortest.Find(rep, "VDB04", doctor.Crit)) != 1 {
			t.Errorf("different sync keys: doctor on dir2 did not report VDB04 crit:\n%+v", rep.Findings)
		}
		reloadSync(t, d2, syncConf(100, true), "connection sync restarted")
		waitFor(t, 10*time.Second, "dir2 to hold dir1's connections", func() bool {
			st := syncStatus(t, d2)
			return st.Synced && !st.Master && st.FullSyncs > 0
		})
		rep, _ = d2.doctor(t, "300ms")
		if len(doctortest.Find(rep, "VDB00", doctor.Ok)) != 1 {
			t.Errorf("same sync keys: doctor on dir2 did not report VDB00 ok:\n%+v", rep.Findings)
		}
		// The sync over IPv6 (multicast ff02::81 from the directors' own
		// global addresses on eth1) carries the table as well; both
		// Syncers restart, the master's must be given its services again.
		v6 := func(prio int) string {
			return strings.Replace(syncConf(prio, true), "lvs_sync_daemon eth1 VI_LB id 60", "lvs_sync_daemon eth1 VI_LB id 60 group ff02::81", 1)
		}
		reloadSync(t, d1, v6(150), "connection sync restarted")
		reloadSync(t, d2, v6(100), "connection sync restarted")
		// On a failure both statuses are logged here: after the wait,
		// the reload below takes dir2's sync away.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			st1, st2 := syncStatus(t, d1), syncStatus(t, d2)
			if st2.Synced && st2.FullSyncs > 0 && slices.ContainsFunc(st2.Peers, func(p control.SyncPeer) bool {
				return p.Master && strings.HasPrefix(p.Addr, "2001:db8:b::")
			}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("dir2 did not get dir1's table over IPv6 in 10 s:\ndir1 %+v\ndir2 %+v", st1, st2)
			}
		}
		reloadSync(t, d2, syncConf(100, false), "connection sync stopped")
		if s, err := d2.Status(); err != nil || s.Sync != nil {
			t.Errorf("lvs_sync_daemon removed by a reload: status still has connection_sync %+v (%v)", s.Sync, err)
		}
	})
}

// reloadSync writes conf for n, reloads it through the control socket and
// checks that the reload succeeded with the change want.
func reloadSync(t *testing.T, n *node, conf, want string) {
	t.Helper()
	n.Write(t, conf)
	r, err := n.ControlReload(10 * time.Second)
	if err != nil {
		t.Fatalf("%s: reload: %v", n.Host.Name, err)
	}
	if !r.OK || !slices.Contains(r.Changes, want) {
		t.Fatalf("%s: reload: ok %v, changes %v, errors %v: want the change %q", n.Host.Name, r.OK, r.Changes, r.Errors, want)
	}
}
