package track

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/testenv"
)

func TestScriptStateRiseFall(t *testing.T) {
	// Each step: a run's result, then the verdict after it ("?" unknown,
	// "+" OK, "-" failed) and whether Observe reported a change.
	tests := []struct {
		name       string
		rise, fall int
		initFail   bool
		start      string
		runs       string // + success, - failure
		want       string // verdict after each run
		changes    string // c changed, . not
	}{
		// keepalived 2.2.7: the first result decides, whatever rise/fall.
		{"first failure decides", 3, 3, false, "?", "-", "-", "c"},
		{"first success decides", 3, 3, false, "?", "+", "+", "c"},
		{"init_fail first success decides", 2, 2, true, "-", "+", "+", "c"},
		{"init_fail first failure is no change", 2, 2, true, "-", "-", "-", "."},
		{"fall counts consecutive failures", 1, 3, false, "?", "+--+---", "++++++-", "c.....c"},
		{"rise counts consecutive successes", 2, 1, false, "?", "-+-++", "----+", "c...c"},
		{"rise 1 fall 1 follows every run", 1, 1, false, "?", "+-+-", "+-+-", "cccc"},
		// Run against keepalived 2.2.7 with a script following this
		// pattern: priority +10 at run 1, back at run 5, +10 at run 7.
		{"keepalived pattern rise 2 fall 2", 2, 2, false, "?", "+-+--++-++", "++++--++++", "c...c.c..."},
		{"zero rise and fall mean 1", 0, 0, false, "?", "+-", "+-", "cc"},
	}
	verdict := func(s *ScriptState) byte {
		switch {
		case !s.Known():
			return '?'
		case s.OK():
			return '+'
		}
		return '-'
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewScriptState(tt.rise, tt.fall, tt.initFail)
			if got := string(verdict(&s)); got != tt.start {
				t.Fatalf("start %s, want %s", got, tt.start)
			}
			var got, changes []byte
			for _, r := range []byte(tt.runs) {
				c := s.Observe(r == '+')
				got = append(got, verdict(&s))
				if c {
					changes = append(changes, 'c')
				} else {
					changes = append(changes, '.')
				}
			}
			if string(got) != tt.want || string(changes) != tt.changes {
				t.Errorf("runs %s: verdicts %s changes %s, want %s %s", tt.runs, got, changes, tt.want, tt.changes)
			}
		})
	}
}

func TestScriptRunnerReportsChanges(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "ok")
	// Succeeds while the flag file exists.
	chk := labtest.Script(t, dir, "chk.sh", `test -e "`+flag+`"`)
	c := labtest.NewCollector[Event]()
	r, err := NewScriptRunner([]Script{{Name: "chk", Argv: []string{chk}, Interval: 50 * time.Millisecond}}, c.Add, nil)
	if err != nil {
		t.Fatal(err)
	}
	labtest.Run(t, r.Run)
	e := c.Next(t, 5*time.Second)
	if e.Kind != KindScript || e.Name != "chk" || e.OK || e.Value != 1 {
		t.Fatalf("first event %+v, want chk failed with exit 1", e)
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if e := c.Next(t, 5*time.Second); !e.OK || e.Value != 0 {
		t.Fatalf("after creating the flag: %+v, want OK", e)
	}
	// Unchanged verdicts are not reported again.
	c.None(t, 300*time.Millisecond)
}

func TestScriptRunnerInitFail(t *testing.T) {
	dir := t.TempDir()
	chk := labtest.Script(t, dir, "chk.sh", "exit 0")
	c := labtest.NewCollector[Event]()
	r, err := NewScriptRunner([]Script{{Name: "chk", Argv: []string{chk}, Interval: time.Second, Rise: 3, InitFail: true}}, c.Add, nil)
	if err != nil {
		t.Fatal(err)
	}
	labtest.Run(t, r.Run)
	if e := c.Next(t, 5*time.Second); e.OK || !strings.Contains(e.Detail, "init_fail") {
		t.Fatalf("first event %+v, want the init_fail verdict", e)
	}
	if e := c.Next(t, 5*time.Second); !e.OK {
		t.Fatalf("second event %+v, want OK after the first success", e)
	}
}

func TestScriptRunnerTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	// The script starts a background child in its group, then hangs.
	chk := labtest.Script(t, dir, "hang.sh", `sleep 30 & echo $! > "`+pids+`"; echo $$ >> "`+pids+`"; echo going to hang >&2; sleep 30`)
	c := labtest.NewCollector[Event]()
	r, err := NewScriptRunner([]Script{{Name: "hang", Argv: []string{chk}, Interval: 10 * time.Second, Timeout: 200 * time.Millisecond}}, c.Add, nil)
	if err != nil {
		t.Fatal(err)
	}
	labtest.Run(t, r.Run)
	e := c.Next(t, 5*time.Second)
	if e.OK || e.Value != -1 || !strings.Contains(e.Detail, "timed out after 200ms") || !strings.Contains(e.Detail, "going to hang") {
		t.Fatalf("event %+v, want a timeout with the stderr excerpt", e)
	}
	b, err := os.ReadFile(pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range strings.Fields(string(b)) {
		waitGone(t, pid)
	}
}

// waitGone fails unless /proc/pid disappears (killed and reaped) soon.
func waitGone(t *testing.T, pid string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %s still exists: %s", pid, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScriptRunnerMissingScriptIsReported(t *testing.T) {
	c := labtest.NewCollector[Event]()
	r, err := NewScriptRunner([]Script{{Name: "gone", Argv: []string{filepath.Join(t.TempDir(), "nope.sh")}, Interval: time.Second}}, c.Add, nil)
	if err != nil {
		t.Fatal(err)
	}
	labtest.Run(t, r.Run)
	e := c.Next(t, 5*time.Second)
	if e.OK || e.Value != -1 || !strings.Contains(e.Detail, "cannot run") {
		t.Fatalf("event %+v, want a failure saying it cannot run", e)
	}
}

func TestScriptRunnerRunsAsUser(t *testing.T) {
	testenv.RequireRoot(t) // to change uid
	dir := labtest.PublicTempDir(t)
	// Succeeds only when run as uid 65534 / gid 65534.
	chk := labtest.Script(t, dir, "who.sh", `test "$(id -u):$(id -g)" = 65534:65534`)
	c := labtest.NewCollector[Event]()
	r, err := NewScriptRunner([]Script{{Name: "who", Argv: []string{chk}, Interval: time.Second, User: &Credential{UID: 65534, GID: 65534}}}, c.Add, nil)
	if err != nil {
		t.Fatal(err)
	}
	labtest.Run(t, r.Run)
	if e := c.Next(t, 5*time.Second); !e.OK {
		t.Fatalf("event %+v, want OK as uid 65534", e)
	}
}

func TestNewScriptRunnerRejects(t *testing.T) {
	report := func(Event) {}
	for name, scripts := range map[string][]Script{
		"no name":  {{Argv: []string{"/bin/true"}}},
		"no argv":  {{Name: "a"}},
		"dup name": {{Name: "a", Argv: []string{"/bin/true"}}, {Name: "a", Argv: []string{"/bin/true"}}},
	} {
		if _, err := NewScriptRunner(scripts, report, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewScriptRunner(nil, nil, nil); err == nil {
		t.Error("nil report: no error")
	}
}

func TestScriptRunnerStopsPromptly(t *testing.T) {
	dir := t.TempDir()
	chk := labtest.Script(t, dir, "slow.sh", "sleep 30")
	r, err := NewScriptRunner([]Script{{Name: "slow", Argv: []string{chk}, Interval: time.Minute, Timeout: time.Minute}}, func(Event) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	labtest.StopsWithin(t, r.Run, 3*time.Second)
}
