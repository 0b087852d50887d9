package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/control"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// syncUnicastConf is syncConf with VI_LB unicast on eth0 (from
// 192.0.2.self to 192.0.2.peer) and lvs_sync_daemon on that same
// interface: the connection sync then goes to the instance's unicast
// peers instead of a multicast group (daemon/ctsync.go, syncConfig).
func syncUnicastConf(prio, self, peer int, sync bool) string {
	c := syncConf(prio, sync)
	c = strings.Replace(c, "lvs_sync_daemon eth1 VI_LB id 60", "lvs_sync_daemon eth0 VI_LB id 60", 1)
	uni := fmt.Sprintf("  virtual_router_id 60\n  unicast_src_ip 192.0.2.%d\n  unicast_peer {\n    192.0.2.%d\n  }\n", self, peer)
	return strings.Replace(c, "  virtual_router_id 60\n", uni, 1)
}

// syncGARPRepeat is the number of announcements in a burst
// (vrrp_garp_master_repeat) in TestConnSyncUnicast.
const syncGARPRepeat = 5

// TestConnSyncUnicast: the connection sync over the VRRP instance's
// unicast peers (no multicast at all) carries the master's table, and a
// kill -9 of the master costs at most 1% of the 300 keep-alive
// connections of each of the four services. `vigil status --json` on the
// backup shows the configured peer heard as master, no multicast group,
// and the entries received.
//
// The killed master is a fresh one: its kernel made its flows' conntrack
// entries itself (strict TCP window tracking), and kill -9 leaves it the
// VIPs, the local addresses, its rules and those entries. The real servers
// miss the new master's first burst of announcements (missFirstBurst: the
// first burst of gratuitous ARPs and neighbour advertisements for the local
// address is dropped; the second comes less than a second later,
// vrrp_garp_master_delay 1), so for most of a second the clients reach the
// new master while the real servers' replies still reach the dead one. Its
// entries, which never saw the requests the new master forwarded, find
// those replies invalid and does not translate them. For FNAT they are
// addressed to the dead director's own local address, and without vigil's
// guard (dataplane/nft, localGuardChain) its stack answered each with a
// reset to the real server; for NAT they went to the client untranslated,
// and the client, which can route to the real servers here, answered with
// a reset that reached the real server through the new master (without
// realGuardChain). Without both guards all 300 connections broke.
// The no-sync loss is shown by TestConnSyncFailover/no_sync.
func TestConnSyncUnicast(t *testing.T) {
	requireLBLab(t)
	testenv.RequireTool(t, "conntrack")
	x := newSyncLab(t, "csu")
	conf := func(prio, self, peer int) string {
		return strings.Replace(syncUnicastConf(prio, self, peer, true), "global_defs {",
			fmt.Sprintf("global_defs {\n  vrrp_garp_master_delay 1\n  vrrp_garp_master_repeat %d", syncGARPRepeat), 1)
	}
	// The client can route to the real servers (through the NAT VIPs),
	// as a client on a routed network can: an untranslated reply would
	// draw a reset from it that reaches the real server.
	labtest.MustRun(t, x.client, "ip", "route", "add", "198.51.100.0/24", "via", syncVIPNAT)
	labtest.MustRun(t, x.client, "ip", "-6", "route", "add", "2001:db8:b::/64", "via", syncVIPNAT6)
	d1 := x.director(0, conf(150, 1, 2))
	d2 := x.director(1, conf(100, 2, 1))
	waitSyncDirector(t, d1, "MASTER", 20*time.Second)
	waitSyncDirector(t, d2, "BACKUP", 10*time.Second)
	tr := startSyncTraffic(t, newLBClient(x.client, syncReqTimeout))
	waitFor(t, 10*time.Second, "dir2 to hold a copy of every connection", func() bool {
		s := syncStatus(t, d2)
		return s.Running && !s.Master && s.Entries >= syncConns
	})

	var s control.Status
	d2.vigilJSON(t, &s, "status", "--json")
	if s.Sync == nil {
		t.Fatal("dir2: vigil status --json has no connection_sync")
	}
	st := *s.Sync
	t.Logf("dir2 sync: interface %s group %q peers %+v entries %d received %d", st.Interface, st.Group, st.Peers, st.Entries, st.Received)
	if st.Group != "" || st.Interface != "eth0" {
		t.Errorf("dir2 sync: interface %q group %q, want eth0 and no multicast group", st.Interface, st.Group)
	}
	if len(st.Peers) != 1 || st.Peers[0].Addr != "192.0.2.1" || !st.Peers[0].Configured || !st.Peers[0].Master || st.Peers[0].LastSeen.IsZero() {
		t.Errorf("dir2 sync peers %+v, want only the configured 192.0.2.1, heard as master", st.Peers)
	}
	if st.Received < syncConns || st.Entries < syncConns {
		t.Errorf("dir2 sync: %d entries received, %d held, want at least %d", st.Received, st.Entries, syncConns)
	}

	missFirstBurst(t, x)
	from := time.Now()
	d1.StopWith(syscall.SIGKILL)
	took := waitSyncDirector(t, d2, "MASTER", 15*time.Second)
	live := linkMAC(t, x.dirs[1], "eth1")
	movedAll := func() bool {
		for _, r := range x.rs {
			if neighMAC(t, r.host, lbLocalAddr) != live || neighMAC(t, r.host, lbLocal6) != live {
				return false
			}
		}
		return true
	}
	t0 := time.Now()
	for !movedAll() {
		if time.Since(t0) > 5*time.Second {
			var b strings.Builder
			for _, r := range x.rs {
				n, _ := r.host.Run("ip", "neigh")
				c, _ := r.host.Run("nft", "list", "ruleset")
				fmt.Fprintf(&b, "%s:\n%s%s", r.name, n, c)
			}
			t.Fatalf("the real servers still do not send to dir2 (%s) 5 s after the takeover:\n%s", live, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	moved := time.Since(t0)
	// The rig held: the new master's first burst did not reach the real
	// servers, which sent to the killed director until its second.
	for _, r := range x.rs {
		for _, fam := range []string{"arp", "ip6"} {
			out, err := r.host.Run("nft", "list", "counter", fam, "vigil_test", "dropped")
			if err != nil || strings.Contains(out, "packets 0 ") {
				t.Errorf("%s: no %s announcement of the new master was dropped (%v): the test does not exercise stray replies\n%s", r.name, fam, err, out)
			}
		}
	}
	t.Logf("kill -9: the real servers sent to the killed director until %v after the test saw the takeover", moved.Round(time.Millisecond))
	time.Sleep(syncSettle)
	tr.stop()
	n, per, sample := tr.broken(from, time.Now())
	t.Logf("kill -9: dir2 MASTER after %v; %d of %d connections saw an error (NAT4 %d, FNAT4 %d, NAT6 %d, FNAT6 %d) %v",
		took.Round(time.Millisecond), n, syncConns, per[0], per[1], per[2], per[3], sample)
	for i, p := range per {
		if p*100 > syncConns/4 {
			t.Errorf("kill -9: %d of the %d %s connections saw an error with the unicast sync, want at most 1%%: %v", p, syncConns/4, syncTargetNames[i], sample)
		}
	}
	if in := syncStatus(t, d2).LastInstall; in.Entries < syncConns {
		t.Errorf("dir2 installed %d entries at its takeover, want the %d connections", in.Entries, syncConns)
	}
}

// missFirstBurst makes x's real servers drop the first burst of
// announcements for the floating local address (the NAT gateway): the
// first syncGARPRepeat gratuitous ARPs and the first syncGARPRepeat
// unsolicited neighbour advertisements for lbLocal6 (a token bucket of
// that many, refilled once an hour). Each table counts what it dropped in
// counter "dropped". Counted, not timed: the second burst follows the
// first by the delay less however long the claim took, which a loaded
// machine stretches.
func missFirstBurst(t *testing.T, x *lbLab) {
	t.Helper()
	limit := fmt.Sprintf("limit rate 1/hour burst %d packets", syncGARPRepeat)
	rules := `table arp vigil_test {
	counter dropped { }
	chain in {
		type filter hook input priority 0;
		arp operation request arp saddr ip ` + lbLocalAddr + ` arp daddr ip ` + lbLocalAddr + ` ` + limit + ` counter name "dropped" drop
	}
}
table ip6 vigil_test {
	counter dropped { }
	chain in {
		type filter hook input priority 0;
		icmpv6 type nd-neighbor-advert @th,64,128 ` + hexAddr(lbLocal6) + ` ` + limit + ` counter name "dropped" drop
	}
}
`
	for _, r := range x.rs {
		cmd := r.host.Command(context.Background(), "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: nft: %v: %s", r.name, err, out)
		}
	}
}

// hexAddr is an IPv6 address as the 0x... integer a raw payload match
// takes (nft 1.0.6 has no ICMPv6 target address keyword).
func hexAddr(a string) string {
	b := netip.MustParseAddr(a).As16()
	return "0x" + hex.EncodeToString(b[:])
}

// neighMAC is h's neighbour entry for addr ("" when it has none).
func neighMAC(t *testing.T, h *netlab.Host, addr string) string {
	t.Helper()
	out, err := h.Run("ip", "neigh", "show", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "lladdr" {
			return f[i+1]
		}
	}
	return ""
}

// linkMAC is the MAC address of h's interface dev.
func linkMAC(t *testing.T, h *netlab.Host, dev string) string {
	t.Helper()
	out, err := h.Run("cat", "/sys/class/net/"+dev+"/address")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}
