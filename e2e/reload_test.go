package e2e

import (
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/internal/labtest"
)

// TestReload: SIGHUP with a broken file keeps the running configuration and
// its VIPs (keepalived only does so with reload_check_config); SIGHUP with a
// changed priority and an extra VIP keeps the instance MASTER without a
// transition and adds only the new VIP.
func TestReload(t *testing.T) {
	requireVRRPLab(t)
	t.Parallel()
	_, hosts, _ := labtest.LAN(t, "rld", map[string][]string{"a": {"192.0.2.1/24"}}, "a")
	conf := confFor(confV2MulticastPass, 150, "192.0.2.1", "")
	a := startNode(t, "vigil", hosts["a"], conf)
	vip, extra := netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("192.0.2.101")
	waitFor(t, 10*time.Second, "vigil to become master", func() bool { return a.hasAddr(vip) })
	before := instStatus(t, a)

	hup := func() {
		t.Helper()
		if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	lastReload := func() (ok bool, at time.Time, errs []string) {
		s, err := a.status()
		if err != nil || s.LastReload == nil {
			return false, time.Time{}, nil
		}
		return s.LastReload.OK, s.LastReload.At, s.LastReload.Errors
	}

	broken := strings.Replace(conf, "priority 150", "priority 150;", 1)
	if err := os.WriteFile(a.conf, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	hup()
	waitFor(t, 5*time.Second, "the rejected reload to be reported", func() bool { _, at, _ := lastReload(); return !at.IsZero() })
	ok, _, errs := lastReload()
	if ok || len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), "priority") {
		t.Fatalf("broken reload: ok=%v errors=%q; want it rejected, naming the priority line", ok, errs)
	}
	now := instStatus(t, a)
	if now.State != "MASTER" || !now.Since.Equal(before.Since) || !a.hasAddr(vip) {
		t.Fatalf("after a rejected reload: %s since %v (was %v), VIP held %v", now.State, now.Since, before.Since, a.hasAddr(vip))
	}

	changed := strings.Replace(conf, "priority 150", "priority 120", 1)
	changed = strings.Replace(changed, "192.0.2.100/24\n", "192.0.2.100/24\n    192.0.2.101/24\n", 1)
	if err := os.WriteFile(a.conf, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	_, firstAt, _ := lastReload()
	hup()
	waitFor(t, 5*time.Second, "the second reload", func() bool { ok, at, _ := lastReload(); return ok && at.After(firstAt) })
	waitFor(t, 2*time.Second, "the added VIP", func() bool { return a.hasAddr(extra) })
	now = instStatus(t, a)
	if now.State != "MASTER" || !now.Since.Equal(before.Since) || now.Priority != 120 || !a.hasAddr(vip) {
		t.Fatalf("after a good reload: %s priority %d since %v (was %v); want MASTER 120 with no transition", now.State, now.Priority, now.Since, before.Since)
	}
}
