package daemon

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/addr"
	"vigil/bfd/link"
	"vigil/check"
	"vigil/track"
	"vigil/vrrp"
)

// The ordering rules of the daemon loop (docs/architecture.md, "The daemon
// loop"), each held by a test on the fakeHost of edges_test.go.

// instanceConf is VI_1, VRID 51 on eth0 with the VIP 192.0.2.100/24, and
// the extra lines.
func instanceConf(extra string) string {
	return `
vrrp_instance VI_1 {
  interface eth0
  state BACKUP
  virtual_router_id 51
  priority 100
  advert_int 1
` + extra + `  virtual_ipaddress {
    192.0.2.100/24
  }
}
`
}

// orderConf is a no_accept instance, lbConf an instance and a virtual
// server on its VIP with two real servers.
var orderConf, lbConf = instanceConf("  no_accept\n"), instanceConf("") + `
virtual_server 192.0.2.100 80 {
  lb_kind NAT
  lb_algo rr
  protocol TCP
  real_server 198.51.100.1 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
  real_server 198.51.100.2 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`

// linkDown takes eth0 down, turns the loop once (waiting for the worker
// and the applier), checks that the instance went to FAULT, and returns
// what the host saw meanwhile.
func linkDown(l *lab) []string {
	l.t.Helper()
	from := l.h.mark()
	l.d.linkChanged(l.now, addr.LinkState{Name: "eth0", Up: false})
	l.turn()
	if st := l.d.insts[0].e.State(); st != vrrp.StateFault {
		l.t.Fatalf("state %v after the link went down, want FAULT", st)
	}
	return l.h.took(from)
}

// becomeMaster advances until the instance is MASTER (no peer: its
// Master_Down_Timer fires) and returns what the host saw meanwhile.
func becomeMaster(l *lab) []string {
	l.t.Helper()
	from := l.h.mark()
	for range 100 {
		if l.d.insts[0].e.State() == vrrp.StateMaster {
			return l.h.took(from)
		}
		l.advance(100 * time.Millisecond)
	}
	l.t.Fatal("the instance never became MASTER")
	return nil
}

// TestNoAcceptBeforeVIPs: a no_accept master's VIPs are in the drop list
// before they are on the interface, so no packet to them is accepted in
// between (RFC 5798 6.4.3).
func TestNoAcceptBeforeVIPs(t *testing.T) {
	l := newLab(t, orderConf)
	ops := becomeMaster(l)
	before(t, ops, "noaccept [192.0.2.100]", "add 192.0.2.100/24")
}

// TestNoAcceptAfterRelease: a no_accept master that steps down keeps its
// VIPs in the drop list until they are off the interface, so the host does
// not accept packets to a VIP it still holds in between.
func TestNoAcceptAfterRelease(t *testing.T) {
	l := newLab(t, orderConf)
	becomeMaster(l)
	before(t, linkDown(l), "del 192.0.2.100/24", "noaccept []")
}

// TestRulesBeforeClaim: a new master's load-balancing rules are in the
// kernel before its VIPs are added and announced: a client's first packet
// to the VIP must meet the dispatch rule, not the host's TCP stack.
func TestRulesBeforeClaim(t *testing.T) {
	l := newLab(t, lbConf)
	ops := becomeMaster(l)
	before(t, ops, "nft apply [192.0.2.100:80/tcp]", "add 192.0.2.100/24")
	before(t, ops, "nft apply [192.0.2.100:80/tcp]", "garp 192.0.2.100")
}

