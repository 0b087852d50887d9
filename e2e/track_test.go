package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
)

const confTracked = `
global_defs {
  enable_script_security
  script_user root
}
vrrp_script chk_down_file {
  script "/bin/sh -c '! test -e @DIR@/down'"
  interval 1
  weight -60
  fall 1
  rise 1
}
vrrp_instance VI_T {
  interface eth0
  state BACKUP
  virtual_router_id 61
  version 3
  priority @PRIO@
  advert_int 0.2
  track_script {
    chk_down_file
  }
  notify @DIR@/notify.sh
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

// TestTrackScriptAndNotify: a vigil master follows a vrrp_script with
// weight -60 against a keepalived backup of priority 100. When the script
// fails, vigil's priority drops to 90 and keepalived takes over; when it
// passes again vigil preempts back. Its notify script sees every transition
// with keepalived's arguments.
func TestTrackScriptAndNotify(t *testing.T) {
	requireVRRPLab(t, "keepalived")
	t.Parallel()
	_, hosts, _ := labtest.LAN(t, "trk", map[string][]string{"v": {"192.0.2.1/24"}, "k": {"192.0.2.2/24"}}, "v", "k")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "notify.log")
	if err := os.WriteFile(filepath.Join(dir, "notify.sh"), []byte("#!/bin/sh\necho \"$*\" >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := strings.ReplaceAll(confTracked, "@DIR@", dir)
	v := startNode(t, "vigil", hosts["v"], confFor(conf, 150, "", ""))
	vip := netip.MustParseAddr("192.0.2.100")
	// keepalived starts once vigil is master: started together, either may
	// reach its down timer first, and keepalived's notify log would then
	// begin with a MASTER/BACKUP flap that has nothing to do with tracking.
	waitFor(t, 10*time.Second, "vigil to become master", func() bool { return v.hasAddr(vip) })
	// keepalived's notify script writes its own log: the same arguments
	// from both implementations are compared below.
	klog := filepath.Join(dir, "notify-k.log")
	if err := os.WriteFile(filepath.Join(dir, "notify-k.sh"), []byte("#!/bin/sh\necho \"$*\" >> "+klog+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	kconf := strings.ReplaceAll(strings.ReplaceAll(conf, "chk_down_file\n", "\n"), "notify.sh", "notify-k.sh")
	k := startNode(t, "keepalived", hosts["k"], confFor(kconf, 100, "", ""))
	soleOwner(t, vip, v, time.Second, 15*time.Second, v, k)

	if err := os.WriteFile(filepath.Join(dir, "down"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	soleOwner(t, vip, k, time.Second, 10*time.Second, v, k)
	st := instStatus(t, v)
	if st.State != "BACKUP" || st.Priority != 90 || st.BasePriority != 150 {
		t.Errorf("vigil after the script failed: %s priority %d (base %d), want BACKUP 90 (150)", st.State, st.Priority, st.BasePriority)
	}
	if err := os.Remove(filepath.Join(dir, "down")); err != nil {
		t.Fatal(err)
	}
	soleOwner(t, vip, v, time.Second, 10*time.Second, v, k)
	v.Stop()
	waitFor(t, 5*time.Second, "the STOP notification", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), "INSTANCE VI_T STOP")
	})
	b, _ := os.ReadFile(log)
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	want := []string{"INSTANCE VI_T BACKUP 150", "INSTANCE VI_T MASTER 150", "INSTANCE VI_T BACKUP 90", "INSTANCE VI_T MASTER 150", "INSTANCE VI_T STOP 150"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("notify calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	k.Stop()
	kb, _ := os.ReadFile(klog)
	kwant := "INSTANCE VI_T BACKUP 100|INSTANCE VI_T MASTER 100|INSTANCE VI_T BACKUP 100|INSTANCE VI_T STOP 100"
	if kgot := strings.Join(strings.Split(strings.TrimSpace(string(kb)), "\n"), "|"); kgot != kwant {
		t.Errorf("keepalived's notify calls (same script, same arguments expected):\n%s\nwant:\n%s", kgot, kwant)
	}
}
