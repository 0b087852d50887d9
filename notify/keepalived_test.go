package notify

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vigil/internal/labtest"
	"vigil/internal/testenv"
)

// TestMatchesKeepalived runs keepalived 2.2.7 in a lab namespace with an
// instance and a sync group whose notify scripts log their argv, and a
// notify FIFO. Every FIFO line must parse into an Event whose FifoLine is
// the same text; replaying those events through a Notifier with the same
// scripts must give the same argv lines.
func TestMatchesKeepalived(t *testing.T) {
	testenv.Short(t)
	testenv.RequireLab(t, "keepalived")
	h := labtest.OneHost(t, "ntfka")
	dir := t.TempDir()
	logf := filepath.Join(dir, "argv.log")
	// One line per run: the arguments joined by '|'.
	sh := labtest.Script(t, dir, "log.sh", "IFS='|'\necho \"$*\" >> "+logf)
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global_defs {
  script_user root
  notify_fifo %[2]s
}
vrrp_sync_group G1 {
  group {
    VI_2
  }
  notify_master "%[1]s grp-master"
  notify_backup "%[1]s grp-backup"
  notify "%[1]s grp-generic 'two words'"
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
  }
  notify_master "%[1]s vi1-master"
  notify_backup "%[1]s vi1-backup"
  notify "%[1]s vi1-generic"
}
vrrp_instance VI_2 {
  interface eth0
  virtual_router_id 52
  priority 120
  advert_int 1
  virtual_ipaddress {
    192.0.2.101/24
  }
}
`, sh, fifo)
	lines, stopLines := labtest.FIFOLines(t, fifo)
	ka := labtest.StartKeepalived(t, h, conf, "-P", "-l", "-D")
	// BACKUP at start, MASTER after the down timer (3 × 1 s + skew).
	var fifoLines []string
	deadline := time.After(10 * time.Second)
collect:
	for {
		select {
		case l := <-lines:
			fifoLines = append(fifoLines, l)
			if len(fifoLines) == 6 {
				break collect
			}
		case <-deadline:
			break collect
		}
	}
	time.Sleep(300 * time.Millisecond) // the scripts of the last transition
	ka.Stop()
	stopLines()
	kaArgv := readLines(t, logf)
	// Drop what notify_stop and the STOP generic added while stopping.
	kaArgv = slices.DeleteFunc(kaArgv, func(s string) bool { return strings.Contains(s, "|STOP|") })
	if len(fifoLines) != 6 {
		t.Fatalf("FIFO lines %q, want 6 (3 BACKUP, 3 MASTER)\nkeepalived said:\n%s", fifoLines, ka.Out.String())
	}

	s := map[string]Scripts{
		"INSTANCE VI_1": {Master: cmd2(sh, "vi1-master"), Backup: cmd2(sh, "vi1-backup"), Any: cmd2(sh, "vi1-generic")},
		"GROUP G1":      {Master: cmd2(sh, "grp-master"), Backup: cmd2(sh, "grp-backup"), Any: cmd2(sh, "grp-generic", "two words")},
	}
	if err := os.Remove(logf); err != nil {
		t.Fatal(err)
	}
	n := New(Options{})
	for _, l := range fifoLines {
		ev, err := parseFifoLine(l)
		if err != nil {
			t.Fatal(err)
		}
		if ev.FifoLine() != l {
			t.Errorf("FifoLine %q, keepalived wrote %q", ev.FifoLine(), l)
		}
		n.Notify(ev, s[ev.Scope.String()+" "+ev.Name])
	}
	stop := labtest.Run(t, n.Run)
	time.Sleep(500 * time.Millisecond)
	stop()
	ours := readLines(t, logf)
	t.Logf("FIFO:\n%s\nkeepalived argv:\n%s", strings.Join(fifoLines, "\n"), strings.Join(kaArgv, "\n"))
	slices.Sort(kaArgv)
	slices.Sort(ours)
	if strings.Join(kaArgv, "\n") != strings.Join(ours, "\n") {
		t.Errorf("argv lines differ\nkeepalived:\n%s\nvigil:\n%s", strings.Join(kaArgv, "\n"), strings.Join(ours, "\n"))
	}
	if !slices.Contains(ours, "grp-generic|two words|GROUP|G1|MASTER|0") || !slices.Contains(ours, "vi1-generic|INSTANCE|VI_1|MASTER|150") {
		t.Errorf("generic notify lines missing from %q", ours)
	}
}

func cmd2(argv ...string) *Command { return &Command{Argv: argv} }

func readLines(t *testing.T, p string) []string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// parseFifoLine reads `INSTANCE "VI_1" MASTER 100`.
func parseFifoLine(l string) (Event, error) {
	f := strings.Fields(l)
	if len(f) != 4 || len(f[1]) < 2 || f[1][0] != '"' || f[1][len(f[1])-1] != '"' {
		return Event{}, fmt.Errorf("bad FIFO line %q", l)
	}
	ev := Event{Name: f[1][1 : len(f[1])-1], State: f[2]}
	switch f[0] {
	case "INSTANCE":
	case "GROUP":
		ev.Scope = Group
	default:
		return Event{}, fmt.Errorf("bad FIFO line %q", l)
	}
	p, err := strconv.Atoi(f[3])
	if err != nil {
		return Event{}, fmt.Errorf("bad FIFO line %q", l)
	}
	ev.Priority = p
	return ev, nil
}