// TestFirstAdvertBeforeSlowWork: in the turn a node becomes MASTER, its
// first advert goes out before any of the slow work (no_accept, nft,
// addresses, GARP), and the loop never waits for that work: with the
// worker held in its first job, the loop's turn returns and the adverts
// keep going.
func TestFirstAdvertBeforeSlowWork(t *testing.T) {
	t.Run("order", func(t *testing.T) {
		l := newLab(t, lbConf)
		ops := becomeMaster(l)
		i := 0
		for i < len(ops) && !strings.HasPrefix(ops[i], "advert") {
			i++
		}
		for _, op := range ops[:i] {
			// Only the startup's own work (INIT → BACKUP) may come first.
			if strings.HasPrefix(op, "add") || strings.HasPrefix(op, "garp") || op == "nft apply [192.0.2.100:80/tcp]" {
				t.Fatalf("%q before the first advert:\n\t%s", op, strings.Join(ops, "\n\t"))
			}
		}
		before(t, ops, "advert vrid 51 prio 100", "nft apply [192.0.2.100:80/tcp]")
	})
	t.Run("the loop does not wait", func(t *testing.T) {
		l := newLab(t, orderConf)
		l.d.work = newSlowWork()
		release := make(chan struct{})
		held := make(chan string, 1)
		l.h.mu.Lock()
		l.h.hold = func(op string) {
			if strings.HasPrefix(op, "advert") {
				return
			}
			select {
			case held <- op:
			default:
			}
			<-release
		}
		l.h.mu.Unlock()
		turned := make(chan []string, 1)
		go func() { turned <- becomeMaster(l) }()
		var ops []string
		select {
		case ops = <-turned:
		case <-time.After(10 * time.Second):
			t.Error("the loop waited for the slow work")
			close(release)
			<-turned
			return
		}
		defer func() {
			close(release)
			l.d.work.close()
			l.d.work = nil
		}()
		select {
		case op := <-held:
			t.Logf("held %q", op)
		case <-time.After(5 * time.Second):
			t.Fatal("no slow work was queued")
		}
		if !strings.HasPrefix(ops[len(ops)-1], "advert vrid 51 prio 100") {
			t.Errorf("the new master sent no advert while its slow work was held:\n\t%s", strings.Join(ops, "\n\t"))
		}
		from := l.h.mark()
		l.advance(2500 * time.Millisecond)
		if n := len(l.h.took(from)); n < 2 {
			t.Errorf("%d adverts in 2.5 s of a held worker, want 2 or more", n)
		}
	})
}

// TestPriorityZeroBeforeRelease: on shutdown, and when a reload removes an
// instance, the master's priority 0 advert goes out before its VIPs are
// released, so a backup takes over within Skew_Time (RFC 5798 6.4.3).
func TestPriorityZeroBeforeRelease(t *testing.T) {
	t.Run("shutdown", func(t *testing.T) {
		l := newLab(t, orderConf)
		becomeMaster(l)
		from := l.h.mark()
		l.d.stopAll(l.now)
		before(t, l.h.took(from), "advert vrid 51 prio 0", "del 192.0.2.100/24")
	})
	t.Run("reload", func(t *testing.T) {
		l := newLab(t, orderConf)
		becomeMaster(l)
		l.rewrite(strings.Replace(strings.Replace(orderConf, "VI_1", "VI_2", 1), "virtual_router_id 51", "virtual_router_id 52", 1))
		from := l.h.mark()
		if res := l.d.reload(l.now); !res.OK {
			t.Fatalf("reload: %+v", res)
		}
		before(t, l.h.took(from), "advert vrid 51 prio 0", "del 192.0.2.100/24")
	})
}

// TestReloadKeepsHealthAndTracking: a reload that changes the virtual
// servers and the trackers keeps what the health checks and the trackers
// found: a real server that was down stays down (its checks start failed)
// and an instance keeps the priority its failed tracker gave it.
func TestReloadKeepsHealthAndTracking(t *testing.T) {
	conf := `
vrrp_track_file tf {
  file /nonexistent/vigil-test
  weight -30
}
vrrp_track_file other {
  file /nonexistent/vigil-test-2
}
` + lbConf
	conf = strings.Replace(conf, "  advert_int 1\n", "  advert_int 1\n  track_file {\n    tf\n  }\n", 1)
	l := newLab(t, conf)
	becomeMaster(l)
	down := realServerID(l.d.bal, "198.51.100.2:80")
	if down == "" {
		t.Fatalf("no real server 198.51.100.2:80 in %v", l.d.bal.rs)
	}
	l.d.checked(check.Event{Server: down, Kind: check.ServerDown, Weight: 1, Detail: "refused"})
	l.d.tracked(l.now, track.Event{Kind: track.KindFile, Name: "tf", OK: true, Value: 2}) // -60
	l.turn()
	in := l.d.insts[0]
	prio := in.e.Status().Priority
	if prio != 40 {
		t.Fatalf("priority %d after the tracker, want 40", prio)
	}

	// The same file again: the checks keep running as they are.
	if res := l.d.reload(l.now); !res.OK || len(res.Changes) != 0 {
		t.Fatalf("reload of the same file: %+v", res)
	}
	if l.h.checkStarts != 1 {
		t.Errorf("the health checks started %d times, want once: a reload of the same virtual servers restarted them", l.h.checkStarts)
	}

	// Another virtual server, and the instance follows a second track
	// file: both halves reload.
	l.rewrite(strings.Replace(conf, "    tf\n", "    tf\n    other\n", 1) + `
virtual_server 192.0.2.100 443 {
  lb_kind NAT
  lb_algo rr
  protocol TCP
  real_server 198.51.100.1 443 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}`)
	if res := l.d.reload(l.now); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	l.turn()
	if got := l.d.insts[0].e.Status().Priority; got != prio {
		t.Errorf("priority %d after the reload, want %d (the tracker's result kept)", got, prio)
	}
	if info := l.d.bal.rs[down]; info == nil || info.up {
		t.Errorf("real server %s up after the reload, want down as its checks found", down)
	}
	for _, s := range l.h.servers {
		if s.ID != down {
			continue
		}
		for _, w := range s.Checks {
			if !w.Schedule.Alpha {
				t.Errorf("%s: its checks restart as up (no alpha), want failed until one succeeds", s.ID)
			}
		}
	}
	for _, s := range l.d.serviceStatus() {
		for _, r := range s.RealServers {
			if r.Addr == "198.51.100.2:80" && r.Up {
				t.Errorf("%s: %s up in status after the reload", s.Name, r.Addr)
			}
		}
	}
}

