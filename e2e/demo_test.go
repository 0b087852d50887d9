package e2e

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDemo runs the README's main command as a user would and checks that
// it measured a failover, balanced traffic over the real servers, took a
// killed one out of the pool, kept serving across a director failover,
// and left no namespace behind.
func TestDemo(t *testing.T) {
	requireVRRPLab(t)
	bin := mustVigilBinary(t)
	out, err := exec.Command(bin, "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("vigil demo: %v\n%s", err, out)
	}
	for _, want := range []string{"became MASTER", "n2 never became MASTER during the election", "outage seen by the client", "preempts back", "removed every namespace",
		"DOWN connect 198.51.100.12:80", "removed from the pool", "failed requests during the director failover"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The load-balancing act: rr hands new connections to r1, r2, r3 in
	// turn; once r2 is killed and removed, and after the director
	// failover, only r1 and r3 answer and nothing fails.
	if m := regexp.MustCompile(`spread over the real servers in 2 s: r1 (\d+), r2 (\d+), r3 (\d+), 0 failed`).FindStringSubmatch(string(out)); m == nil {
		t.Errorf("demo output lacks a spread over r1, r2, r3 without failures:\n%s", out)
	} else {
		lo, hi := 1<<30, 0
		for _, c := range m[1:] {
			n, _ := strconv.Atoi(c)
			lo, hi = min(lo, n), max(hi, n)
		}
		if lo == 0 || hi-lo > 1 {
			t.Errorf("rr spread %v: want every real server within one request of the others", m[1:])
		}
	}
	for _, re := range []string{`the next 2 s: r1 [1-9]\d*, r2 0, r3 [1-9]\d*, 0 failed`, `after that: r1 [1-9]\d*, r2 0, r3 [1-9]\d*, 0 failed`} {
		if !regexp.MustCompile(re).Match(out) {
			t.Errorf("demo output does not match %q:\n%s", re, out)
		}
	}
	ns, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(ns), "vdemo-") {
		t.Errorf("demo left namespaces: %s", ns)
	}
}
