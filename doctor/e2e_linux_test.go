package doctor_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/doctor"
	"vigil/internal/doctortest"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

func TestMain(m *testing.M) { vigilBin.Main(m) }

// vigilBin is the vigil binary, built once per test binary, only by the
// tests that passed their skip checks.
var vigilBin = labtest.Binary{Pattern: "vigil-doctor-bin-", Pkgs: []string{"vigil/cmd/vigil", "vigil/cmd/vigil-tools"}}

func vigilBinary(t *testing.T) string {
	t.Helper()
	return vigilBin.MustPath(t)
}

// newLab builds a lab with one segment and hosts on it, addressed as given
// (host -> CIDR on eth0); it is deleted when the test ends.
func newLab(t *testing.T, prefix string, hosts map[string]string) map[string]*netlab.Host {
	t.Helper()
	testenv.RequireTool(t, "nft")
	addrs := map[string][]string{}
	var names []string
	for name, addr := range hosts {
		addrs[name] = []string{addr}
		names = append(names, name)
	}
	_, hs, _ := labtest.LAN(t, prefix, addrs, names...)
	return hs
}

// start runs kind ("vigil" or "keepalived") on conf in h until the test
// ends.
func start(t *testing.T, kind string, h *netlab.Host, conf string) *labtest.Daemon {
	t.Helper()
	if kind == "vigil" {
		return labtest.StartVigil(t, h, vigilBinary(t), conf)
	}
	return labtest.StartKeepalived(t, h, conf, "-l", "-D", "-P")
}

// state is the state of vigil d's instance name ("" when unknown).
func state(d *labtest.Daemon, name string) string {
	st, err := d.Status()
	if err != nil {
		return ""
	}
	for _, in := range st.Instances {
		if in.Name == name {
			return in.State
		}
	}
	return ""
}

// runDoctor runs `vigil doctor -json` next to r and returns its report and
// exit code.
func runDoctor(t *testing.T, r *labtest.Daemon, sniff string) (doctor.Report, int) {
	t.Helper()
	return runDoctorArgs(t, r.Host, "-f", r.Conf, "-control", r.Ctl, "-sniff", sniff)
}

// runDoctorArgs runs `vigil doctor args... -json` in h.
func runDoctorArgs(t *testing.T, h *netlab.Host, args ...string) (doctor.Report, int) {
	t.Helper()
	return doctortest.Run(t, h, vigilBinary(t), args...)
}

func mentions(fs []doctor.Finding, s string) bool {
	for _, f := range fs {
		if strings.Contains(f.Summary+"\n"+strings.Join(f.Evidence, "\n"), s) {
			return true
		}
	}
	return false
}

