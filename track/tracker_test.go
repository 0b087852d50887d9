package track

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
)

// The daemon's use: run a Tracker, keep Results from its events, and
// compute each instance's tracking with Aggregate.
func TestTrackerFeedsAggregate(t *testing.T) {
	dir := t.TempDir()
	chk := labtest.Script(t, dir, "chk.sh", "exit 1")
	file := filepath.Join(dir, "prio")
	os.WriteFile(file, []byte("5\n"), 0o644)
	c := labtest.NewCollector[Event]()
	tr, err := New(Config{
		Scripts: []Script{{Name: "chk", Argv: []string{chk}, Interval: time.Second}},
		Files:   []File{{Name: "prio", Path: file}},
	}, c.Add)
	if err != nil {
		t.Fatal(err)
	}
	labtest.Run(t, tr.Run)
	results := Results{}
	for range 2 {
		results.Apply(c.Next(t, 5*time.Second))
	}
	refs := []Ref{{Kind: KindScript, Name: "chk", Weight: -30}, {Kind: KindFile, Name: "prio", Weight: 2}}
	d, f, r := Aggregate(refs, results)
	if d != -20 || f || r != "script chk failed (weight -30); file prio is 5 (weight 2: +10)" {
		t.Errorf("Aggregate = %d %v %q", d, f, r)
	}
}

func TestNewTrackerJoinsErrors(t *testing.T) {
	_, err := New(Config{
		Scripts:   []Script{{Name: "a"}, {Name: "b", Argv: []string{"/bin/true"}}, {Name: "b", Argv: []string{"/bin/true"}}},
		Files:     []File{{Name: "f"}, {Path: "/tmp/x"}},
		Processes: []Process{{Name: "p", Argv: []string{"sshd"}, ParamMatch: "exact"}},
	}, func(Event) {})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"vrrp_script a has no script", "vrrp_script b defined twice", "track_file f has no file", "track_file without a name",
		`vrrp_track_process p: param_match "exact": expected partial or initial`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
