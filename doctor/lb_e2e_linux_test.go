package doctor_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"vigil/doctor"
	"vigil/internal/doctortest"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// The load-balancing findings, run as the operator would: vigil check,
// vigil run and vigil doctor in namespace labs whose sysctls the test sets.

const confNAT = `
vrrp_instance VI_1 {
  interface eth0
  state BACKUP
  virtual_router_id 51
  priority 150
  advert_int 0.2
  version 3
  virtual_ipaddress {
    192.0.2.100/24
  }
}
virtual_server 192.0.2.100 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.11 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
virtual_server 2001:db8::100 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 2001:db8::11 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`

// vigilCheck runs `vigil check -f conf` in h and returns its output.
func vigilCheck(t *testing.T, h *netlab.Host, conf string) string {
	t.Helper()
	out, err := h.Command(context.Background(), vigilBinary(t), "check", "-f", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("vigil check: %v\n%s", err, out)
	}
	return string(out)
}

// TestForwardingOffNAT: a NAT virtual server on a director with
// net.ipv4.ip_forward=0 is reported by `vigil check`, by the daemon's log
// at start and at a reload, and by `vigil doctor` (VD703, crit while the
// service is active); with forwarding on none of them says it.
func TestForwardingOffNAT(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t)
	hosts := newLab(t, "dfw", map[string]string{"dir": "192.0.2.1/24", "r1": "192.0.2.11/24"})
	dir := hosts["dir"]
	if _, err := dir.Run("sysctl", "-qw", "net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"); err != nil {
		t.Fatal(err)
	}
	const warning = "uses lb_kind NAT but net.ipv4.ip_forward is 0 on this host"
	const warning6 = "virtual_server [2001:db8::100]:tcp:80 uses lb_kind NAT but net.ipv6.conf.all.forwarding is 0"
	r := start(t, "vigil", dir, confNAT)
	if out := vigilCheck(t, dir, r.Conf); !strings.Contains(out, warning) || !strings.Contains(out, warning6) {
		t.Errorf("vigil check does not warn about IPv4 and IPv6 forwarding:\n%s", out)
	}
	labtest.WaitFor(t, 10*time.Second, "the director MASTER", func() bool { return state(r, "VI_1") == "MASTER" })
	if n := strings.Count(r.Out.String(), warning); n != 1 {
		t.Errorf("the daemon's start log has the forwarding warning %d times, want 1", n)
	}
	if !strings.Contains(r.Out.String(), warning6) {
		t.Errorf("the daemon's start log does not warn about IPv6 forwarding")
	}
	rep, code := runDoctor(t, r, "300ms")
	// One finding per family; both services are active (the IPv4 one as
	// its instance is master, the IPv6 one because no vrrp_instance holds
	// its VIP), so both are crit.
	fs := doctortest.Find(rep, "VD703", doctor.Crit)
	if len(fs) != 2 || !mentions(fs, "net.ipv4.ip_forward = 0") || !mentions(fs, "[192.0.2.100]:tcp:80") ||
		!mentions(fs, "net.ipv6.conf.all.forwarding = 0") || !mentions(fs, "[2001:db8::100]:tcp:80") {
		t.Errorf("doctor: two VD703 crit naming the services and the sysctls expected, got %+v", rep.Findings)
	}
	if code != 1 {
		t.Errorf("doctor exited %d, want 1", code)
	}

	if _, err := r.ControlReload(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	labtest.WaitFor(t, 5*time.Second, "the warning again after the reload", func() bool {
		return strings.Count(r.Out.String(), warning) == 2
	})

	// Forwarding on: nothing to say.
	if _, err := dir.Run("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"); err != nil {
		t.Fatal(err)
	}
	if out := vigilCheck(t, dir, r.Conf); strings.Contains(out, "forward") {
		t.Errorf("vigil check warns with forwarding on:\n%s", out)
	}
	rep, _ = runDoctor(t, r, "300ms")
	for _, f := range rep.Findings {
		if f.Code == "VD703" {
			t.Errorf("doctor reports VD703 with forwarding on: %+v", f)
		}
	}
}

const confDRDirector = `
virtual_server 198.51.100.100 80 {
  delay_loop 1
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server 198.51.100.11 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`

// TestDRRealServerWithoutVRRP: `vigil doctor -f director.conf` on a DR
// real server, which runs no vrrp_instance and no daemon, reports ARP
// settings that break DR (VD702) and a missing VIP (VD704), and nothing
// once the real server is set up right.
func TestDRRealServerWithoutVRRP(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t)
	hosts := newLab(t, "dvr", map[string]string{"rs": "198.51.100.11/24"})
	rs := hosts["rs"]
	tmp := t.TempDir()
	conf := tmp + "/director.conf"
	if err := os.WriteFile(conf, []byte(confDRDirector), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) {
		t.Helper()
		if _, err := rs.Run(args[0], args[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	doctorHere := func() doctor.Report {
		t.Helper()
		rep, _ := runDoctorArgs(t, rs, "-f", conf, "-control", tmp+"/none.sock", "-sniff", "100ms")
		return rep
	}
	run("sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=0", "net.ipv4.conf.eth0.arp_ignore=0",
		"net.ipv4.conf.all.arp_announce=0", "net.ipv4.conf.eth0.arp_announce=0")

	rep := doctorHere()
	if fs := doctortest.Find(rep, "VD704", doctor.Warn); !mentions(fs, "does not have the VIP 198.51.100.100") {
		t.Errorf("no VD704 for the missing VIP: %+v", rep.Findings)
	}

	run("ip", "addr", "add", "198.51.100.100/32", "dev", "lo")
	rep = doctorHere()
	if fs := doctortest.Find(rep, "VD702", doctor.Warn); !mentions(fs, "answers ARP for the VIP 198.51.100.100 on eth0") {
		t.Errorf("no VD702 on a real server without vrrp_instance: %+v", rep.Findings)
	}
	if fs := doctortest.Find(rep, "VD704", doctor.Warn); len(fs) > 0 {
		t.Errorf("VD704 with the VIP on lo: %+v", fs)
	}

	run("sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
	rep = doctorHere()
	for _, f := range rep.Findings {
		if f.Code == "VD702" || f.Code == "VD704" {
			t.Errorf("a well set-up real server gets %s: %s", f.Code, f.Summary)
		}
	}
}
