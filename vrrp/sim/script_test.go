package sim_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vigil/vrrp/sim"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/*.txt")

// TestScenarios runs every testdata/*.txt script: blocks of a command, a
// "----" line and the trace it must print, separated by blank lines; lines
// starting with # are comments. Each file runs on a fresh network seeded
// with 1. With -rewrite the files are regenerated from what happens.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

func runScript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	s := sim.NewScript(1)
	var out []string
	for k := 0; k < len(lines); k++ {
		line := lines[k]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out = append(out, line)
			continue
		}
		cmdLine := k + 1
		if k+1 >= len(lines) || lines[k+1] != "----" {
			t.Fatalf("%s:%d: command %q not followed by ----", file, cmdLine, line)
		}
		k += 2
		var want []string
		for ; k < len(lines) && lines[k] != ""; k++ {
			want = append(want, lines[k])
		}
		k-- // the blank line, if any, is copied by the loop
		got := s.Run(line)
		out = append(out, line, "----")
		if got != "" {
			out = append(out, got)
		}
		if w := strings.Join(want, "\n"); !*rewrite && got != w {
			t.Errorf("%s:%d: %s\n--- want\n%s\n--- got\n%s", file, cmdLine, line, w, got)
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
