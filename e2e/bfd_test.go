package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/control"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/vrrp"
)

// bfdOf returns the named BFD session of a vigil node's status.
func bfdOf(n *node, name string) (control.BFDSessionStatus, control.InstanceStatus, bool) {
	st, err := n.Status()
	if err != nil {
		return control.BFDSessionStatus{}, control.InstanceStatus{}, false
	}
	var in control.InstanceStatus
	if len(st.Instances) > 0 {
		in = st.Instances[0]
	}
	for _, b := range st.BFD {
		if b.Name == name {
			return b, in, true
		}
	}
	return control.BFDSessionStatus{}, in, false
}

// killAll SIGKILLs keepalived and its children (from their pid files), so
// that nothing says goodbye: the peer must detect the silence.
func (n *node) killAll() {
	for _, f := range []string{"bfd.pid", "vrrp.pid", "checkers.pid"} {
		if b, err := os.ReadFile(filepath.Join(n.Dir, f)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	n.StopWith(syscall.SIGKILL)
}

// bfdTrackConf is one node of TestBFDKeepalivedInterop: a BFD session
// "peer" at 50 ms x 3 and a VRRP instance (its own name, VRID and VIP per
// implementation) that tracks it unweighted.
func bfdTrackConf(inst string, vrid int, vip string) string {
	return fmt.Sprintf(`
global_defs { vrrp_version 3 }
bfd_instance peer {
  neighbor_ip @PEER@
  source_ip @SRC@
  min_rx 50
  min_tx 50
  multiplier 3
}
vrrp_instance %s {
  interface eth0
  state BACKUP
  virtual_router_id %d
  priority 100
  advert_int 0.1
  virtual_ipaddress { %s/24 }
  track_bfd { peer }
}
`, inst, vrid, vip)
}

// TestBFDKeepalivedInterop: vigil and keepalived 2.2.7 run a BFD session
// to each other, each with a VRRP instance that tracks it unweighted. The
// session comes Up within 2 s; killing keepalived puts vigil's instance in
// FAULT within the detection time + 20 ms; restarting it brings it back;
// killing vigil puts keepalived's instance in FAULT (its VIP goes: vigil's
// BFD process falls silent, it sends no AdminDown); an orderly stop of
// vigil sends AdminDown, which keepalived's instance does not take for a
// failure (RFC 5882 3.2: it keeps its VIP).
func TestBFDKeepalivedInterop(t *testing.T) {
	requireVRRPLab(t, "keepalived")
	_, hosts, _ := labtest.LAN(t, "bfdk", map[string][]string{"v": {"192.0.2.1/24"}, "k": {"192.0.2.2/24"}}, "v", "k")
	vconf := confFor(bfdTrackConf("VI_A", 61, "192.0.2.161"), 100, "192.0.2.1", "192.0.2.2")
	kconf := confFor(bfdTrackConf("VI_B", 62, "192.0.2.162"), 100, "192.0.2.2", "192.0.2.1")
	v := startNode(t, "vigil", hosts["v"], vconf)
	waitFor(t, 5*time.Second, "vigil's instance in FAULT while the session is down", func() bool {
		b, in, ok := bfdOf(v, "peer")
		return ok && b.State == "Down" && in.State == "FAULT"
	})
	kStart := time.Now()
	k := startNode(t, "keepalived-bfd", hosts["k"], kconf)
	up := waitFor(t, 5*time.Second, "the session Up", func() bool {
		b, _, ok := bfdOf(v, "peer")
		return ok && b.State == "Up"
	})
	t.Logf("session Up %v after keepalived started", up)
	if up > 2*time.Second {
		t.Errorf("session Up after %v, want within 2 s", up)
	}
	_ = kStart
	waitFor(t, 10*time.Second, "vigil's instance MASTER", func() bool {
		_, in, _ := bfdOf(v, "peer")
		return in.State == "MASTER"
	})
	vip := netip.MustParseAddr("192.0.2.162")
	waitFor(t, 5*time.Second, "keepalived's instance MASTER", func() bool { return k.hasAddr(vip) })
	time.Sleep(200 * time.Millisecond) // let the Poll Sequences settle
	b, _, _ := bfdOf(v, "peer")
	if time.Duration(b.TxInterval) != 50*time.Millisecond || time.Duration(b.DetectTime) != 150*time.Millisecond || b.RemoteDisc == 0 {
		t.Errorf("negotiated tx %v detect %v remote discriminator %d, want 50ms 150ms non-zero", b.TxInterval, b.DetectTime, b.RemoteDisc)
	}

	// Kill keepalived: FAULT within the detection time + 20 ms.
	detect := time.Duration(b.DetectTime)
	killed := time.Now()
	k.killAll()
	waitFor(t, 2*time.Second, "vigil's instance FAULT", func() bool {
		_, in, _ := bfdOf(v, "peer")
		return in.State == "FAULT"
	})
	b, in, _ := bfdOf(v, "peer")
	took := in.Since.Sub(killed)
	t.Logf("FAULT %v after the kill (detection time %v); session: %s", took, detect, b.LastDown)
	if limit := detect + 20*time.Millisecond; took > limit {
		t.Errorf("FAULT %v after the kill, want within %v", took, limit)
	}
	if b.LastDownDiag != 1 {
		t.Errorf("last down diagnostic %d (%s), want 1", b.LastDownDiag, b.LastDown)
	}

	// Restart it: back to MASTER.
	k = startNode(t, "keepalived-bfd", hosts["k"], kconf)
	back := waitFor(t, 5*time.Second, "vigil's instance MASTER again", func() bool {
		_, in, _ := bfdOf(v, "peer")
		return in.State == "MASTER"
	})
	t.Logf("MASTER again %v after keepalived restarted", back)
	waitFor(t, 5*time.Second, "keepalived's instance MASTER again", func() bool { return k.hasAddr(vip) })

	// The other direction: kill vigil, keepalived's instance goes FAULT.
	// First the restarted keepalived's session must be at the configured
	// rate: it comes Up at its slow-start 1 s interval (3 s detection)
	// and moves to 50 ms by a poll sequence sent at that interval, which a
	// kill right after its instance became MASTER again could precede
	// (seen in CI: keepalived still at 3 s when vigil died).
	waitFor(t, 5*time.Second, "keepalived's restarted session at 150 ms detection", func() bool {
		return strings.Contains(k.Out.String(), "Detection time is 150000 us")
	})
	// Killed, vigil says nothing (its BFD process goes silent, no
	// AdminDown, which keepalived would not take for a failure): keepalived
	// detects the silence and its instance goes FAULT.
	mark := len(k.Out.String())
	vKilled := time.Now()
	v.StopWith(syscall.SIGKILL)
	waitFor(t, 2*time.Second, "keepalived's VIP to go (its track_bfd FAULT)", func() bool { return !k.hasAddr(vip) })
	t.Logf("keepalived released its VIP %v after vigil was killed", time.Since(vKilled))
	if out := k.Out.String()[mark:]; !strings.Contains(out, "FAULT") || !strings.Contains(out, "Control Detection Time Expired") ||
		strings.Contains(out, "Neighbor Signaled Session Down") {
		t.Errorf("keepalived did not log its session's detection time expired and FAULT (and no AdminDown from the killed vigil):\n%s", out)
	}

	// An orderly stop (SIGTERM) is a goodbye: vigil's BFD process sends
	// AdminDown after VRRP's priority 0 adverts, and keepalived takes the
	// session Down with "Neighbor Signaled Session Down" but, as RFC 5882
	// 3.2 has it, not as a path failure: its instance keeps its VIP.
	// keepalived's session times out if vigil's BFD process cannot run
	// for 150 ms before its AdminDown (seen once on the shared machine:
	// the stop took 0.9 s instead of 15 ms): that stall is not what this
	// checks, so it is tried again, twice at most.
	for attempt := 1; ; attempt++ {
		v = startNode(t, "vigil", hosts["v"], vconf)
		waitFor(t, 10*time.Second, "vigil's instance MASTER after its restart", func() bool {
			_, in, _ := bfdOf(v, "peer")
			return in.State == "MASTER"
		})
		waitFor(t, 5*time.Second, "keepalived's instance MASTER again", func() bool { return k.hasAddr(vip) })
		mark = len(k.Out.String())
		v.Stop()
		waitFor(t, 2*time.Second, "keepalived's session Down", func() bool {
			out := k.Out.String()[mark:]
			return strings.Contains(out, "Neighbor Signaled Session Down") || strings.Contains(out, "Control Detection Time Expired")
		})
		time.Sleep(500 * time.Millisecond) // more than its 150 ms detection time
		out := k.Out.String()[mark:]
		if strings.Contains(out, "Control Detection Time Expired") && attempt < 3 {
			t.Logf("keepalived's session timed out before vigil's AdminDown (a stall of vigil's BFD process; attempt %d), again:\n%s", attempt, out)
			continue
		}
		if !strings.Contains(out, "Neighbor Signaled Session Down") || strings.Contains(out, "Control Detection Time Expired") {
			t.Errorf("keepalived's session did not go Down by vigil's AdminDown at its orderly stop; its log since:\n%s", out)
		}
		if !k.hasAddr(vip) || strings.Contains(out, "FAULT") {
			t.Errorf("after vigil's orderly stop keepalived holds its VIP: %v, want true (AdminDown is no failure); its log since:\n%s", k.hasAddr(vip), out)
		}
		break
	}
}

// frr is FRR's bfdd (and zebra) in a lab host.
type frr struct{ *labtest.FRR }

// startFRR runs FRR's bfdd on bfdConf in h, logging its peers' events.
func startFRR(t *testing.T, h *netlab.Host, bfdConf string) *frr {
	t.Helper()
	return &frr{labtest.StartFRR(t, h, map[string]string{"bfdd.conf": "debug bfd peer\n" + bfdConf}, "bfdd")}
}

// frrPeer is the part of `show bfd peers json` the tests read.
type frrPeer struct {
	Peer             string `json:"peer"`
	Status           string `json:"status"`
	RemoteID         uint32 `json:"remote-id"`
	ID               uint32 `json:"id"`
	ReceiveInterval  int    `json:"receive-interval"`
	TransmitInterval int    `json:"transmit-interval"`
	DetectMultiplier int    `json:"detect-multiplier"`
	RemoteReceive    int    `json:"remote-receive-interval"`
	RemoteTransmit   int    `json:"remote-transmit-interval"`
	RemoteMultiplier int    `json:"remote-detect-multiplier"`
	Diagnostic       string `json:"diagnostic"`
}

func (f *frr) peers() ([]frrPeer, error) {
	out, err := f.Vtysh("show bfd peers json")
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	var ps []frrPeer
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	return ps, nil
}

func (f *frr) peer(addr string) (frrPeer, bool) {
	ps, err := f.peers()
	if err != nil {
		return frrPeer{}, false
	}
	for _, p := range ps {
		if p.Peer == addr {
			return p, true
		}
	}
	return frrPeer{}, false
}

const frrVigilConf = `
bfd_instance frr4 {
  neighbor_ip 192.0.2.2
  source_ip 192.0.2.1
  min_rx 50
  min_tx 50
  multiplier 3
}
bfd_instance frr6 {
  neighbor_ip 2001:db8::2
  source_ip 2001:db8::1
  min_rx 50
  min_tx 50
  multiplier 3
}
`

const frrBFDConf = `bfd
 peer 192.0.2.1 local-address 192.0.2.2
  receive-interval 50
  transmit-interval 50
  detect-multiplier 3
 !
 peer 2001:db8::1 local-address 2001:db8::2
  receive-interval 50
  transmit-interval 50
  detect-multiplier 3
 !
!
`

// TestBFDFRRInterop: vigil and FRR 8.4's bfdd, IPv4 and IPv6: Up within
// 2 s, FRR reports the session up with the negotiated intervals, and a cut
// link is detected by both within the detection time + 20 ms; FRR takes a
// killed vigil for a failure (detection time expired) and an orderly stop
// for its AdminDown. 50 ms x 3: the machine that runs CI is shared, and
// the point here is agreement.
//
// Why no 10 ms x 3 interop case (issue #11 asks detection within the
// detection time + 20 ms): its detection time is 30 ms, and on the shared
// 2-CPU machine a 10 ms session has false downs without any cut (two idle
// vigils flapped 17 to 43 times in 14 s while other tests ran; keepalived's
// BFD has them too, docs/benchmarks.md): such a test would fail on the
// machine's load, not on interoperability, or need a bound so generous it
// proves nothing. Detection at 10 ms x 3 is measured in bench/bfd.sh (the
// bfd_takeover outage, with its median of 5) instead.
func TestBFDFRRInterop(t *testing.T) {
	requireVRRPLab(t, "vtysh", "/usr/lib/frr/bfdd", "/usr/lib/frr/zebra")
	l, hosts, ports := labtest.LAN(t, "bfdf", map[string][]string{
		"v": {"192.0.2.1/24", "2001:db8::1/64"}, "f": {"192.0.2.2/24", "2001:db8::2/64"}}, "v", "f")
	// IPv6 addresses must have left tentative before anyone binds them.
	for _, h := range []*netlab.Host{hosts["v"], hosts["f"]} {
		waitFor(t, 5*time.Second, "IPv6 DAD on "+h.Name, func() bool {
			out, _ := h.Run("ip", "-6", "addr", "show", "tentative")
			return !strings.Contains(out, "2001:db8")
		})
	}
	f := startFRR(t, hosts["f"], frrBFDConf)
	// bfdd is ready once it lists its peers (and has its zebra session).
	waitFor(t, 5*time.Second, "bfdd to list its peers", func() bool {
		ps, err := f.peers()
		return err == nil && len(ps) == 2
	})
	time.Sleep(500 * time.Millisecond)
	vStart := time.Now()
	v := startNode(t, "vigil", hosts["v"], frrVigilConf)
	peers := []struct{ name, frrPeer string }{{"frr4", "192.0.2.1"}, {"frr6", "2001:db8::1"}}
	for _, s := range peers {
		took := waitFor(t, 5*time.Second, s.name+" Up in vigil", func() bool {
			b, _, ok := bfdOf(v, s.name)
			return ok && b.State == "Up"
		})
		t.Logf("%s Up %v after vigil started (%v after the binary was built and started)", s.name, time.Since(vStart), took)
		if took > 2*time.Second {
			t.Errorf("%s Up only %v after vigil started, want within 2 s", s.name, took)
		}
	}
	// Let the Poll Sequences finish, then compare both sides' views.
	time.Sleep(300 * time.Millisecond)
	for _, s := range peers {
		var p frrPeer
		waitFor(t, 3*time.Second, s.name+" up in FRR with 50 ms timers", func() bool {
			var ok bool
			p, ok = f.peer(s.frrPeer)
			return ok && p.Status == "up" && p.RemoteReceive == 50 && p.RemoteTransmit == 50
		})
		b, _, _ := bfdOf(v, s.name)
		t.Logf("FRR %s: %+v", s.frrPeer, p)
		if p.RemoteID != b.LocalDisc || p.ID != b.RemoteDisc || p.RemoteMultiplier != 3 {
			t.Errorf("FRR %+v against vigil %+v", p, b)
		}
		if time.Duration(b.TxInterval) != 50*time.Millisecond || time.Duration(b.DetectTime) != 150*time.Millisecond {
			t.Errorf("vigil negotiated tx %v detect %v, want 50ms 150ms", b.TxInterval, b.DetectTime)
		}
	}
	b4, _, _ := bfdOf(v, "frr4")
	detect := time.Duration(b4.DetectTime)
	// The machine running CI is shared: a cut whose detection a CPU stall
	// delayed is tried again (at most three cuts), each one logged; all
	// three over the bound fail.
	attempt := func() []string {
		var failures []string
		fail := func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }
		cut := time.Now()
		if err := l.Cut(ports["v"]); err != nil {
			t.Fatal(err)
		}
		limit := detect + 20*time.Millisecond
		// bfdd logs with 1 s resolution: poll it instead. Every query that
		// started later than the limit must see the session down; the first
		// one that did brackets when bfdd detected the cut.
		for _, s := range peers {
			var lastUp, firstDown time.Time
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) {
				start := time.Now()
				p, ok := f.peer(s.frrPeer)
				if ok && p.Status == "up" {
					lastUp = start
					if start.Sub(cut) > limit {
						fail("FRR still had %s up %v after the cut, want down within %v", s.frrPeer, start.Sub(cut), limit)
						break
					}
					continue
				}
				if ok {
					firstDown = time.Now()
					break
				}
			}
			if firstDown.IsZero() {
				fail("FRR never saw %s down", s.frrPeer)
			} else {
				lo := time.Duration(0)
				if !lastUp.IsZero() {
					lo = lastUp.Sub(cut)
				}
				t.Logf("FRR: %s down between %v and %v after the cut (detection time %v)", s.frrPeer, lo, firstDown.Sub(cut), detect)
			}
		}
		for _, s := range peers {
			waitFor(t, 2*time.Second, s.name+" Down in vigil", func() bool {
				b, _, ok := bfdOf(v, s.name)
				return ok && b.State == "Down"
			})
			b, _, _ := bfdOf(v, s.name)
			took := b.LastDownAt.Sub(cut)
			t.Logf("vigil: %s down %v after the cut: %s", s.name, took, b.LastDown)
			if took > limit {
				fail("vigil saw %s go down %v after the cut, want within %v", s.name, took, limit)
			}
		}
		return failures
	}
	var failures []string
	for try := 0; try < 3; try++ {
		failures = attempt()
		if err := l.Heal(ports["v"]); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "frr4 and frr6 Up again", func() bool {
			b4, _, ok4 := bfdOf(v, "frr4")
			b6, _, ok6 := bfdOf(v, "frr6")
			return ok4 && ok6 && b4.State == "Up" && b6.State == "Up"
		})
		if len(failures) == 0 {
			break
		}
		t.Logf("cut %d over the bound: %s", try+1, strings.Join(failures, "; "))
		time.Sleep(500 * time.Millisecond)
	}
	for _, f := range failures {
		t.Error(f)
	}

	// A dead daemon is a failure to FRR, an orderly stop is not. Killed,
	// vigil's BFD process falls silent: FRR declares both sessions down
	// when their detection time runs out ("control detection time
	// expired"). Stopped, vigil sends AdminDown, which FRR takes as the
	// neighbour signalling the session down (RFC 5882 section 3.2: not a
	// failure of the path): the diagnostic tells the two apart.
	downs := func(what string) map[string]frrPeer {
		out := map[string]frrPeer{}
		for _, s := range peers {
			var p frrPeer
			waitFor(t, 3*time.Second, s.frrPeer+" down in FRR after vigil "+what, func() bool {
				var ok bool
				p, ok = f.peer(s.frrPeer)
				return ok && p.Status != "up"
			})
			out[s.frrPeer] = p
		}
		return out
	}
	killed := time.Now()
	v.StopWith(syscall.SIGKILL)
	for peer, p := range downs("was killed") {
		t.Logf("FRR %s %v after vigil was killed: status %s, diagnostic %q", peer, time.Since(killed), p.Status, p.Diagnostic)
		if p.Diagnostic != "control detection time expired" {
			t.Errorf("FRR's %s went %s with diagnostic %q after vigil was killed, want control detection time expired (a dead daemon sends no AdminDown)", peer, p.Status, p.Diagnostic)
		}
	}
	v = startNode(t, "vigil", hosts["v"], frrVigilConf)
	for _, s := range peers {
		waitFor(t, 5*time.Second, s.frrPeer+" up in FRR again", func() bool {
			p, ok := f.peer(s.frrPeer)
			return ok && p.Status == "up"
		})
	}
	v.Stop()
	for peer, p := range downs("stopped") {
		t.Logf("FRR %s after vigil's orderly stop: status %s, diagnostic %q", peer, p.Status, p.Diagnostic)
		if p.Diagnostic != "neighbor signaled session down" {
			t.Errorf("FRR's %s went %s with diagnostic %q at vigil's orderly stop, want neighbor signaled session down (its AdminDown)", peer, p.Status, p.Diagnostic)
		}
	}
}

