package testenv

import (
	"net"
	"testing"
)

func TestMain(m *testing.M) { MainOnPrivateLoopback(m) }

// TestPrivateLoopback: this package's tests run in a namespace of their
// own whose only interface is lo, up, and a server listens on it.
func TestPrivateLoopback(t *testing.T) {
	RequireRoot(t)
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
