package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"vigil/control"
	"vigil/internal/labtest"
)

// reloadMaster is one vigil node of confV2MulticastPass at priority 150
// in its own lab, MASTER with the VIP 192.0.2.100, for reload tests.
type reloadMaster struct {
	*node
	text   string                 // the configuration it started with
	vip    netip.Addr             // 192.0.2.100
	before control.InstanceStatus // its instance once MASTER
}

func startReloadMaster(t *testing.T, prefix string) *reloadMaster {
	t.Helper()
	h := labtest.OneHost(t, prefix)
	r := &reloadMaster{text: confFor(confV2MulticastPass, 150, "192.0.2.1", ""), vip: netip.MustParseAddr("192.0.2.100")}
	r.node = startNode(t, "vigil", h, r.text)
	waitFor(t, 10*time.Second, "vigil to become master", func() bool { return r.hasAddr(r.vip) })
	r.before = instStatus(t, r.node)
	return r
}

// requireKept fails the test unless the instance is still MASTER with no
// transition since it started, holding the VIP.
func (r *reloadMaster) requireKept(t *testing.T) {
	t.Helper()
	now := instStatus(t, r.node)
	if now.State != "MASTER" || !now.Since.Equal(r.before.Since) || !r.hasAddr(r.vip) {
		t.Fatalf("after a rejected reload: %s since %v (was %v), VIP held %v", now.State, now.Since, r.before.Since, r.hasAddr(r.vip))
	}
}

// TestReload: SIGHUP with a broken file keeps the running configuration and
// its VIPs (keepalived only does so with reload_check_config); SIGHUP with a
// changed priority and an extra VIP keeps the instance MASTER without a
// transition and adds only the new VIP.
func TestReload(t *testing.T) {
	requireVRRPLab(t)
	t.Parallel()
	a := startReloadMaster(t, "rld")
	extra := netip.MustParseAddr("192.0.2.101")

	broken := strings.Replace(a.text, "priority 150", "priority 150;", 1)
	ok, errs, _ := a.reload(t, broken, "the rejected reload to be reported", 5*time.Second)
	if ok || len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), "priority") {
		t.Fatalf("broken reload: ok=%v errors=%q; want it rejected, naming the priority line", ok, errs)
	}
	a.requireKept(t)

	changed := strings.Replace(a.text, "priority 150", "priority 120", 1)
	changed = strings.Replace(changed, "192.0.2.100/24\n", "192.0.2.100/24\n    192.0.2.101/24\n", 1)
	if ok, errs, _ := a.reload(t, changed, "the second reload", 5*time.Second); !ok {
		t.Fatalf("good reload rejected: %q", errs)
	}
	waitFor(t, 2*time.Second, "the added VIP", func() bool { return a.hasAddr(extra) })
	now := instStatus(t, a.node)
	if now.State != "MASTER" || !now.Since.Equal(a.before.Since) || now.Priority != 120 || !a.hasAddr(a.vip) {
		t.Fatalf("after a good reload: %s priority %d since %v (was %v); want MASTER 120 with no transition", now.State, now.Priority, now.Since, a.before.Since)
	}
}