// takeoverBFD is the BFD session of the bfd_takeover tests, 20 ms x 3 to
// the peer.
const takeoverBFD = `
global_defs { vrrp_version 3 }
bfd_instance peer {
  neighbor_ip @PEER@
  source_ip @SRC@
  min_rx 20
  min_tx 20
  multiplier 3
}
`

const takeoverConf = takeoverBFD + `vrrp_instance VI_T {
  interface eth0
  state BACKUP
  virtual_router_id 63
  priority @PRIO@
  advert_int 1
  unicast_src_ip @SRC@
  unicast_peer { @PEER@ }
  virtual_ipaddress { 192.0.2.163/24 }
  bfd_takeover peer
}
`

func instState(n *node) (control.InstanceStatus, bool) {
	st, err := n.Status()
	if err != nil || len(st.Instances) == 0 {
		return control.InstanceStatus{}, false
	}
	return st.Instances[0], true
}

// TestBFDTakeover: with adverts at 1 s and bfd_takeover on a 20 ms x 3
// session, a backup takes over a cut master within the detection time
// plus Skew_Time instead of Master_Down_Interval (about 3 s); the master
// returns by ordinary preemption; and a failure of BFD alone (its packets
// dropped while adverts flow) leaves no split brain: the master, still
// advertising, wins back at once and keeps the VIP.
func TestBFDTakeover(t *testing.T) {
	requireVRRPLab(t, "nft")
	vip := netip.MustParseAddr("192.0.2.163")
	l, hosts, ports, m, b := takeoverPair(t, "bfdt", takeoverConf, "192.0.2.1", "192.0.2.2", "/24", vip)
	time.Sleep(300 * time.Millisecond)
	s, _, _ := bfdOf(b, "peer")
	detect := time.Duration(s.DetectTime)
	skew := time.Duration(float64(time.Second) * float64(256-250) / 256)

	// 1. The master's link is cut.
	takeoverAfterCut(t, l, ports["m"], b, detect, skew, 2*time.Second)
	// 2. The master returns and preempts (priority 254 > 250).
	if err := l.Heal(ports["m"]); err != nil {
		t.Fatal(err)
	}
	soleOwner(t, vip, m, 500*time.Millisecond, 10*time.Second, m, b)
	waitFor(t, 5*time.Second, "the session Up again", func() bool { return bfdUp(b) })
	before, _ := instState(m)

	// 3. BFD alone fails: the backup drops BFD packets, adverts still flow.
	if out, err := hosts["b"].Run("nft", "add table inet bfdblock; add chain inet bfdblock in { type filter hook input priority 0; }; add rule inet bfdblock in udp dport 3784 drop"); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
	blocked := time.Now()
	waitFor(t, 2*time.Second, "the backup's session Down", func() bool {
		s, _, ok := bfdOf(b, "peer")
		return ok && s.State == "Down"
	})
	// The backup takes over after Skew_Time, then hears the master.
	var sawMaster bool
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		in, _ := instState(b)
		if in.State == "MASTER" {
			sawMaster = true
		}
		if sawMaster && in.State == "BACKUP" {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	in, _ := instState(b)
	mm, _ := instState(m)
	t.Logf("BFD blocked: backup %s since %v after the block (%s); master %s since %v", in.State, in.Since.Sub(blocked), in.Reason, mm.State, mm.Since.Sub(blocked))
	if in.State != "BACKUP" {
		t.Fatalf("the backup is %s after BFD alone failed, want BACKUP again", in.State)
	}
	if mm.State != "MASTER" || !mm.Since.Equal(before.Since) {
		t.Errorf("the master left MASTER (now %s since %v): a BFD-only failure must not move it", mm.State, mm.Since)
	}
	if sawMaster {
		// Both were MASTER until the master's next advert, sent at once
		// when it heard the backup's lower-priority one.
		t.Logf("backup was MASTER briefly and yielded at %v", in.Since.Sub(blocked))
	}
	soleOwner(t, vip, m, time.Second, 3*time.Second, m, b)
}

const takeoverConf6 = takeoverBFD + `vrrp_instance VI_T6 {
  interface eth0
  state BACKUP
  virtual_router_id 64
  priority @PRIO@
  advert_int 1
  virtual_ipaddress { 2001:db8::163/64 }
  bfd_takeover peer
}
`

// takeoverPair is the lab of the bfd_takeover tests: on one LAN named
// name, a master m at mAddr (priority 254) and a backup b at bAddr (250)
// run conf (takeoverConf or takeoverConf6: a BFD session to each other,
// bfd_takeover naming it), and m holds vip alone with the session Up on
// both.
func takeoverPair(t *testing.T, name, conf, mAddr, bAddr, plen string, vip netip.Addr) (*netlab.Lab, map[string]*netlab.Host, map[string]string, *node, *node) {
	t.Helper()
	l, hosts, ports := labtest.LAN(t, name, map[string][]string{"m": {mAddr + plen}, "b": {bAddr + plen}}, "m", "b")
	m := startNode(t, "vigil", hosts["m"], confFor(conf, 254, mAddr, bAddr))
	b := startNode(t, "vigil", hosts["b"], confFor(conf, 250, bAddr, mAddr))
	soleOwner(t, vip, m, 500*time.Millisecond, 10*time.Second, m, b)
	waitFor(t, 5*time.Second, "the session Up on both", func() bool { return bfdUp(m) && bfdUp(b) })
	return l, hosts, ports, m, b
}

// bfdUp reports whether n's BFD session "peer" is Up.
func bfdUp(n *node) bool {
	s, _, ok := bfdOf(n, "peer")
	return ok && s.State == "Up"
}

// TestBFDTakeoverIPv6: an IPv6 instance knows its master by the link-local
// address of its multicast adverts, the BFD session by the master's global
// address; the backup matches the two by their link-layer address
// (docs/configuration.md, bfd_takeover) and takes over a cut master within
// the detection time plus Skew_Time, with cause bfd_takeover.
func TestBFDTakeoverIPv6(t *testing.T) {
	requireVRRPLab(t, "nft")
	vip := netip.MustParseAddr("2001:db8::163")
	l, _, ports, _, b := takeoverPair(t, "bfd6", takeoverConf6, "2001:db8::1", "2001:db8::2", "/64", vip)
	waitFor(t, 5*time.Second, "the backup to know its master by a link-local address", func() bool {
		_, in, ok := bfdOf(b, "peer")
		return ok && strings.HasPrefix(in.MasterAddr, "fe80:")
	})
	// The backup learns the master's link-layer address at its next look
	// at the neighbour table (every 2 s).
	time.Sleep(2500 * time.Millisecond)
	s, in, _ := bfdOf(b, "peer")
	detect := time.Duration(s.DetectTime)
	skew := time.Duration(float64(time.Second) * float64(256-250) / 256)
	t.Logf("backup: master %s, BFD neighbor %s", in.MasterAddr, s.Peer)

	takeoverAfterCut(t, l, ports["m"], b, detect, skew, 4*time.Second)
}

// takeoverAfterCut cuts the master's port and checks that the backup b
// becomes MASTER by bfd_takeover, naming the session, within the detection
// time plus Skew_Time plus a margin. The cause proves the mechanism; the
// bound only that it beats the VRRP timer by far on a shared, loaded
// machine (bench/bfd.sh measures the outage).
func takeoverAfterCut(t *testing.T, l *netlab.Lab, port string, b *node, detect, skew, wait time.Duration) {
	t.Helper()
	cut := time.Now()
	if err := l.Cut(port); err != nil {
		t.Fatal(err)
	}
	waitFor(t, wait, "the backup MASTER", func() bool {
		in, _ := instState(b)
		return in.State == "MASTER"
	})
	in, _ := instState(b)
	took := in.Since.Sub(cut)
	t.Logf("backup MASTER %v after the cut (detection %v + Skew_Time %v): %s (%s)", took, detect, skew, in.Reason, in.Cause)
	if in.Cause != vrrp.CauseBFDTakeover.String() || !strings.Contains(in.Reason, "BFD session peer") {
		t.Errorf("cause %q, reason %q: want a bfd_takeover naming the session (not the master down timer)", in.Cause, in.Reason)
	}
	if limit := detect + skew + 500*time.Millisecond; took > limit {
		t.Errorf("takeover %v after the cut, want within %v (Master_Down_Interval would be about 3 s)", took, limit)
	}
}

const bfdCheckDirector = `
bfd_instance rs1 {
  neighbor_ip 192.0.2.2
  source_ip 192.0.2.1
  min_rx 50
  min_tx 50
  multiplier 3
}
virtual_server 192.0.2.100 80 {
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 192.0.2.2 80 {
    BFD_CHECK { name rs1 }
  }
}
`

const bfdCheckPeer = `
bfd_instance director {
  neighbor_ip 192.0.2.1
  source_ip 192.0.2.2
  min_rx 50
  min_tx 50
  multiplier 3
}
`

// TestBFDCheck: a real server with BFD_CHECK is down while the session to
// it is not Up: down at start, up once its BFD peer runs, down again
// within the detection time after the peer is killed.
func TestBFDCheck(t *testing.T) {
	requireVRRPLab(t, "nft")
	_, hosts, _ := labtest.LAN(t, "bfdc", map[string][]string{"d": {"192.0.2.1/24"}, "r": {"192.0.2.2/24"}}, "d", "r")
	d := startNode(t, "vigil", hosts["d"], bfdCheckDirector)
	rsUp := func() (bool, bool) {
		st, err := d.Status()
		if err != nil || len(st.Services) == 0 || len(st.Services[0].RealServers) == 0 {
			return false, false
		}
		return st.Services[0].RealServers[0].Up, true
	}
	waitFor(t, 5*time.Second, "the real server known and down (no BFD peer yet)", func() bool {
		up, ok := rsUp()
		return ok && !up
	})
	r := startNode(t, "vigil", hosts["r"], bfdCheckPeer)
	took := waitFor(t, 5*time.Second, "the real server up with its BFD session", func() bool {
		up, _ := rsUp()
		return up
	})
	t.Logf("real server up %v after its BFD peer started", took)
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	r.StopWith(syscall.SIGKILL)
	waitFor(t, 2*time.Second, "the real server down again", func() bool {
		up, _ := rsUp()
		return !up
	})
	t.Logf("real server down %v after its BFD peer was killed (detection time 150 ms)", time.Since(killed))
	if out := d.Out.String(); !strings.Contains(out, "BFD_CHECK rs1") {
		t.Errorf("the director does not log BFD_CHECK as the cause:\n%s", out)
	}
}

const bfdSchedConf = `
global_defs {
  vrrp_rt_priority 3
  @BFDSCHED@
}
bfd_instance p {
  neighbor_ip 192.0.2.2
  source_ip 192.0.2.1
}
vrrp_instance VI_S {
  interface eth0
  state BACKUP
  virtual_router_id 70
  priority 100
  virtual_ipaddress { 192.0.2.170/24 }
}
`

// threadSched is one thread's name and scheduling from /proc.
type threadSched struct {
	tid           int
	comm          string
	nice, rt, pol int
}

func threadsOf(t *testing.T, pid int) []threadSched {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []threadSched
	for _, e := range ents {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, e.Name()))
		if err != nil {
			continue // the thread ended
		}
		// "tid (comm) state ...": fields after the comm's closing paren;
		// nice is field 19, rt_priority 40, policy 41 (proc(5)).
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+2:])
		ts := threadSched{comm: s[strings.IndexByte(s, '(')+1 : i]}
		ts.tid, _ = strconv.Atoi(e.Name())
		ts.nice, _ = strconv.Atoi(f[19-3])
		ts.rt, _ = strconv.Atoi(f[40-3])
		ts.pol, _ = strconv.Atoi(f[41-3])
		out = append(out, ts)
	}
	return out
}

