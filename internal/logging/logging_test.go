package logging

import (
	"bytes"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseFacility(t *testing.T) {
	for in, want := range map[string]syslog.Priority{
		"0": syslog.LOG_LOCAL0, "6": syslog.LOG_LOCAL6, "local7": syslog.LOG_LOCAL7,
		"user": syslog.LOG_USER, "daemon": syslog.LOG_DAEMON, "LOCAL3": syslog.LOG_LOCAL3,
	} {
		if got, err := ParseFacility(in); err != nil || got != want {
			t.Errorf("ParseFacility(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"8", "local8", "-1", "", "kern", "local"} {
		if _, err := ParseFacility(bad); err == nil || !strings.Contains(err.Error(), "expected 0-7") {
			t.Errorf("ParseFacility(%q): err %v, want one saying what is expected", bad, err)
		}
	}
}

// Under systemd every console line starts with its sd-daemon priority.
func TestJournalPrefixes(t *testing.T) {
	var b bytes.Buffer
	log, _, err := New(Options{Dest: Console, Journal: true, Level: slog.LevelDebug}, &b)
	if err != nil {
		t.Fatal(err)
	}
	log.Error("config rejected", "file", "/etc/keepalived/keepalived.conf")
	log.With("instance", "VI_1").Warn("two\nlines")
	log.Info("(VI_1) Entering MASTER STATE")
	log.Debug("advert dropped")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{"<3>", "<4>", "<6>", "<7>"}
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), b.String())
	}
	for i, p := range want {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("line %d %q: want prefix %s", i, lines[i], p)
		}
	}
	if !strings.Contains(lines[1], "instance=VI_1") {
		t.Errorf("attrs lost:\n%s", b.String())
	}
	b.Reset()
	log, _, _ = New(Options{Dest: Console}, &b)
	log.Error("x")
	if strings.HasPrefix(b.String(), "<") {
		t.Errorf("prefix outside the journal: %q", b.String())
	}
}

// fakeSyslog is a datagram socket standing in for /dev/log.
type fakeSyslog struct {
	t    *testing.T
	path string
	ln   *net.UnixConn
}

// listenSyslog opens a fakeSyslog, closed when the test ends.
func listenSyslog(t *testing.T) *fakeSyslog {
	path := filepath.Join(t.TempDir(), "log")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeSyslog{t, path, ln}
}

// read returns the next datagram, failing the test if none comes within 2 s.
func (s *fakeSyslog) read() string {
	s.t.Helper()
	_ = s.ln.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := s.ln.Read(buf)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(buf[:n])
}

// The syslog form reaches a real datagram socket with the facility given by
// -S, the severity of the record, the ident and the message first.
func TestSyslogDatagrams(t *testing.T) {
	sl := listenSyslog(t)
	fac, _ := ParseFacility("6")
	log, closeLog, err := New(Options{Dest: Syslog, Facility: fac, Network: "unixgram", Addr: sl.path}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	log.Info("(VI_1) Entering MASTER STATE", "from", "BACKUP")
	log.Error("reload rejected", "errors", 2)
	log.Debug("not at info level")
	tag := "vigil[" + strconv.Itoa(os.Getpid()) + "]: "
	// local6 is facility 22: info is 22*8+6, err 22*8+3.
	if m := sl.read(); !strings.HasPrefix(m, "<182>") || !strings.Contains(m, tag+"(VI_1) Entering MASTER STATE from=BACKUP") {
		t.Errorf("first datagram %q", m)
	}
	if m := sl.read(); !strings.HasPrefix(m, "<179>") || !strings.Contains(m, tag+"reload rejected errors=2") {
		t.Errorf("second datagram %q", m)
	}
	_ = sl.ln.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _ := sl.ln.Read(make([]byte, 10)); n > 0 {
		t.Error("a debug record was sent at info level")
	}
}

func TestUnreachableSyslogFallsBack(t *testing.T) {
	var b bytes.Buffer
	log, _, err := New(Options{Dest: Syslog, Network: "unixgram", Addr: filepath.Join(t.TempDir(), "none")}, &b)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hello")
	if !strings.Contains(b.String(), "syslog unreachable") || !strings.Contains(b.String(), "hello") {
		t.Errorf("got %q", b.String())
	}
}

// JOURNAL_STREAM names the stream systemd connected; only that stream gets
// the prefixes (a child whose stderr was redirected does not).
func TestUnderJournal(t *testing.T) {
	dir := t.TempDir()
	a, err := os.Create(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := os.Create(filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(a.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", strconv.FormatUint(st.Dev, 10)+":"+strconv.FormatUint(st.Ino, 10))
	if !UnderJournal(a) {
		t.Error("the stream JOURNAL_STREAM names is not seen as the journal")
	}
	if UnderJournal(b) {
		t.Error("another file is seen as the journal")
	}
	t.Setenv("JOURNAL_STREAM", "")
	if UnderJournal(a) {
		t.Error("without JOURNAL_STREAM the file is seen as the journal")
	}
}

// keepalived -l without -G logs to the console and to syslog.
func TestBothDestinations(t *testing.T) {
	sl := listenSyslog(t)
	var b bytes.Buffer
	log, closeLog, err := New(Options{Dest: Both, Network: "unixgram", Addr: sl.path}, &b)
	if err != nil {
		t.Fatal(err)
	}
	defer closeLog()
	log.Info("(VI_1) Entering MASTER STATE")
	if m := sl.read(); !strings.Contains(m, "(VI_1) Entering MASTER STATE") {
		t.Errorf("syslog got %q", m)
	}
	if !strings.Contains(b.String(), `msg="(VI_1) Entering MASTER STATE"`) {
		t.Errorf("console got %q", b.String())
	}
}
