package track

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
)

// The cases keepalived 2.2.7 was run against, with these processes:
// "sleep 1001" twice, "sleep 1002 1", "/bin/sleep 1001" and
// "./longnameprocess123 1000" (comm "longnameprocess").
func TestProcessMatches(t *testing.T) {
	procs := []ProcInfo{
		{Comm: "sleep", Argv: []string{"sleep", "1001"}},
		{Comm: "sleep", Argv: []string{"sleep", "1001"}},
		{Comm: "sleep", Argv: []string{"sleep", "1002", "1"}},
		{Comm: "sleep", Argv: []string{"/bin/sleep", "1001"}},
		{Comm: "longnameprocess", Argv: []string{"./longnameprocess123", "1000"}},
	}
	tests := []struct {
		name  string
		p     Process
		count int
	}{
		{"name matches comm", Process{Argv: []string{"sleep"}}, 4},
		{"name longer than comm never matches", Process{Argv: []string{"longnameprocess123"}}, 0},
		{"name equal to truncated comm", Process{Argv: []string{"longnameprocess"}}, 1},
		{"no prefix match on comm", Process{Argv: []string{"longnamepr"}}, 0},
		{"exact parameters", Process{Argv: []string{"sleep", "1001"}}, 2},
		{"exact parameters, extra ones do not match", Process{Argv: []string{"sleep", "1002"}}, 0},
		{"first word is compared as written", Process{Argv: []string{"/bin/sleep", "1001"}}, 1},
		{"partial allows more parameters", Process{Argv: []string{"sleep", "1002"}, ParamMatch: "partial"}, 1},
		{"partial compares whole parameters", Process{Argv: []string{"sleep", "100"}, ParamMatch: "partial"}, 0},
		{"partial without parameters matches any", Process{Argv: []string{"sleep"}, ParamMatch: "partial"}, 3},
		{"initial: last parameter is a prefix", Process{Argv: []string{"sleep", "100"}, ParamMatch: "initial"}, 3},
		{"initial allows more parameters", Process{Argv: []string{"sleep", "1002"}, ParamMatch: "initial"}, 1},
		{"full_command compares the first word", Process{Argv: []string{"sleep"}, FullCommand: true}, 3},
		{"full_command with the path as run", Process{Argv: []string{"./longnameprocess123"}, FullCommand: true}, 1},
		{"full_command without the path", Process{Argv: []string{"longnameprocess123"}, FullCommand: true}, 0},
		{"full_command, a quoted name with a space", Process{Argv: []string{"sleep 1001"}, FullCommand: true}, 0},
		{"empty", Process{}, 0},
	}
	for _, tt := range tests {
		n := 0
		for _, pi := range procs {
			if tt.p.Matches(pi) {
				n++
			}
		}
		if n != tt.count {
			t.Errorf("%s: %d match, want %d", tt.name, n, tt.count)
		}
	}
}

func TestQuorumOK(t *testing.T) {
	tests := []struct {
		quorum, max int
		ok          string // verdict for counts 0..4
	}{
		{0, -1, "-++++"}, // quorum 0 means the default, 1
		{1, -1, "-++++"},
		{3, -1, "---++"},
		{1, 2, "-++--"},
		{2, 2, "--+--"},
		{1, 0, "+----"}, // quorum_max 0: OK only when none runs (seen in keepalived)
		{3, 1, "-+---"}, // a maximum below the quorum lowers it
	}
	for _, tt := range tests {
		p := Process{Quorum: tt.quorum, QuorumMax: tt.max}
		var got []byte
		for c := range 5 {
			if p.QuorumOK(c) {
				got = append(got, '+')
			} else {
				got = append(got, '-')
			}
		}
		if string(got) != tt.ok {
			t.Errorf("quorum %d max %d: %s, want %s", tt.quorum, tt.max, got, tt.ok)
		}
	}
}

