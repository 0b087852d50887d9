package notify

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vigil/internal/labtest"
	"vigil/internal/testenv"
)

// Lines reach a reader in Notify order, in keepalived's format.
func TestFifoLinesInOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fifo")
	f, err := OpenFifo(FifoConfig{Path: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeNamedPipe || fi.Mode().Perm() != 0o600 {
		t.Errorf("created %v, want a FIFO with mode 0600", fi.Mode())
	}
	stop := labtest.Run(t, f.Run)
	n := New(Options{Fifos: []*Fifo{f}})
	events := []Event{
		{Instance, "VI_2", StateBackupPriority, 121},
		{Group, "G1", StateBackup, 0},
		{Instance, "VI_1", StateBackup, 100},
		{Instance, "VI_1", StateMaster, 100},
		{Instance, "VI_1", StateFault, 100},
	}
	for _, e := range events {
		n.Notify(e, Scripts{})
	}
	r, err := os.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	var got []string
	for len(got) < len(events) && sc.Scan() {
		got = append(got, sc.Text())
	}
	want := `INSTANCE "VI_2" BACKUP_PRIORITY 121|GROUP "G1" BACKUP 0|INSTANCE "VI_1" BACKUP 100|INSTANCE "VI_1" MASTER 100|INSTANCE "VI_1" FAULT 100`
	if strings.Join(got, "|") != want {
		t.Errorf("read %q\nwant %q", strings.Join(got, "|"), want)
	}
	stop()
	// keepalived leaves the FIFO in place when it exits; so does vigil.
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("FIFO gone after Run: %v", err)
	}
	if f.Dropped() != 0 {
		t.Errorf("dropped %d", f.Dropped())
	}
	f.Send("late")
	if f.Dropped() != 1 {
		t.Errorf("a Send after Run is not counted as dropped")
	}
}

// notify_fifo_script gets the FIFO path as its last argument, reads the
// lines, and gets SIGTERM when Run stops.
func TestFifoScript(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "fifo")
	out := filepath.Join(dir, "out")
	script := labtest.Script(t, dir, "reader.sh", `echo "argv $*" >> `+out+`
trap 'echo TERM >> `+out+`; exit 0' TERM
while read -r line; do echo "line $line" >> `+out+`; done < "$2" &
wait`)
	f, err := OpenFifo(FifoConfig{Path: path, Script: &Command{Argv: []string{script, "first"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := labtest.Run(t, f.Run)
	f.Send(`INSTANCE "VI_1" MASTER 100`)
	f.Send(`INSTANCE "VI_1" BACKUP 90`)
	want := []string{"argv first " + path, `line INSTANCE "VI_1" MASTER 100`, `line INSTANCE "VI_1" BACKUP 90`}
	waitFile(t, out, len(want))
	stop()
	got := strings.Split(strings.TrimSpace(readFile(t, out)), "\n")
	if len(got) < 4 || strings.Join(got[:3], "|") != strings.Join(want, "|") || got[len(got)-1] != "TERM" {
		t.Errorf("reader saw %q, want %q then TERM", got, want)
	}
}

// A script that ignores SIGTERM is killed after the grace period.
func TestFifoScriptIgnoringTerm(t *testing.T) {
	dir := t.TempDir()
	script := labtest.Script(t, dir, "stubborn.sh", "trap '' TERM\nsleep 30")
	f, err := OpenFifo(FifoConfig{Path: filepath.Join(dir, "fifo"), Script: &Command{Argv: []string{script}}, ScriptStopGrace: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	labtest.StopsWithin(t, f.Run, 5*time.Second)
}

func TestOpenFifoExisting(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFifo(FifoConfig{Path: plain}, nil); err == nil || !strings.Contains(err.Error(), "is not a FIFO") {
		t.Errorf("regular file: err %v", err)
	}
	if _, err := OpenFifo(FifoConfig{Path: filepath.Join(dir, "no", "such", "dir")}, nil); err == nil {
		t.Error("missing directory: no error")
	}
	// An existing FIFO is used and left in place.
	f1, err := OpenFifo(FifoConfig{Path: filepath.Join(dir, "fifo")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := OpenFifo(FifoConfig{Path: filepath.Join(dir, "fifo")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f2.Close()
	f1.Close()
	if _, err := os.Lstat(filepath.Join(dir, "fifo")); err != nil {
		t.Errorf("FIFO gone after Close: %v", err)
	}
}

func TestOpenFifoOwner(t *testing.T) {
	testenv.RequireRoot(t) // to chown
	p := filepath.Join(t.TempDir(), "fifo")
	f, err := OpenFifo(FifoConfig{Path: p, Owner: &Credential{UID: 65534, GID: 65534}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 65534 || st.Gid != 65534 || st.Mode&0o777 != 0o600 {
		t.Errorf("owner %d:%d mode %o, want 65534:65534 0600", st.Uid, st.Gid, st.Mode&0o777)
	}
}

// Without a reader the pipe fills up; Send drops lines instead of blocking.
func TestFifoFullDropsWithoutBlocking(t *testing.T) {
	f, err := OpenFifo(FifoConfig{Path: filepath.Join(t.TempDir(), "fifo")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := strings.Repeat("x", 1000)
	t0 := time.Now()
	for range 200 { // 200 KB, more than a pipe holds
		f.Send(line)
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("Send blocked for %v", d)
	}
	if f.Dropped() == 0 {
		t.Error("nothing dropped with 200 KB in an unread pipe")
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitFile(t *testing.T, p string, lines int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(p)
		if n := len(strings.Split(strings.TrimSpace(string(b)), "\n")); n >= lines && len(b) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %q, want %d lines", p, b, lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