// TestLinkDownReleasesVIPs: the link watcher's news reach the engine: a
// master whose interface goes down gives up its VIPs (FAULT), and takes
// them again once the link is back and nobody else is master.
func TestLinkDownReleasesVIPs(t *testing.T) {
	conf := strings.Replace(instanceConf(""), "  virtual_ipaddress {", "  virtual_routes {\n    203.0.113.0/24 via 192.0.2.254 dev eth0\n  }\n  virtual_ipaddress {", 1)
	l := newLab(t, conf)
	before(t, becomeMaster(l), "add 192.0.2.100/24", "add route 203.0.113.0/24")
	before(t, linkDown(l), "del 192.0.2.100/24", "del route 203.0.113.0/24")
	l.d.linkChanged(l.now, addr.LinkState{Name: "eth0", Up: true})
	before(t, becomeMaster(l), "add 192.0.2.100/24", "add route 203.0.113.0/24")
}

// TestTerminateWithdrawsBeforeRules: SIGTERM on a director that announces
// over BGP withdraws its routes and resigns VRRP (priority 0) first, then
// stops the speakers after the drain, and only then removes the rules, so
// flows the routers still send are forwarded until they move away.
func TestTerminateWithdrawsBeforeRules(t *testing.T) {
	conf := `
bgp_instance EDGE {
  local_as 65001
  router_id 192.0.2.1
  drain_time 0
  neighbor 198.51.100.254 {
    remote_as 65000
  }
}
` + lbConf + `
virtual_server 192.0.2.10 80 {
  lb_kind NAT
  lb_algo rr
  protocol TCP
  bgp_announce EDGE
  real_server 198.51.100.1 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`
	l := newLab(t, conf)
	becomeMaster(l)
	if !slices.Contains(l.h.took(0), "bgp EDGE set [192.0.2.10/32]") {
		t.Fatalf("192.0.2.10/32 never announced:\n\t%s", strings.Join(l.h.took(0), "\n\t"))
	}
	from := l.h.mark()
	l.d.terminate(l.now)
	ops := l.h.took(from)
	before(t, ops, "bgp EDGE set []", "bgp EDGE stop")
	before(t, ops, "advert vrid 51 prio 0", "bgp EDGE stop")
	before(t, ops, "bgp EDGE sync", "nft flush")
	before(t, ops, "bgp EDGE stop", "nft flush")
}

// TestSyncInstallBeforeClaim: with connection sync, a new master installs
// the synced connections before anything else of its takeover (no_accept,
// the LB rules, the VIPs), and sends only after that, so the flows it
// takes over find their NAT bindings.
func TestSyncInstallBeforeClaim(t *testing.T) {
	conf := "global_defs {\n  lvs_sync_daemon eth1 VI_1 id 60\n}\n" + strings.Replace(lbConf, "  advert_int 1\n", "  advert_int 1\n  no_accept\n", 1)
	l := newLab(t, conf)
	ops := becomeMaster(l)
	before(t, ops, "ctsync install", "noaccept [192.0.2.100]")
	before(t, ops, "ctsync install", "nft apply [192.0.2.100:80/tcp]")
	before(t, ops, "ctsync install", "add 192.0.2.100/24")
	before(t, ops, "ctsync install", "ctsync master true")
}