func TestQuorumStateDelays(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	const fork, term = 2 * time.Second, 3 * time.Second
	var q QuorumState
	steps := []struct {
		t      float64
		ok     bool
		change bool
		want   bool
	}{
		{0, false, true, false}, // first observation: at once
		{1, true, false, false}, // gained: fork_delay starts
		{2, true, false, false},
		{3, true, true, true},   // held 2s
		{4, false, false, true}, // lost: terminate_delay starts
		{5, true, false, true},  // back before the delay: nothing
		{6, false, false, true}, // lost again: delay restarts
		{8, false, false, true},
		{9, false, true, false}, // held 3s
	}
	for _, s := range steps {
		c := q.Observe(at(s.t), s.ok, fork, term)
		if c != s.change || q.OK() != s.want {
			t.Errorf("t=%v ok=%v: changed %v verdict %v, want %v %v", s.t, s.ok, c, q.OK(), s.change, s.want)
		}
	}
	var z QuorumState
	z.Observe(t0, true, 0, 0)
	if !z.Observe(t0, false, 0, 0) || z.OK() {
		t.Error("without delays a change is immediate")
	}
}

// fakeProc builds a proc tree: pid → stat state and flags, comm, cmdline.
func fakeProc(t *testing.T, procs map[string][3]string) string {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "self"), 0o755) // not a pid: ignored
	for pid, p := range procs {
		d := filepath.Join(root, pid)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := pid + " (" + p[0] + ") " + p[1] + " 1 1 1 0 -1 " + p[2] + " 0 0 0 0\n"
		os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644)
		os.WriteFile(filepath.Join(d, "cmdline"), []byte(strings.ReplaceAll(p[0], " ", "\x00")+"\x00"), 0o644)
	}
	return root
}

func TestProcessCountSkipsZombiesAndKernelThreads(t *testing.T) {
	root := fakeProc(t, map[string][3]string{
		"10": {"nginx", "S", "4194304"},
		"11": {"nginx", "R", "4194304"},
		"12": {"nginx", "Z", "4194304"}, // zombie
		"13": {"nginx", "I", "2097152"}, // kernel thread (PF_KTHREAD)
		"14": {"odd) (name", "S", "0"},  // parentheses in comm
		"15": {"haproxy", "S", "4194304"},
	})
	w, err := NewProcessWatcher([]Process{
		{Name: "nginx", Argv: []string{"nginx"}, QuorumMax: -1},
		{Name: "odd", Argv: []string{"odd) (name"}, QuorumMax: -1},
		{Name: "none", Argv: []string{"sshd"}, QuorumMax: -1},
	}, func(Event) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Proc = root
	counts, err := w.Count()
	if err != nil {
		t.Fatal(err)
	}
	if got := [3]int(counts); got != [3]int{2, 1, 0} {
		t.Errorf("counts %v, want [2 1 0]", got)
	}
}

// On the real /proc: processes started here are counted, and their
// disappearance is reported.
func TestProcessWatcherRealProcesses(t *testing.T) {
	const marker = "31.4159" // a sleep duration nothing else uses
	var cmds []*exec.Cmd
	for range 2 {
		c := exec.Command("sleep", marker)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	c := labtest.NewCollector[Event]()
	w, err := NewProcessWatcher([]Process{{Name: "two", Argv: []string{"sleep", marker}, Quorum: 2, QuorumMax: -1}}, c.Add, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Scan = 50 * time.Millisecond
	labtest.Run(t, w.Run)
	if e := c.Next(t, 5*time.Second); e.Kind != KindProcess || !e.OK || e.Value != 2 {
		t.Fatalf("first: %+v, want OK with 2 processes", e)
	}
	cmds[0].Process.Kill()
	cmds[0].Wait()
	if e := c.Next(t, 5*time.Second); e.OK || e.Value != 1 {
		t.Fatalf("after a kill: %+v, want quorum lost with 1 process", e)
	}
}

func TestNewProcessWatcherRejects(t *testing.T) {
	for name, ps := range map[string][]Process{
		"no name":     {{Argv: []string{"x"}}},
		"no process":  {{Name: "a"}},
		"dup":         {{Name: "a", Argv: []string{"x"}}, {Name: "a", Argv: []string{"y"}}},
		"param_match": {{Name: "a", Argv: []string{"x"}, ParamMatch: "exact"}},
	} {
		if _, err := NewProcessWatcher(ps, func(Event) {}, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
