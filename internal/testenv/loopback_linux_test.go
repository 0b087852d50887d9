package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { MainOnPrivateLoopback(m) }

// TestPrivateLoopback: this package's tests run in a namespace of their
// own whose only interface is lo, up, and a server listens on it.
func TestPrivateLoopback(t *testing.T) {
	RequireRoot(t)
	if os.Getenv(privateEnv) == "" {
		t.Fatal("the tests were not re-executed in a namespace of their own")
	}
	if self, host := netns("self"), netns("1"); self == "" || self == host {
		t.Fatalf("the tests run in network namespace %q, the host's is %q", self, host)
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Name != "lo" || ifs[0].Flags&net.FlagUp == 0 {
		t.Fatalf("interfaces %v, want lo alone and up", ifs)
	}
	for _, a := range []string{"127.0.0.1:0", "[::1]:0"} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		l.Close()
	}
}

// TestPrivateLoopbackStaysInALab: a test binary that ip netns exec put in
// a lab namespace stays there, where its lab is.
func TestPrivateLoopbackStaysInALab(t *testing.T) {
	RequireLab(t)
	if os.Getenv(labProbeEnv) != "" {
		return
	}
	const ns = "vigil-testenv-lab"
	_ = exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The probe prints the environment's marker: set only by a re-execution.
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestPrivateLoopbackProbe$", "-test.v")
	cmd.Env = []string{labProbeEnv + "=1", "PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the probe in %s: %v\n%s", ns, err, out)
	}
	if !strings.Contains(string(out), "marker=\n") {
		t.Fatalf("a test binary in lab namespace %s moved to a namespace of its own:\n%s", ns, out)
	}
}

const labProbeEnv = "VIGIL_TESTENV_LAB_PROBE"

// TestPrivateLoopbackProbe is TestPrivateLoopbackStaysInALab's probe.
func TestPrivateLoopbackProbe(t *testing.T) {
	if os.Getenv(labProbeEnv) == "" {
		t.Skip("run by TestPrivateLoopbackStaysInALab")
	}
	fmt.Printf("marker=%s\n", os.Getenv(privateEnv))
}