// TestBFDDownReleasesVIPs: a track_bfd session (the BFD runner is an edge
// too) holds its instance in FAULT until the peer answers, lets it claim
// its VIPs once up, and takes them away when it goes down.
func TestBFDDownReleasesVIPs(t *testing.T) {
	conf := "bfd_instance peer {\n  neighbor_ip 192.0.2.2\n  source_ip 192.0.2.1\n}\n" +
		strings.Replace(instanceConf(""), "  advert_int 1\n", "  advert_int 1\n  track_bfd {\n    peer\n  }\n", 1)
	l := newLab(t, conf)
	l.advance(5 * time.Second)
	if st := l.d.insts[0].e.State(); st != vrrp.StateFault {
		t.Fatalf("state %v while the session was never up, want FAULT", st)
	}
	l.d.bfdChanged(l.now, link.Event{Session: "peer", Up: true})
	becomeMaster(l)
	from := l.h.mark()
	l.d.bfdChanged(l.now, link.Event{Session: "peer", Up: false})
	l.turn()
	if st := l.d.insts[0].e.State(); st != vrrp.StateFault {
		t.Fatalf("state %v after the session went down, want FAULT", st)
	}
	before(t, l.h.took(from), "advert vrid 51 prio 0", "del 192.0.2.100/24")
}

// TestReleaseBeforeRules: a master that steps down (FAULT here) removes
// its VIPs before the rules of the services behind them go: the other way
// round, a client's packet to a VIP the director still holds reaches the
// host's own stack without forwarding (a reset, seen in e2e
// TestLBFailoverNoReset/fnat). The slow work runs on the real worker, held
// in the VIP's removal, while the applier is free to run.
func TestReleaseBeforeRules(t *testing.T) {
	l := newLab(t, lbConf)
	becomeMaster(l)
	l.d.work = newSlowWork()
	release := make(chan struct{})
	held := make(chan struct{})
	l.h.mu.Lock()
	l.h.hold = func(op string) {
		if op == "del 192.0.2.100/24" {
			close(held)
			<-release
		}
	}
	l.h.mu.Unlock()
	released := false
	defer func() {
		if !released {
			close(release)
		}
		l.d.work.close()
		l.d.work = nil
	}()
	from := l.h.mark()
	l.d.linkChanged(l.now, addr.LinkState{Name: "eth0", Up: false})
	l.d.turn()
	if st := l.d.insts[0].e.State(); st != vrrp.StateFault {
		t.Fatalf("state %v after the link went down, want FAULT", st)
	}
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("the VIP's removal never started")
	}
	// Give the applier time to run if nothing holds it back.
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if slices.Contains(l.h.took(from), "nft apply []") {
			break
		}
	}
	if ops := l.h.took(from); slices.Contains(ops, "nft apply []") {
		t.Fatalf("the rules went while the VIP was still on the interface:\n\t%s", strings.Join(ops, "\n\t"))
	}
	close(release)
	released = true
	l.d.work.wait()
	l.turn() // waits for the applier
	before(t, l.h.took(from), "del 192.0.2.100/24", "nft apply []")
}

// scriptConf names the scripts' user (the fake notifier runs none).
const scriptConf = "global_defs {\n  script_user nobody\n}\n"

// TestNotifyMasterAfterClaim: a new master's notify_master (and notify)
// are handed to the notifier once its VIPs are added and announced, as
// keepalived runs them after setting the addresses: a script that uses
// the VIP (starts a service bound to it, checks it) finds it there.
func TestNotifyMasterAfterClaim(t *testing.T) {
	l := newLab(t, scriptConf+instanceConf("  notify_master /bin/true\n"))
	ops := becomeMaster(l)
	before(t, ops, "add 192.0.2.100/24", "notify VI_1 MASTER")
	before(t, ops, "garp 192.0.2.100", "notify VI_1 MASTER")
}

