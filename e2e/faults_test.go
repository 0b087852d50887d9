package e2e

import (
	"syscall"
	"testing"
	"time"

	"vigil/internal/labtest"
)

const confFaults = `
vrrp_instance VI_F {
  interface eth0
  state BACKUP
  virtual_router_id 71
  version 3
  priority @PRIO@
  advert_int 0.1
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

// TestFaultsKillAndStall: kill -9 of the master leaves its VIP behind (no
// process is left to remove it), the backup takes over within
// Master_Down_Interval, and the restarted node removes the stale VIP
// before preempting back; a master frozen for 3 s (SIGSTOP, the "host
// stalled" case) loses the VIP to the backup and, once thawed, converges to
// a single holder again.
func TestFaultsKillAndStall(t *testing.T) {
	requireVRRPLab(t)
	t.Parallel()
	_, hosts, _ := labtest.LAN(t, "flt", map[string][]string{"a": {"192.0.2.1/24"}, "b": {"192.0.2.2/24"}}, "a", "b")
	a, b := vigilPair(t, confFaults, hosts["a"], hosts["b"], 500*time.Millisecond)
	vip := pairVIP

	// kill -9: no priority 0 advert, the VIP stays on a.
	bound := masterDown(3, 100, 100*time.Millisecond) + 100*time.Millisecond
	a.StopWith(syscall.SIGKILL)
	took := waitFor(t, 5*time.Second, "b to take over after kill -9", func() bool { return b.hasAddr(vip) })
	t.Logf("takeover after kill -9: %v (bound %v)", took.Round(time.Millisecond), bound)
	if took > bound {
		t.Errorf("takeover after kill -9 took %v, want at most %v", took, bound)
	}
	if !a.hasAddr(vip) {
		t.Fatalf("the killed node no longer has the VIP: the test does not exercise stale VIP removal")
	}
	a = startNode(t, "vigil", hosts["a"], confFor(confFaults, 150, "", ""))
	soleOwner(t, vip, a, 500*time.Millisecond, 10*time.Second, a, b)

	// SIGSTOP for 3 s: b takes over; after SIGCONT a single holder remains.
	if err := a.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "b to take over from the stalled master", func() bool { return b.hasAddr(vip) })
	time.Sleep(3 * time.Second)
	if err := a.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	soleOwner(t, vip, a, time.Second, 5*time.Second, a, b)
	// The frozen node knows it was frozen: its loop woke about 3 s late.
	if lag := instStatus(t, a).Counters["loop_lag_max_ms"]; lag < 2500 {
		t.Errorf("loop_lag_max_ms after a 3 s stall = %d, want at least 2500", lag)
	}
	st := instStatus(t, b)
	if st.State != "BACKUP" {
		t.Errorf("b after the stall healed: %s, want BACKUP", st.State)
	}
}
