package e2e

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/acceptmode"
	"vigil/internal/labtest"
)

const confNoAccept = `
vrrp_instance VI_NA {
  interface eth0
  state BACKUP
  virtual_router_id 57
  version 3
  priority 150
  advert_int 0.2
  no_accept
  virtual_ipaddress {
    192.0.2.100/24
  }
  virtual_ipaddress_excluded {
    2001:db8:57::100/64
  }
}
`

// TestNoAccept: a VRRPv3 master with no_accept that is not the address
// owner holds its VIPs (an excluded IPv6 one too) but drops what is
// addressed to them, while hosts
// can still resolve them (ARP, ND) and reach the node's own address; a
// reload to accept lets the traffic in; a kill -9 leaves the drop list
// behind and the next start removes it.
func TestNoAccept(t *testing.T) {
	requireVRRPLab(t, "ping", "nft")
	t.Parallel()
	_, hosts, _ := labtest.LAN(t, "nacc", map[string][]string{
		"a": {"192.0.2.1/24", "2001:db8:57::1/64"},
		"c": {"192.0.2.9/24", "2001:db8:57::9/64"},
	}, "a", "c")
	c := hosts["c"]
	vips := []string{"192.0.2.100", "2001:db8:57::100"}
	pings := func(dst string) bool {
		for range 3 {
			if _, err := c.Run("ping", "-c", "1", "-W", "1", dst); err == nil {
				return true
			}
		}
		return false
	}
	table := func() string {
		out, _ := hosts["a"].Run("nft", "list", "ruleset")
		return out
	}

	a := startNode(t, "vigil", hosts["a"], confNoAccept)
	for _, v := range vips {
		waitFor(t, 10*time.Second, "vigil to hold "+v, func() bool { return a.hasAddr(netip.MustParseAddr(v)) })
	}
	c.Run("ip", "neigh", "flush", "dev", "eth0")
	for _, v := range vips {
		if _, err := c.Run("ping", "-c", "2", "-W", "1", v); err == nil {
			t.Errorf("%s answered while its master runs with no_accept", v)
		}
		if out, _ := c.Run("ip", "neigh", "show", v); !strings.Contains(out, "lladdr") {
			t.Errorf("%s could not be resolved under no_accept (ARP/ND must work): %q", v, out)
		}
	}
	for _, own := range []string{"192.0.2.1", "2001:db8:57::1"} {
		if !pings(own) {
			t.Errorf("the node's own %s is unreachable", own)
		}
	}

	// Reload to accept: the VIPs answer.
	a.hup(t, strings.Replace(confNoAccept, "no_accept", "accept", 1))
	for _, v := range vips {
		waitFor(t, 5*time.Second, v+" to answer after the reload to accept", func() bool { return pings(v) })
	}
	if strings.Contains(table(), acceptmode.Table) {
		t.Errorf("the drop list outlived the reload to accept:\n%s", table())
	}

	// Back to no_accept, then kill -9: the drop list stays behind (the
	// kernel state of a killed process), and a new start clears it.
	a.hup(t, confNoAccept)
	waitFor(t, 5*time.Second, "the drop list after the reload to no_accept", func() bool { return strings.Contains(table(), acceptmode.Table) })
	a.StopWith(syscall.SIGKILL)
	// An nft child the killed vigil had started may still be writing.
	waitFor(t, 5*time.Second, "the killed vigil's children to finish", func() bool {
		pids, err := hosts["a"].Pids()
		return err == nil && len(pids) == 0
	})
	if !strings.Contains(table(), acceptmode.Table) {
		t.Fatalf("no drop list after kill -9; the test below would prove nothing")
	}
	b := startNode(t, "vigil", hosts["a"], strings.Replace(confNoAccept, "no_accept", "accept", 1))
	// (The killed run's VIPs are still on the interface until the new run
	// removes them: ask the new run itself.)
	waitFor(t, 10*time.Second, "the restarted vigil to become master", func() bool {
		s, err := b.Status()
		return err == nil && len(s.Instances) == 1 && s.Instances[0].State == "MASTER"
	})
	if strings.Contains(table(), acceptmode.Table) {
		t.Errorf("a new start left the killed run's drop list:\n%s", table())
	}
	for _, v := range vips {
		if !pings(v) {
			t.Errorf("%s unreachable after the restart with accept", v)
		}
	}
	b.Stop()
	if strings.Contains(table(), acceptmode.Table) {
		t.Errorf("drop list left after SIGTERM:\n%s", table())
	}
}
