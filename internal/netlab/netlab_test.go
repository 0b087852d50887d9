package netlab

import (
	"strings"
	"testing"

	"vigil/internal/testenv"
)

func TestLabPingAcrossSegmentAndCut(t *testing.T) {
	testenv.RequireLab(t, "ping")
	l, err := New("nlt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
		out, _ := execOut("ip", "netns", "list")
		if strings.Contains(out, "nlt-") {
			t.Errorf("namespaces left after Close: %s", out)
		}
	})
	if err := l.AddSegment("lan"); err != nil {
		t.Fatal(err)
	}
	a, _ := l.AddHost("a")
	b, _ := l.AddHost("b")
	pa, err := l.Connect(a, "eth0", "lan", "192.0.2.1/24", "2001:db8::1/64")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Connect(b, "eth0", "lan", "192.0.2.2/24", "2001:db8::2/64"); err != nil {
		t.Fatal(err)
	}
	if out, err := a.Run("ping", "-c1", "-W2", "192.0.2.2"); err != nil {
		t.Fatalf("ping v4: %v\n%s", err, out)
	}
	if out, err := a.Run("ping", "-6", "-c1", "-W2", "2001:db8::2"); err != nil {
		t.Fatalf("ping v6: %v\n%s", err, out)
	}
	if err := l.Cut(pa); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run("ping", "-c1", "-W1", "192.0.2.2"); err == nil {
		t.Fatal("ping succeeded across a cut link")
	}
	if err := l.Heal(pa); err != nil {
		t.Fatal(err)
	}
	var inNS string
	err = a.Do(func() error {
		var e error
		inNS, e = execOut("ip", "-br", "addr", "show", "eth0")
		return e
	})
	if err != nil || !strings.Contains(inNS, "192.0.2.1") {
		t.Fatalf("Do did not run inside the namespace: %v %q", err, inNS)
	}
	// Listen's socket is in the host: bound to its address, reached from b.
	ln, err := a.Listen("tcp", "192.0.2.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if out, err := b.Run("bash", "-c", "exec 3<>/dev/tcp/192.0.2.1/8080"); err != nil {
		t.Errorf("connect from b to a's listener: %v\n%s", err, out)
	}
}
