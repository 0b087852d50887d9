package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDemo runs the README's main command as a user would and checks that
// it measured a failover and left no namespace behind.
func TestDemo(t *testing.T) {
	requireVRRPLab(t)
	bin, err := vigilBinary()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("vigil demo: %v\n%s", err, out)
	}
	for _, want := range []string{"became MASTER", "outage seen by the client", "preempts back", "removed every namespace"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	ns, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(ns), "vdemo-") {
		t.Errorf("demo left namespaces: %s", ns)
	}
}