// bfdPID is the BFD process of a vigil node, from its status (0: none).
func bfdPID(n *node) int {
	st, err := n.Status()
	if err != nil || st.BFDRunner == nil {
		return 0
	}
	return st.BFDRunner.PID
}

// TestBFDProcessScheduling: bfd_rt_priority and bfd_process_name schedule
// and name every thread of the BFD process, and vrrp_rt_priority applies
// to the daemon's threads only; a reload to bfd_priority makes the BFD
// process a normal one at that nice value, named vigil_bfd again.
func TestBFDProcessScheduling(t *testing.T) {
	requireVRRPLab(t)
	h := labtest.OneHost(t, "bfds")
	conf := func(s string) string { return strings.Replace(bfdSchedConf, "@BFDSCHED@", s, 1) }
	n := startNode(t, "vigil", h, conf("bfd_rt_priority 7\n  bfd_process_name bfdproc"))
	// every thread of the BFD process, and how many have want
	all := func(want threadSched) (bool, []threadSched) {
		pid := bfdPID(n)
		if pid == 0 {
			return false, nil
		}
		ts := threadsOf(t, pid)
		for _, x := range ts {
			if x.comm != want.comm || x.pol != want.pol || x.rt != want.rt || x.nice != want.nice {
				return false, ts
			}
		}
		return len(ts) > 0, ts
	}
	waitFor(t, 5*time.Second, "every thread of the BFD process named bfdproc in SCHED_RR 7, the daemon's in SCHED_RR 3", func() bool {
		ok, _ := all(threadSched{comm: "bfdproc", pol: 2, rt: 7})
		rr3 := 0
		for _, o := range threadsOf(t, n.Cmd.Process.Pid) {
			if o.pol == 2 && o.rt == 3 {
				rr3++
			}
		}
		return ok && rr3 > 0
	})
	// The daemon reapplies vrrp_rt_priority every 2 s, to its own threads.
	time.Sleep(4500 * time.Millisecond)
	if ok, ts := all(threadSched{comm: "bfdproc", pol: 2, rt: 7}); !ok {
		t.Fatalf("the BFD process's threads after 4.5 s: %+v, want SCHED_RR (2) priority 7", ts)
	}
	for _, o := range threadsOf(t, n.Cmd.Process.Pid) {
		if o.rt == 7 || o.comm == "bfdproc" {
			t.Errorf("the daemon's thread %+v has BFD's scheduling or name", o)
		}
	}

	// Reload: bfd_priority -4, no bfd_rt_priority, default name.
	n.reload(t, conf("bfd_priority -4"), "the reload", 10*time.Second)
	waitFor(t, 5*time.Second, "the BFD process's threads named vigil_bfd, SCHED_OTHER at nice -4", func() bool {
		ok, _ := all(threadSched{comm: "vigil_bfd", nice: -4})
		return ok
	})
}

