package nsthread

import (
	"errors"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"

	"vigil/internal/testenv"
)

// newNS returns a new, unnamed network namespace, closed when the test
// ends; the calling thread stays in its own.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatal(err) // the thread stays locked and dies with the test's goroutine
	}
	runtime.UnlockOSThread()
	t.Cleanup(func() { ns.Close() })
	return ns
}

func TestRun(t *testing.T) {
	testenv.RequireRoot(t)
	ns := newNS(t)
	var inside bool
	boom := errors.New("boom")
	err := Run(ns, "test", func() error {
		cur, err := netns.Get()
		if err != nil {
			return err
		}
		defer cur.Close()
		inside = cur.Equal(ns)
		return boom
	})
	if err != boom {
		t.Errorf("Run returned %v, want fn's error itself", err)
	}
	if !inside {
		t.Error("fn did not run in the namespace")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if cur.Equal(ns) {
		t.Error("the caller's thread is in the namespace after Run")
	}
}

func TestRunBadNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	ran := false
	err := Run(netns.None(), "nothing", func() error { ran = true; return nil })
	if err == nil || ran {
		t.Errorf("Run into a closed handle: error %v, fn ran %v; want an error and fn not run", err, ran)
	}
}
