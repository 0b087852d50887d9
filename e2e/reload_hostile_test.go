package e2e

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
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
	a := startReloadMaster(t, "rldh")
	fifo := filepath.Join(filepath.Dir(a.node.Conf), "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, extra, want string }{
		{"includer of a FIFO", "includer " + fifo + "\n", "FIFO"},
		{"self-referring parameter", "$A=$A \\\n$A\n$A\n", "nest deeper"},
	} {
		ok, errs, took := a.reload(t, a.text+c.extra, "the reload with a "+c.name+" to be reported", 10*time.Second)
		t.Logf("%s: reload rejected %v after SIGHUP: %q", c.name, took.Round(time.Millisecond), errs)
		if ok || len(errs) != 1 || !strings.Contains(errs[0], c.want) {
			t.Errorf("%s: ok=%v errors=%q; want it rejected with one error saying %q", c.name, ok, errs, c.want)
		}
		a.requireKept(t)
	}
}