const confV3 = `
global_defs {
  vrrp_version 3
}
vrrp_instance VI_1 {
  interface eth0
  state BACKUP
  virtual_router_id 51
  priority %d
  advert_int 0.2
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

// pair starts two vigil nodes, a (priority 150) and b (100), and waits for
// a to be master and b backup.
func pair(t *testing.T, prefix string, conf string) (a, b *labtest.Daemon, hosts map[string]*netlab.Host) {
	hosts = newLab(t, prefix, map[string]string{"a": "192.0.2.1/24", "b": "192.0.2.2/24"})
	a = start(t, "vigil", hosts["a"], fmt.Sprintf(conf, 150))
	b = start(t, "vigil", hosts["b"], fmt.Sprintf(conf, 100))
	labtest.WaitFor(t, 20*time.Second, "a MASTER and b BACKUP", func() bool {
		return state(a, "VI_1") == "MASTER" && state(b, "VI_1") == "BACKUP"
	})
	return a, b, hosts
}

// TestFirewallSplitBrain: a rule dropping protocol 112 on the backup's
// input makes both nodes master; doctor on the backup quotes the rule and
// reports the split brain, doctor on the master reports the split brain
// and that the other node does not hear it.
func TestFirewallSplitBrain(t *testing.T) {
	t.Parallel()
	a, b, hosts := pair(t, "dra", confV3)
	if _, err := hosts["b"].Run("nft", "add table inet filter; add chain inet filter input { type filter hook input priority 0; }; add rule inet filter input ip protocol vrrp drop"); err != nil {
		t.Fatal(err)
	}
	labtest.WaitFor(t, 10*time.Second, "b MASTER too", func() bool { return state(b, "VI_1") == "MASTER" && state(a, "VI_1") == "MASTER" })

	rep, code := runDoctor(t, b, "1500ms")
	if code != 1 {
		t.Errorf("doctor on b exited %d, want 1", code)
	}
	if fw := doctortest.Find(rep, "VD101", doctor.Crit); !mentions(fw, "ip protocol vrrp drop") {
		t.Errorf("doctor on b does not quote the firewall rule: %+v", fw)
	}
	if sb := doctortest.Find(rep, "VD301", doctor.Crit); !mentions(sb, "192.0.2.1") {
		t.Errorf("doctor on b does not report the split brain with 192.0.2.1: %+v", sb)
	}
	if d := doctortest.Find(rep, "VD102", doctor.Crit); !mentions(d, "192.0.2.1") {
		t.Errorf("doctor on b does not say the host drops 192.0.2.1's adverts: %+v", d)
	}

	rep, code = runDoctor(t, a, "1500ms")
	if code != 1 {
		t.Errorf("doctor on a exited %d, want 1", code)
	}
	if sb := doctortest.Find(rep, "VD301", doctor.Crit); !mentions(sb, "192.0.2.2") || !mentions(sb, "does not hear this node") {
		t.Errorf("doctor on a does not report the split brain with 192.0.2.2, deaf to a: %+v", sb)
	}
}

const confV2Pass = `
vrrp_instance VI_1 {
  interface eth0
  state BACKUP
  virtual_router_id 51
  priority %d
  advert_int %d
  authentication {
    auth_type PASS
    auth_pass %s
  }
  virtual_ipaddress {
    %s
  }
}
`

// TestVRIDClash: a third router (vigil, or keepalived when kind says so)
// with the same VRID but another password and VIP joins the segment; doctor
// on both nodes of the pair reports the clash, naming its address.
func TestVRIDClash(t *testing.T) {
	t.Parallel()
	testVRIDClash(t, "drb", "vigil")
}

func testVRIDClash(t *testing.T, prefix, kind string) {
	// keepalived 2.2.7 as master does not send while it receives adverts
	// (even rejected ones) more often than its own interval: its advert
	// timer restarts on every packet read. So against keepalived the pair
	// advertises every 3 s and the intruder every second.
	pairInt := 1
	if kind == "keepalived" {
		pairInt = 3
	}
	if kind == "keepalived" {
		testenv.RequireTool(t, "keepalived")
	}
	conf := strings.Replace(strings.Replace(confV2Pass, "auth_pass %s", "auth_pass s3cr3t", 1), "    %s\n", "    192.0.2.100/24\n", 1)
	conf = strings.Replace(conf, "advert_int %d", fmt.Sprintf("advert_int %d", pairInt), 1)
	hosts := newLab(t, prefix, map[string]string{"a": "192.0.2.1/24", "b": "192.0.2.2/24", "k": "192.0.2.9/24"})
	a := start(t, "vigil", hosts["a"], fmt.Sprintf(conf, 150))
	b := start(t, "vigil", hosts["b"], fmt.Sprintf(conf, 100))
	labtest.WaitFor(t, 20*time.Second, "a MASTER and b BACKUP", func() bool {
		return state(a, "VI_1") == "MASTER" && state(b, "VI_1") == "BACKUP"
	})
	start(t, kind, hosts["k"], fmt.Sprintf(confV2Pass, 50, 1, "intruder", "192.0.2.200/24"))
	// The intruder drops the pair's adverts (wrong password) and becomes
	// master after its Master_Down_Interval, about 4 s.
	time.Sleep(5 * time.Second)

	for _, r := range []*labtest.Daemon{b, a} {
		rep, code := runDoctor(t, r, "3500ms")
		if code != 1 {
			t.Errorf("doctor on %s exited %d, want 1", r.Host.Name, code)
		}
		cl := doctortest.Find(rep, "VD201", doctor.Crit)
		if !mentions(cl, "192.0.2.9") || !mentions(cl, "VRID clash") {
			t.Errorf("doctor on %s does not report the VRID clash with 192.0.2.9: %+v", r.Host.Name, cl)
		}
		if !mentions(cl, "auth_pass") || !mentions(cl, "192.0.2.200") {
			t.Errorf("doctor on %s does not say what differs (password, VIPs): %+v", r.Host.Name, cl)
		}
		if len(doctortest.Find(rep, "VD301", doctor.Crit)) > 0 {
			t.Errorf("doctor on %s calls the foreign router a split brain", r.Host.Name)
		}
	}
}

// TestHealthyPair: a healthy pair gets a clean bill of health on both
// nodes: exit 0, nothing at warn or crit.
func TestHealthyPair(t *testing.T) {
	t.Parallel()
	a, b, _ := pair(t, "drc", confV3)
	for _, r := range []*labtest.Daemon{a, b} {
		rep, code := runDoctor(t, r, "1500ms")
		if code != 0 {
			t.Errorf("doctor on %s exited %d, want 0", r.Host.Name, code)
		}
		for _, f := range rep.Findings {
			if f.Problem() {
				t.Errorf("doctor on %s cries wolf: %s %s: %s %v", r.Host.Name, f.Code, f.Severity, f.Summary, f.Evidence)
			}
		}
		if len(doctortest.Find(rep, "VD101", doctor.Ok)) == 0 || len(doctortest.Find(rep, "VD201", doctor.Ok)) == 0 {
			t.Errorf("doctor on %s did not run the firewall and clash checks", r.Host.Name)
		}
	}
	// Without the daemon's word (another socket), from the configuration,
	// the host and the capture alone: still healthy, and it says so.
	for _, r := range []*labtest.Daemon{a, b} {
		rep, code := runDoctorArgs(t, r.Host, "-f", r.Conf, "-control", r.Ctl+".none", "-sniff", "1s")
		if code != 0 || Problems(rep) > 0 {
			t.Errorf("doctor without daemon on %s exited %d with %d problem(s)", r.Host.Name, code, Problems(rep))
		}
		if len(doctortest.Find(rep, "VD001", doctor.Info)) == 0 {
			t.Errorf("doctor without daemon on %s does not say it ran without one", r.Host.Name)
		}
	}
}

// Problems counts the warn and crit findings of rep.
func Problems(rep doctor.Report) int { return doctor.Problems(rep.Findings) }

// TestVRIDClashKeepalived is TestVRIDClash with the real keepalived 2.2.7
// as the intruder.
func TestVRIDClashKeepalived(t *testing.T) {
	t.Parallel()
	testVRIDClash(t, "drk", "keepalived")
}

// TestStalledMaster: the master is stopped for 3 s (SIGSTOP), the backup
// takes over and hands back when the master resumes. doctor on the backup
// explains it (VD602, for information: nothing is broken now) and still
// exits 0.
func TestStalledMaster(t *testing.T) {
	t.Parallel()
	a, b, _ := pair(t, "drs", confV3)
	// Past the first seconds, where a handover is the ordinary election
	// of nodes started together.
	time.Sleep(6 * time.Second)
	if err := a.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	labtest.WaitFor(t, 10*time.Second, "b MASTER while a is stopped", func() bool { return state(b, "VI_1") == "MASTER" })
	time.Sleep(2 * time.Second)
	if err := a.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	labtest.WaitFor(t, 10*time.Second, "b BACKUP again", func() bool { return state(b, "VI_1") == "BACKUP" && state(a, "VI_1") == "MASTER" })

	rep, code := runDoctor(t, b, "1s")
	if code != 0 {
		t.Errorf("doctor on b exited %d, want 0 (the pair is healthy again)", code)
	}
	if f := doctortest.Find(rep, "VD602", doctor.Info); !mentions(f, "handed back") || !mentions(f, "192.0.2.1") {
		t.Errorf("doctor on b does not explain the takeover and handback: %+v", f)
	}
}