// TestBFDProcessLifecycle: the BFD process is a child of the daemon. Killed,
// it is started again with the sessions, which come Up again, and the
// backup whose bfd_takeover names the session does not take over (its
// sessions went AdminDown locally, which says nothing of the master);
// when the daemon is killed, the BFD process dies with it (PDEATHSIG) and
// the peer sees the session Down by its detection time (no AdminDown).
func TestBFDProcessLifecycle(t *testing.T) {
	requireVRRPLab(t, "nft")
	vip := netip.MustParseAddr("192.0.2.163")
	_, _, _, m, b := takeoverPair(t, "bfdl", takeoverConf, "192.0.2.1", "192.0.2.2", "/24", vip)
	pid := bfdPID(b)
	if pid == 0 {
		t.Fatal("no BFD process pid in the backup's status")
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil {
		t.Fatal(err)
	} else if f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:])); f[1] != strconv.Itoa(b.Cmd.Process.Pid) {
		t.Errorf("the BFD process's parent is %s, want the daemon %d", f[1], b.Cmd.Process.Pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, 5*time.Second, "a new BFD process on the backup", func() bool {
		st, err := b.Status()
		return err == nil && st.BFDRunner != nil && st.BFDRunner.Restarts == 1 && st.BFDRunner.PID != 0 && st.BFDRunner.PID != pid
	})
	waitFor(t, 5*time.Second, "the session Up again", func() bool { return bfdUp(b) })
	t.Logf("the backup's session Up again %v after its BFD process was killed", time.Since(killed))
	if in, _ := instState(b); in.State != "BACKUP" || in.Since.After(killed) {
		t.Errorf("the backup is %s since %v after its BFD process was killed (%s), want BACKUP throughout", in.State, in.Since.Sub(killed), in.Reason)
	}
	soleOwner(t, vip, m, 300*time.Millisecond, 3*time.Second, m, b)

	// The daemon killed: its BFD process goes with it.
	mpid := bfdPID(m)
	m.StopWith(syscall.SIGKILL)
	waitFor(t, 2*time.Second, "the master's BFD process gone with its daemon", func() bool {
		return syscall.Kill(mpid, 0) != nil
	})
	waitFor(t, 2*time.Second, "the backup's session Down", func() bool {
		s, _, ok := bfdOf(b, "peer")
		return ok && s.State == "Down"
	})
	// By its detection time: the dying daemon's BFD process sent no
	// AdminDown (which would be diagnostic 3 and no failure to the peer).
	if s, _, _ := bfdOf(b, "peer"); s.LastDownDiag != 1 {
		t.Errorf("the backup's session went Down with diagnostic %d (%s), want 1 (detection time expired)", s.LastDownDiag, s.LastDown)
	}
}
