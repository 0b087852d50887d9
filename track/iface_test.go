package track

import (
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"vigil/internal/labtest"
)

func TestInterfaceWatcherInLab(t *testing.T) {
	lab, hosts, ports := labtest.LAN(t, "trkif", map[string][]string{"a": {"192.0.2.1/24"}}, "a")
	h, port := hosts["a"], ports["a"]
	// The veth's carrier comes up a moment after the link: wait for it, so
	// that the watcher's first report is the steady state.
	labtest.WaitFor(t, 5*time.Second, "carrier on eth0", func() bool {
		out, _ := h.Run("ip", "-o", "link", "show", "eth0")
		return strings.Contains(out, "LOWER_UP")
	})
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })

	c := labtest.NewCollector[Event]()
	w, err := NewInterfaceWatcher([]string{"eth0", "dum0", "ghost"}, &ns, c.Add, nil)
	if err != nil {
		t.Fatal(err)
	}
	labtest.Run(t, w.Run)

	first := map[string]Event{}
	for range 3 {
		e := c.Next(t, 5*time.Second)
		first[e.Name] = e
	}
	// The veth's peer is up in the switch, so eth0 has carrier.
	if e := first["eth0"]; e.Kind != KindInterface || !e.OK {
		t.Errorf("eth0 first: %+v", e)
	}
	for _, n := range []string{"dum0", "ghost"} {
		if e := first[n]; e.OK || !strings.Contains(e.Detail, "does not exist") {
			t.Errorf("%s first: %+v", n, e)
		}
	}

	expect := func(what, name string, ok bool, detail string) {
		t.Helper()
		e := c.Next(t, 5*time.Second)
		if e.Name != name || e.OK != ok || !strings.Contains(e.Detail, detail) {
			t.Fatalf("after %s: %+v, want %s ok=%v detail containing %q", what, e, name, ok, detail)
		}
	}
	run := func(args ...string) { t.Helper(); labtest.MustRun(t, h, "ip", args...) }
	if err := lab.Cut(port); err != nil {
		t.Fatal(err)
	}
	expect("cut", "eth0", false, "no carrier")
	if err := lab.Heal(port); err != nil {
		t.Fatal(err)
	}
	expect("heal", "eth0", true, "is up")
	run("link", "set", "eth0", "down")
	expect("admin down", "eth0", false, "administratively down")
	run("link", "set", "eth0", "up")
	expect("admin up", "eth0", true, "is up")

	// A veth pair inside the host (the kernel here has no dummy driver):
	// both ends up gives carrier.
	run("link", "add", "dum0", "type", "veth", "peer", "name", "peer0")
	run("link", "set", "peer0", "up")
	run("link", "set", "dum0", "up")
	expect("dum0 created and up", "dum0", true, "is up")
	run("link", "del", "dum0")
	// The kernel takes a link down before it deletes it, so the down
	// message arrives first.
	expect("dum0 deleted", "dum0", false, "")

	// Renaming an interface away from a tracked name takes the name down.
	run("link", "add", "dum1", "type", "veth", "peer", "name", "peer1")
	run("link", "set", "peer1", "up")
	run("link", "set", "dum1", "name", "dum0")
	run("link", "set", "dum0", "up")
	expect("dum1 renamed dum0 and up", "dum0", true, "is up")
	run("link", "set", "dum0", "down")
	expect("dum0 down", "dum0", false, "administratively down")
	c.None(t, 300*time.Millisecond)
}

func TestNewInterfaceWatcherRejects(t *testing.T) {
	for _, n := range []string{"", "a-name-longer-than-15"} {
		if _, err := NewInterfaceWatcher([]string{n}, nil, func(Event) {}, nil); err == nil {
			t.Errorf("%q: no error", n)
		}
	}
	if _, err := NewInterfaceWatcher(nil, nil, nil, nil); err == nil {
		t.Error("nil report: no error")
	}
}
