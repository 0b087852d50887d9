package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/internal/labtest"
)

// TestReloadHostileConfig: a reload reads the file through the same loader
// and limits as `vigil check`. An included FIFO (which would block open(2)
// until a writer came) and a parameter defined in terms of itself (which
// expanded for a minute and a gigabyte before the limits spanned nesting)
// are each rejected at once, with one diagnostic, and the running
// instance stays MASTER.
func TestReloadHostileConfig(t *testing.T) {
	requireVRRPLab(t)
	t.Parallel()
	_, hosts, _ := labtest.LAN(t, "rldh", map[string][]string{"a": {"192.0.2.1/24"}}, "a")
	conf := confFor(confV2MulticastPass, 150, "192.0.2.1", "")
	a := startNode(t, "vigil", hosts["a"], conf)
	vip := netip.MustParseAddr("192.0.2.100")
	waitFor(t, 10*time.Second, "vigil to become master", func() bool { return a.hasAddr(vip) })
	before := instStatus(t, a)

	fifo := filepath.Join(filepath.Dir(a.conf), "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	lastReload := func() (ok bool, at time.Time, errs []string) {
		s, err := a.status()
		if err != nil || s.LastReload == nil {
			return false, time.Time{}, nil
		}
		return s.LastReload.OK, s.LastReload.At, s.LastReload.Errors
	}
	for _, c := range []struct{ name, extra, want string }{
		{"includer of a FIFO", "includer " + fifo + "\n", "FIFO"},
		{"self-referring parameter", "$A=$A \\\n$A\n$A\n", "nest deeper"},
	} {
		if err := os.WriteFile(a.conf, []byte(conf+c.extra), 0o644); err != nil {
			t.Fatal(err)
		}
		_, prev, _ := lastReload()
		if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, 10*time.Second, "the reload with a "+c.name+" to be reported", func() bool { _, at, _ := lastReload(); return at.After(prev) })
		ok, _, errs := lastReload()
		t.Logf("%s: reload rejected %v after SIGHUP: %q", c.name, took.Round(time.Millisecond), errs)
		if ok || len(errs) != 1 || !strings.Contains(errs[0], c.want) {
			t.Errorf("%s: ok=%v errors=%q; want it rejected with one error saying %q", c.name, ok, errs, c.want)
		}
		now := instStatus(t, a)
		if now.State != "MASTER" || !now.Since.Equal(before.Since) || !a.hasAddr(vip) {
			t.Fatalf("after a rejected reload: %s since %v (was %v), VIP held %v", now.State, now.Since, before.Since, a.hasAddr(vip))
		}
	}
}
