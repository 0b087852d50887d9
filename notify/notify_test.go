package notify

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"vigil/internal/labtest"
	"vigil/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lab is a directory with a log file and scripts that append to it.
type lab struct {
	t   *testing.T
	dir string
	log string
}

func newLab(t *testing.T) *lab {
	dir := t.TempDir()
	return &lab{t: t, dir: dir, log: filepath.Join(dir, "log")}
}

// script writes an executable script that appends "start <argv>" to the
// log, runs body, then appends "end <first arg>".
func (l *lab) script(name, body string) string {
	l.t.Helper()
	return labtest.Script(l.t, l.dir, name, "echo \"start $*\" >> "+l.log+"\n"+body+"\necho \"end $1\" >> "+l.log)
}

func (l *lab) lines() []string {
	b, err := os.ReadFile(l.log)
	if err != nil && !os.IsNotExist(err) {
		l.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// waitLines waits until the log has n lines.
func (l *lab) waitLines(n int) []string {
	l.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := l.lines()
		if len(got) >= n && got[0] != "" {
			return got
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("log has %q, want %d lines", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runNotifier runs a Notifier with opt until the test ends, collecting its
// results; cancel ends it early.
func runNotifier(t *testing.T, opt Options) (n *Notifier, rs *labtest.Collector[Result], cancel func()) {
	t.Helper()
	rs = labtest.NewCollector[Result]()
	opt.OnResult = rs.Add
	n = New(opt)
	return n, rs, labtest.Run(t, n.Run)
}

func cmd(argv ...string) *Command { return &Command{Argv: argv} }

func TestEventFormats(t *testing.T) {
	tests := []struct {
		ev   Event
		line string
		args string
	}{
		{Event{Instance, "VI_1", StateMaster, 100}, `INSTANCE "VI_1" MASTER 100`, "INSTANCE VI_1 MASTER 100"},
		{Event{Group, "G1", StateBackup, 0}, `GROUP "G1" BACKUP 0`, "GROUP G1 BACKUP 0"},
		{Event{Instance, "VI_2", StateBackupPriority, 121}, `INSTANCE "VI_2" BACKUP_PRIORITY 121`, "INSTANCE VI_2 BACKUP_PRIORITY 121"},
		{Event{Instance, "VI_3", StateFault, 100}, `INSTANCE "VI_3" FAULT 100`, "INSTANCE VI_3 FAULT 100"},
	}
	for _, tt := range tests {
		if got := tt.ev.FifoLine(); got != tt.line {
			t.Errorf("FifoLine = %q, want %q", got, tt.line)
		}
		if got := strings.Join(tt.ev.Args(), " "); got != tt.args {
			t.Errorf("Args = %q, want %q", got, tt.args)
		}
	}
}

// The specific script runs as configured, the generic one gets
// INSTANCE|GROUP name state priority appended (observed with keepalived
// 2.2.7), and each runs only after the previous one for the instance has
// finished, in transition order.
func TestScriptsRunInOrderPerInstance(t *testing.T) {
	l := newLab(t)
	slow := l.script("slow.sh", "sleep 0.2")
	fast := l.script("fast.sh", "")
	s := Scripts{
		Master: cmd(slow, "to-master", "two words"),
		Backup: cmd(fast, "to-backup"),
		Fault:  cmd(slow, "to-fault"),
		Any:    cmd(fast, "generic"),
	}
	rs := labtest.NewCollector[Result]()
	n := New(Options{OnResult: rs.Add})
	n.Notify(Event{Instance, "VI_1", StateBackup, 100}, s)
	n.Notify(Event{Instance, "VI_1", StateMaster, 110}, s)
	n.Notify(Event{Instance, "VI_1", StateFault, 110}, s)
	labtest.Run(t, n.Run)
	want := []string{
		"start to-backup", "end to-backup",
		"start generic INSTANCE VI_1 BACKUP 100", "end generic",
		"start to-master two words", "end to-master",
		"start generic INSTANCE VI_1 MASTER 110", "end generic",
		"start to-fault", "end to-fault",
		"start generic INSTANCE VI_1 FAULT 110", "end generic",
	}
	got := l.waitLines(len(want))
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var kws []string
	for range want[:6] {
		r := rs.Next(t, 10*time.Second)
		kws = append(kws, r.Keyword)
		if !r.OK() {
			t.Errorf("%s: %+v", r.Keyword, r)
		}
	}
	if got := strings.Join(kws, " "); got != "notify_backup notify notify_master notify notify_fault notify" {
		t.Errorf("results in order %s", got)
	}
}

func TestGroupAndStopScripts(t *testing.T) {
	l := newLab(t)
	sh := l.script("s.sh", "")
	s := Scripts{Stop: cmd(sh, "stop"), Any: cmd(sh, "generic")}
	n := New(Options{})
	n.Notify(Event{Group, "G1", StateStop, 0}, s)
	labtest.Run(t, n.Run)
	got := l.waitLines(4)
	want := "start stop|end stop|start generic GROUP G1 STOP 0|end generic"
	if strings.Join(got, "|") != want {
		t.Errorf("log %q, want %q", got, want)
	}
}

func TestFifoOnlyStatesRunNoGenericScript(t *testing.T) {
	l := newLab(t)
	sh := l.script("s.sh", "")
	rs := labtest.NewCollector[Result]()
	n := New(Options{OnResult: rs.Add})
	s := Scripts{Any: cmd(sh, "generic"), MasterRxLowerPri: cmd(sh, "lower")}
	n.Notify(Event{Instance, "VI_1", StateMasterPriority, 90}, s)
	n.Notify(Event{Instance, "VI_1", StateMasterRxLowerPri, 90}, s)
	labtest.Run(t, n.Run)
	if r := rs.Next(t, 10*time.Second); r.Keyword != "notify_master_rx_lower_pri" || strings.Join(r.Argv, " ") != sh+" lower" {
		t.Errorf("result %+v, want only notify_master_rx_lower_pri", r)
	}
	rs.None(t, 200*time.Millisecond)
}

func TestFailureAndTimeoutAreReportedAndDoNotBlock(t *testing.T) {
	l := newLab(t)
	fail := l.script("fail.sh", "echo cannot reach the router >&2; exit 3")
	hang := l.script("hang.sh", "sleep 30")
	ok := l.script("ok.sh", "")
	n, rs, _ := runNotifier(t, Options{Timeout: 300 * time.Millisecond})
	t0 := time.Now()
	n.Notify(Event{Instance, "VI_1", StateMaster, 100}, Scripts{Master: cmd(hang, "m")})
	n.Notify(Event{Instance, "VI_1", StateBackup, 100}, Scripts{Backup: cmd(fail, "b")})
	n.Notify(Event{Instance, "VI_1", StateFault, 100}, Scripts{Fault: cmd(ok, "f")})
	n.Notify(Event{Instance, "VI_1", StateMaster, 100}, Scripts{Master: cmd(filepath.Join(l.dir, "missing.sh"))})
	if d := time.Since(t0); d > 100*time.Millisecond {
		t.Errorf("Notify took %v: it must only queue", d)
	}
	r := rs.Next(t, 10*time.Second)
	if !r.TimedOut || r.Code != -1 || !strings.Contains(r.Detail, "timed out after 300ms") {
		t.Errorf("hanging script: %+v", r)
	}
	r = rs.Next(t, 10*time.Second)
	if r.Code != 3 || r.Detail != fail+" exited 3: cannot reach the router" {
		t.Errorf("failing script: %+v", r)
	}
	if r = rs.Next(t, 10*time.Second); !r.OK() {
		t.Errorf("script after a failure: %+v", r)
	}
	if r = rs.Next(t, 10*time.Second); r.Code != -1 || !strings.Contains(r.Detail, "cannot run") {
		t.Errorf("missing script: %+v", r)
	}
}

func TestInstancesRunConcurrently(t *testing.T) {
	l := newLab(t)
	hang := l.script("hang.sh", "sleep 30")
	ok := l.script("ok.sh", "")
	n, rs, _ := runNotifier(t, Options{Timeout: 5 * time.Second, StopGrace: 100 * time.Millisecond})
	n.Notify(Event{Instance, "VI_1", StateMaster, 100}, Scripts{Master: cmd(hang)})
	n.Notify(Event{Instance, "VI_2", StateMaster, 100}, Scripts{Master: cmd(ok, "vi2")})
	r := rs.Next(t, 10*time.Second)
	if r.Event.Name != "VI_2" || !r.OK() || r.Duration > 4*time.Second {
		t.Errorf("first result %+v: VI_2 must not wait for VI_1's hung script", r)
	}
}

// At shutdown the queued scripts (notify_stop) still run; one that hangs is
// killed after StopGrace and the rest are reported as dropped.
func TestShutdownRunsQueuedThenKills(t *testing.T) {
	l := newLab(t)
	stop := l.script("stop.sh", "")
	hang := l.script("hang.sh", "sleep 30")
	n, rs, cancel := runNotifier(t, Options{Timeout: time.Minute, StopGrace: 500 * time.Millisecond})
	n.Notify(Event{Instance, "VI_1", StateStop, 100}, Scripts{Stop: cmd(stop, "vi1")})
	n.Notify(Event{Instance, "VI_2", StateStop, 100}, Scripts{Stop: cmd(hang, "vi2"), Any: cmd(stop, "never")})
	l.waitLines(3) // vi1 start/end and vi2 start
	t0 := time.Now()
	cancel()
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Run took %v to return", d)
	}
	byName := map[string][]Result{}
	for range 3 {
		r := rs.Next(t, 10*time.Second)
		byName[r.Event.Name] = append(byName[r.Event.Name], r)
	}
	if v := byName["VI_1"]; len(v) != 1 || !v[0].OK() {
		t.Errorf("VI_1: %+v", v)
	}
	if v := byName["VI_2"]; len(v) != 2 || v[0].Detail != hang+" killed at shutdown" || v[1].Detail != "dropped at shutdown" {
		t.Errorf("VI_2: %+v", v)
	}
	// After Run, nothing runs.
	n.Notify(Event{Instance, "VI_1", StateMaster, 100}, Scripts{Master: cmd(stop, "late")})
	time.Sleep(100 * time.Millisecond)
	for _, line := range l.lines() {
		if strings.Contains(line, "late") {
			t.Errorf("script ran after Run returned: %q", line)
		}
	}
}

func TestRunsAsUser(t *testing.T) {
	testenv.RequireRoot(t) // to change uid
	dir := labtest.PublicTempDir(t)
	p := labtest.Script(t, dir, "who.sh", `test "$(id -u):$(id -g)" = 65534:65534`)
	n, rs, _ := runNotifier(t, Options{})
	n.Notify(Event{Instance, "VI_1", StateMaster, 100}, Scripts{Master: &Command{Argv: []string{p}, User: &Credential{UID: 65534, GID: 65534}}})
	if r := rs.Next(t, 10*time.Second); !r.OK() {
		t.Errorf("as uid 65534: %+v", r)
	}
}

func TestQueueBoundDropsOldest(t *testing.T) {
	l := newLab(t)
	slow := l.script("slow.sh", "sleep 0.3")
	rs := labtest.NewCollector[Result]()
	n := New(Options{OnResult: rs.Add, MaxQueue: 2})
	// Before Run, so all five queue up: the first three are dropped.
	for i := range 5 {
		n.Notify(Event{Instance, "VI_1", StateMaster, 100 + i}, Scripts{Master: cmd(slow, "m")})
	}
	labtest.Run(t, n.Run)
	for i := range 3 {
		if r := rs.Next(t, 10*time.Second); r.Event.Priority != 100+i || !strings.Contains(r.Detail, "dropped") {
			t.Errorf("result %d: %+v, want priority %d dropped", i, r, 100+i)
		}
	}
	for i := 3; i < 5; i++ {
		if r := rs.Next(t, 10*time.Second); r.Event.Priority != 100+i || !r.OK() {
			t.Errorf("result %d: %+v, want priority %d run", i, r, 100+i)
		}
	}
}

func TestLookupCredential(t *testing.T) {
	c, err := LookupCredential("root", "")
	if err != nil || c != (Credential{UID: 0, GID: 0}) {
		t.Errorf("root: %+v %v", c, err)
	}
	if c, err := LookupCredential("0", "0"); err != nil || c != (Credential{UID: 0, GID: 0}) {
		t.Errorf("0 0: %+v %v", c, err)
	}
	if _, err := LookupCredential("no-such-user-vigil", ""); err == nil {
		t.Error("unknown user: no error")
	}
	if _, err := LookupCredential("root", "no-such-group-vigil"); err == nil {
		t.Error("unknown group: no error")
	}
}

func TestExecOrdersByKey(t *testing.T) {
	l := newLab(t)
	slow := l.script("slow.sh", "sleep 0.2")
	fast := l.script("fast.sh", "")
	n, rs, _ := runNotifier(t, Options{})
	n.Exec("RS 192.0.2.10:80", "notify_down", Command{Argv: []string{slow, "down"}})
	n.Exec("RS 192.0.2.10:80", "notify_up", Command{Argv: []string{fast, "up"}})
	n.Exec("RS 192.0.2.11:80", "notify_up", Command{Argv: []string{fast, "other"}})
	n.Exec("RS 192.0.2.10:80", "notify_up", Command{}) // empty: ignored
	got := map[string][]string{}
	for range 3 {
		r := rs.Next(t, 10*time.Second)
		if !r.OK() || r.Event != (Event{}) {
			t.Errorf("result %+v", r)
		}
		got[r.Key] = append(got[r.Key], r.Keyword)
	}
	if k := strings.Join(got["RS 192.0.2.10:80"], " "); k != "notify_down notify_up" {
		t.Errorf("RS 192.0.2.10:80 ran %q, want notify_down then notify_up", k)
	}
	lines := l.waitLines(6)
	if i, j := slices.Index(lines, "end down"), slices.Index(lines, "start up"); i < 0 || j < i {
		t.Errorf("notify_up started before notify_down ended: %q", lines)
	}
}

func TestRunScript(t *testing.T) {
	l := newLab(t)
	fail := l.script("fail.sh", "echo no >&2; exit 2")
	hang := l.script("hang.sh", "sleep 30")
	if r := RunScript(context.Background(), Command{Argv: []string{fail, "x"}}, time.Second, nil); r.Code != 2 || r.Detail != fail+" exited 2: no" {
		t.Errorf("failing: %+v", r)
	}
	if r := RunScript(context.Background(), Command{Argv: []string{hang}}, 100*time.Millisecond, nil); !r.TimedOut {
		t.Errorf("hanging: %+v", r)
	}
	if r := RunScript(context.Background(), Command{}, 0, nil); r.Code != -1 || r.Detail != "empty command" {
		t.Errorf("empty: %+v", r)
	}
}