// TestNotifyFaultAfterRelease: a master that steps down hands its
// notify_fault (notify_backup) to the notifier after its VIPs are gone, so
// a script that takes over elsewhere does not race the release.
func TestNotifyFaultAfterRelease(t *testing.T) {
	l := newLab(t, scriptConf+instanceConf("  notify_fault /bin/true\n"))
	becomeMaster(l)
	before(t, linkDown(l), "del 192.0.2.100/24", "notify VI_1 FAULT")
}

// TestGroupNotifyAfterClaim: a sync group's notify_master waits for its
// instances' VIPs too, though the group's transition is seen by the loop
// while the worker is still adding them: with the worker held in the
// address change, the group's event must not reach the notifier.
func TestGroupNotifyAfterClaim(t *testing.T) {
	vi2 := strings.NewReplacer("VI_1", "VI_2", "virtual_router_id 51", "virtual_router_id 52", "192.0.2.100", "192.0.2.101").Replace(instanceConf(""))
	l := newLab(t, scriptConf+instanceConf("")+vi2+`
vrrp_sync_group G1 {
  group {
    VI_1
    VI_2
  }
  notify_master /bin/true
}
`)
	l.d.work = newSlowWork()
	release := make(chan struct{})
	l.h.mu.Lock()
	l.h.hold = func(op string) {
		if strings.HasPrefix(op, "add 192.0.2.100") {
			<-release
		}
	}
	l.h.mu.Unlock()
	from := l.h.mark()
	becomeMaster(l)
	l.advance(time.Second) // turns of the loop while the worker is held
	close(release)
	l.d.work.wait()
	l.d.work.close()
	l.d.work = nil
	ops := l.h.took(from)
	before(t, ops, "add 192.0.2.100/24", "notify group G1 MASTER")
	before(t, ops, "add 192.0.2.101/24", "notify group G1 MASTER")
}

// TestNotifyBackupAfterRelease: a master that hears a higher priority
// steps down to BACKUP and hands its notify_backup to the notifier after
// its VIPs are gone.
func TestNotifyBackupAfterRelease(t *testing.T) {
	l := newLab(t, scriptConf+instanceConf("  notify_backup /bin/true\n"))
	becomeMaster(l)
	p := peerAdvert(t, 200)
	from := l.h.mark()
	for _, s := range l.d.socks {
		l.d.receive(l.now, s, p)
	}
	l.turn()
	if st := l.d.insts[0].e.State(); st != vrrp.StateBackup {
		t.Fatalf("state %v after a priority 200 advert, want BACKUP", st)
	}
	before(t, l.h.took(from), "del 192.0.2.100/24", "notify VI_1 BACKUP")
}

// TestSyncGroupTakeoverOneClaim: the members of a vrrp_sync_group that
// become MASTER in one turn, the connection sync's instance among them,
// have the synced connections installed before any member's rules or VIPs
// (even when the sync instance is not the first member), and all their
// services put in by one nft transaction before the first of their VIPs.
// One transaction per member, run one after the other, held the second
// member's VIPs back by a whole nft run: 0.75 s on a loaded host, which
// made the IPv6 half of e2e TestConnSyncFailover's connections time out.
func TestSyncGroupTakeoverOneClaim(t *testing.T) {
	vs := func(vip string) string {
		return "virtual_server " + vip + ` 80 {
  lb_kind NAT
  lb_algo rr
  protocol TCP
  real_server 198.51.100.1 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`
	}
	inst := func(name, vrid, vip string) string {
		return strings.NewReplacer("VI_1", name, "virtual_router_id 51", "virtual_router_id "+vrid, "192.0.2.100/24", vip+"/24").Replace(instanceConf(""))
	}
	conf := "global_defs {\n  lvs_sync_daemon eth1 VI_1 id 60\n}\nvrrp_sync_group G {\n  group {\n    VI_2\n    VI_1\n  }\n}\n" +
		inst("VI_2", "52", "192.0.2.101") + inst("VI_1", "51", "192.0.2.100") + vs("192.0.2.100") + vs("192.0.2.101")
	l := newLab(t, conf)
	if l.d.insts[0].spec.name != "VI_2" {
		t.Fatalf("instances in the order %s, %s: want the sync instance VI_1 second", l.d.insts[0].spec.name, l.d.insts[1].spec.name)
	}
	from := l.h.mark()
	for range 100 {
		if l.d.insts[0].e.State() == vrrp.StateMaster && l.d.insts[1].e.State() == vrrp.StateMaster {
			break
		}
		l.advance(100 * time.Millisecond)
	}
	if l.d.insts[0].e.State() != vrrp.StateMaster || l.d.insts[1].e.State() != vrrp.StateMaster {
		t.Fatal("the group never became MASTER")
	}
	ops := l.h.took(from)
	for _, op := range []string{"nft apply", "add 192.0.2.100/24", "add 192.0.2.101/24", "ctsync master true"} {
		before(t, ops, "ctsync install", op)
	}
	both := "nft apply [192.0.2.100:80/tcp 192.0.2.101:80/tcp]"
	before(t, ops, both, "add 192.0.2.100/24")
	before(t, ops, both, "add 192.0.2.101/24")
	last := max(slices.Index(ops, "add 192.0.2.100/24"), slices.Index(ops, "add 192.0.2.101/24"))
	applies := 0
	for _, op := range ops[:last] {
		if strings.HasPrefix(op, "nft apply") {
			applies++
		}
	}
	if applies != 1 {
		t.Errorf("%d nft transactions before the group's VIPs were all in, want 1:\n\t%s", applies, strings.Join(ops, "\n\t"))
	}
}

