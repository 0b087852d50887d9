package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/track"
	"vigil/vrrp"
)

// filterList is the drop list the fake filter holds.
func filterList(l *lab) []netip.Addr {
	f := l.d.noAccept.(*fakeFilter)
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.drop)
}

// holdNoAccept gives the lab a worker and holds it in every change of the
// drop list until release is closed; held receives the held changes.
func holdNoAccept(l *lab) (held chan string, release chan struct{}) {
	l.d.work = newSlowWork()
	held, release = make(chan string, 16), make(chan struct{})
	l.h.mu.Lock()
	l.h.hold = func(op string) {
		if strings.HasPrefix(op, "noaccept ") {
			select {
			case held <- op:
			default: // not waited for
			}
			<-release
		}
	}
	l.h.mu.Unlock()
	l.t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
		l.d.work.close()
		l.d.work = nil
	})
	return held, release
}

// TestNoAcceptReloadOnWorker: the drop list a reload calls for is set on
// the worker, in turn with the changes queued before it, never by the
// loop: with the worker held in that change, the reload and its turn
// return, and once released the filter holds the list the instances call
// for. Set by the reload itself, on the loop, the nft run held the loop
// (here: for ever).
func TestNoAcceptReloadOnWorker(t *testing.T) {
	t.Run("queued after the turns before", func(t *testing.T) {
		// A takeover's change is held on the worker; a reload that takes
		// no_accept away waits for it, and the list ends empty.
		l := newLab(t, orderConf)
		held, release := holdNoAccept(l)
		becomeMaster(l)
		expectHeld(t, held, "the takeover", "noaccept [192.0.2.100]")
		l.rewrite(instanceConf(""))
		done := make(chan bool)
		go func() {
			ok := l.d.reload(l.now).OK
			l.turn()
			done <- ok
		}()
		time.Sleep(50 * time.Millisecond) // let the reload wait for the worker
		close(release)
		if !<-done {
			t.Fatal("reload failed")
		}
		l.d.work.wait()
		if got := filterList(l); len(got) != 0 {
			t.Errorf("drop list %v after a reload took no_accept away, want none", got)
		}
	})
	t.Run("not on the loop", func(t *testing.T) {
		l := newLab(t, orderConf)
		becomeMaster(l) // the worker is not there yet: the takeover's list is set
		held, release := holdNoAccept(l)
		l.rewrite(instanceConf(""))
		done := make(chan bool, 1)
		go func() {
			ok := l.d.reload(l.now).OK
			l.turn()
			done <- ok
		}()
		select {
		case ok := <-done:
			if !ok {
				t.Fatal("reload failed")
			}
		case <-time.After(10 * time.Second):
			close(release)
			<-done
			t.Fatal("the reload did not return while the drop list's change was held: the loop ran nft")
		}
		expectHeld(t, held, "the reload", "noaccept []")
		if got := filterList(l); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.100")}) {
			t.Errorf("drop list %v while the change is held, want the takeover's [192.0.2.100]", got)
		}
		close(release)
		l.d.work.wait()
		if got := filterList(l); len(got) != 0 {
			t.Errorf("drop list %v after a reload took no_accept away, want none", got)
		}
	})
}

// TestNoAcceptReloadRetiresVIP: a reload that takes a VIP away from a
// no_accept master keeps it in the drop list until it is off the
// interface (RFC 5798 6.4.3: no packet to a VIP this node holds is
// accepted). The reload set the list itself, before the turn after it
// removed the VIP.
func TestNoAcceptReloadRetiresVIP(t *testing.T) {
	two := strings.Replace(orderConf, "192.0.2.100/24\n", "192.0.2.100/24\n    192.0.2.101/24\n", 1)
	l := newLab(t, two)
	becomeMaster(l)
	if got := filterList(l); len(got) != 2 {
		t.Fatalf("drop list %v, want both VIPs", got)
	}
	from := l.h.mark()
	l.rewrite(orderConf)
	if res := l.d.reload(l.now); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	l.turn()
	ops := l.h.took(from)
	before(t, ops, "del 192.0.2.101/24", "noaccept [192.0.2.100]")
	if got := filterList(l); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.100")}) {
		t.Errorf("drop list %v, want [192.0.2.100]", got)
	}
}

// expectHeld waits up to 5 s for the change of the drop list that who
// queued on the worker (holdNoAccept) and fails unless it is want.
func expectHeld(t *testing.T, held <-chan string, who, want string) {
	t.Helper()
	select {
	case op := <-held:
		if op != want {
			t.Fatalf("held %q, want %s's %s", op, who, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s queued no change of the drop list", who)
	}
}

// TestNoAcceptReloadIntoFault: a reload that puts a no_accept master into
// FAULT (a new track_interface, whose tracker reports it down before the
// loop's next turn) takes its VIP off the interface before the drop list
// lets it go, though the reload queued its own change of the list in the
// same turn: no packet to the VIP is accepted while this node still holds
// it.
func TestNoAcceptReloadIntoFault(t *testing.T) {
	l := newLab(t, orderConf)
	becomeMaster(l)
	if got := filterList(l); len(got) != 1 {
		t.Fatalf("drop list %v, want the VIP", got)
	}
	from := l.h.mark()
	l.rewrite(instanceConf("  no_accept\n  track_interface {\n    eth1\n  }\n"))
	if res := l.d.reload(l.now); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	l.d.tracked(l.now, track.Event{Kind: track.KindInterface, Name: "eth1", OK: false, Detail: "down"})
	l.turn()
	if st := l.d.insts[0].e.State(); st != vrrp.StateFault {
		t.Fatalf("state %v after a reload tracking a down interface, want FAULT", st)
	}
	ops := l.h.took(from)
	before(t, ops, "del 192.0.2.100/24", "noaccept []")
	if got := filterList(l); len(got) != 0 {
		t.Errorf("drop list %v in FAULT, want empty", got)
	}
}
