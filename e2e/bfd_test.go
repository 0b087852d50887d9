package e2e

import (
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
)

// bfdOf returns the named BFD session of a vigil node's status.
func bfdOf(n *node, name string) (control.BFDSessionStatus, control.InstanceStatus, bool) {
	st, err := n.status()
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
		if b, err := os.ReadFile(filepath.Join(n.dir, f)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	n.stop(syscall.SIGKILL)
}

const bfdVigilConf = `
global_defs { vrrp_version 3 }
bfd_instance peer {
  neighbor_ip @PEER@
  source_ip @SRC@
  min_rx 10
  min_tx 10
  multiplier 3
}
vrrp_instance VI_A {
  interface eth0
  state BACKUP
  virtual_router_id 61
  priority 100
  advert_int 0.1
  virtual_ipaddress { 192.0.2.161/24 }
  track_bfd { peer }
}
`

const bfdKeepalivedConf = `
global_defs { vrrp_version 3 }
bfd_instance peer {
  neighbor_ip @PEER@
  source_ip @SRC@
  min_rx 10
  min_tx 10
  multiplier 3
}
vrrp_instance VI_B {
  interface eth0
  state BACKUP
  virtual_router_id 62
  priority 100
  advert_int 0.1
  virtual_ipaddress { 192.0.2.162/24 }
  track_bfd { peer }
}
`

// TestBFDKeepalivedInterop: vigil and keepalived 2.2.7 run a BFD session
// to each other, each with a VRRP instance that tracks it unweighted. The
// session comes Up within 2 s; killing keepalived puts vigil's instance in
// FAULT within the detection time + 20 ms; restarting it brings it back;
// killing vigil puts keepalived's instance in FAULT (its VIP goes).
func TestBFDKeepalivedInterop(t *testing.T) {
	requireVRRPLab(t, "keepalived")
	_, hosts, _ := labtest.LAN(t, "bfdk", map[string][]string{"v": {"192.0.2.1/24"}, "k": {"192.0.2.2/24"}}, "v", "k")
	vconf := confFor(bfdVigilConf, 100, "192.0.2.1", "192.0.2.2")
	kconf := confFor(bfdKeepalivedConf, 100, "192.0.2.2", "192.0.2.1")
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
	waitFor(t, 3*time.Second, "vigil's instance MASTER", func() bool {
		_, in, _ := bfdOf(v, "peer")
		return in.State == "MASTER"
	})
	vip := netip.MustParseAddr("192.0.2.162")
	waitFor(t, 5*time.Second, "keepalived's instance MASTER", func() bool { return k.hasAddr(vip) })
	time.Sleep(200 * time.Millisecond) // let the Poll Sequences settle
	b, _, _ := bfdOf(v, "peer")
	if time.Duration(b.TxInterval) != 10*time.Millisecond || time.Duration(b.DetectTime) != 30*time.Millisecond || b.RemoteDisc == 0 {
		t.Errorf("negotiated tx %v detect %v remote discriminator %d, want 10ms 30ms non-zero", b.TxInterval, b.DetectTime, b.RemoteDisc)
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
	vKilled := time.Now()
	v.stop(syscall.SIGKILL)
	waitFor(t, 2*time.Second, "keepalived's VIP to go (its track_bfd FAULT)", func() bool { return !k.hasAddr(vip) })
	t.Logf("keepalived released its VIP %v after vigil was killed", time.Since(vKilled))
	if !strings.Contains(k.out.String(), "FAULT") {
		t.Errorf("keepalived did not log FAULT:\n%s", k.out.String())
	}
}