// TestNoAcceptIdleWithoutUsers: while no instance runs with no_accept,
// a transition hands the filter no drop list (computing one read every
// instance's status on every transition: quadratic at 1,000 masters);
// a reload that adds no_accept still fills it, and one that removes it
// empties it.
func TestNoAcceptIdleWithoutUsers(t *testing.T) {
	plain := instanceConf("")
	l := newLab(t, plain)
	for _, op := range becomeMaster(l) {
		if strings.HasPrefix(op, "noaccept [") {
			t.Errorf("a takeover without no_accept set the drop list: %q", op)
		}
	}
	// reloadTo reloads conf and returns the calls of the second after it.
	reloadTo := func(conf string) []string {
		from := l.h.mark()
		l.rewrite(conf)
		if res := l.d.reload(l.now); !res.OK {
			t.Fatalf("reload: %+v", res)
		}
		l.advance(time.Second)
		return l.h.took(from)
	}
	if ops := reloadTo(orderConf); !slices.Contains(ops, "noaccept [192.0.2.100]") {
		t.Errorf("a reload that adds no_accept to the master: %q, want noaccept [192.0.2.100]", ops)
	}
	if ops := reloadTo(plain); !slices.Contains(ops, "noaccept []") {
		t.Errorf("a reload that removes no_accept: %q, want noaccept []", ops)
	}
}

// TestNoAcceptOncePerTurn: no_accept masters that take over in the same
// turn get one change of the drop list, holding all their VIPs, before the
// first of those VIPs goes on an interface. Set once per transition, 1,000
// masters' takeover ran nft 1,000 times in a row on the worker, each
// before its master's VIPs (issue #7).
func TestNoAcceptOncePerTurn(t *testing.T) {
	const n = 40
	var b strings.Builder
	for k := 0; k < n; k++ {
		fmt.Fprintf(&b, "vrrp_instance VI_%d {\n  interface eth0\n  state BACKUP\n  virtual_router_id %d\n  version 3\n  priority 150\n  advert_int 1\n  no_accept\n  virtual_ipaddress {\n    198.51.100.%d/24\n  }\n}\n", k, k+1, k+1)
	}
	l := newLab(t, b.String())
	from := l.h.mark()
	for range 100 {
		masters := 0
		for _, in := range l.d.insts {
			if in.e.State() == vrrp.StateMaster {
				masters++
			}
		}
		if masters == n {
			break
		}
		l.advance(100 * time.Millisecond)
	}
	l.advance(time.Second)
	ops := l.h.took(from)
	var sets []string
	firstAdd := -1
	for i, op := range ops {
		if strings.HasPrefix(op, "noaccept [") {
			sets = append(sets, op)
			if firstAdd >= 0 {
				t.Errorf("the drop list changed after a VIP went on: %q", op)
			}
		}
		if strings.HasPrefix(op, "add ") && firstAdd < 0 {
			firstAdd = i
		}
	}
	if len(sets) != 1 || strings.Count(sets[0], "198.51.100.") != n {
		t.Fatalf("%d changes of the drop list for %d masters taking over together, want one with their %d VIPs: %q", len(sets), n, n, sets)
	}
}
