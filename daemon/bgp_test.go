package daemon

import (
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/bfd"
	"vigil/bfd/link"
	"vigil/bfd/wire"
	"vigil/control"
)

const holddownConf = `
bfd_instance R {
  neighbor_ip 198.51.100.254
}
bgp_instance EDGE {
  local_as 65001
  router_id 192.0.2.1
  neighbor 198.51.100.254 {
    remote_as 65000
    bfd_instance R
    bfd_holddown 1
    bfd_holddown_max 4
  }
  neighbor 198.51.100.253 {
    remote_as 65000
    bfd_instance R
    bfd_holddown 0
  }
}
`

const (
	damped   = "bgp EDGE neighbor 198.51.100.254 enabled "
	undamped = "bgp EDGE neighbor 198.51.100.253 enabled "
)

// TestBGPHolddown: a BGP neighbor follows its BFD session down at once
// and, after a flap, comes back only when its bfd_holddown has passed:
// 1 s after the first flap, 2 s after the second, capped at
// bfd_holddown_max (4 s), a flap during a hold counting too. The loop's
// deadline is the hold's end, and a reload in the middle of a hold keeps
// it. bfd_holddown 0 follows BFD at once every time.
func TestBGPHolddown(t *testing.T) {
	l := newLab(t, holddownConf)
	ops := l.h.took(0)
	if !slices.Contains(ops, damped+"false") || !slices.Contains(ops, undamped+"false") {
		t.Fatalf("neighbors not held down while BFD was never up:\n\t%s", strings.Join(ops, "\n\t"))
	}
	heldDown := func() string {
		for _, bs := range l.d.bgpStatus() {
			for _, s := range bs.Sessions {
				if s.Peer == "198.51.100.254" {
					return s.HeldDown
				}
			}
		}
		return "(no session)"
	}
	setBFD := func(up bool) []string {
		t.Helper()
		from := l.h.mark()
		l.h.bfd.mu.Lock()
		l.h.bfd.up["R"] = up // what the BFD process says at a reload
		l.h.bfd.mu.Unlock()
		to := wire.Down
		if up {
			to = wire.Up
		}
		l.d.bfdChanged(l.now, link.Event{Session: "R", Up: up, Transition: bfd.Transition{To: to}})
		l.turn()
		return l.h.took(from)
	}
	// wantBack checks that the damped neighbor comes back hold after
	// BFD did (not a step before), with the loop's deadline at that time,
	// while the undamped one came back at once.
	wantBack := func(what string, hold time.Duration) {
		t.Helper()
		ops := setBFD(true)
		if !slices.Contains(ops, undamped+"true") {
			t.Fatalf("%s: bfd_holddown 0 neighbor not back at once:\n\t%s", what, strings.Join(ops, "\n\t"))
		}
		if hold == 0 {
			if !slices.Contains(ops, damped+"true") {
				t.Fatalf("%s: neighbor not back at once:\n\t%s", what, strings.Join(ops, "\n\t"))
			}
			return
		}
		if slices.Contains(ops, damped+"true") {
			t.Fatalf("%s: neighbor back at once, want after %v", what, hold)
		}
		if held := heldDown(); !strings.HasPrefix(held, "bfd_holddown after ") || !strings.HasSuffix(held, "of BFD session R: "+hold.String()+" more") {
			t.Errorf("%s: status says the neighbor is held down for %q, want its bfd_holddown of %v", what, held, hold)
		}
		if due := l.d.next(); !due.Equal(l.now.Add(hold)) {
			t.Fatalf("%s: loop deadline in %v, want the hold's end in %v", what, due.Sub(l.now), hold)
		}
		from := l.h.mark()
		l.advance(hold - 100*time.Millisecond)
		if slices.Contains(l.h.took(from), damped+"true") {
			t.Fatalf("%s: neighbor back before its %v hold", what, hold)
		}
		l.advance(100 * time.Millisecond)
		if !slices.Contains(l.h.took(from), damped+"true") {
			t.Fatalf("%s: neighbor not back after its %v hold:\n\t%s", what, hold, strings.Join(l.h.took(from), "\n\t"))
		}
		if held := heldDown(); held != "" {
			t.Errorf("%s: status still says held down (%q) after the hold", what, held)
		}
	}
	down := func(what string) {
		t.Helper()
		ops := setBFD(false)
		if held := heldDown(); !strings.HasPrefix(held, "BFD session R: ") {
			t.Errorf("%s: status says the neighbor is held down for %q, want its BFD session", what, held)
		}
		if !slices.Contains(ops, damped+"false") || !slices.Contains(ops, undamped+"false") {
			t.Fatalf("%s: neighbors not taken down with BFD:\n\t%s", what, strings.Join(ops, "\n\t"))
		}
	}

	wantBack("first Up", 0)
	l.advance(500 * time.Millisecond)
	down("first flap")
	wantBack("after the first flap", time.Second)
	down("second flap")
	wantBack("after the second flap", 2*time.Second)

	down("third flap")
	setBFD(true)
	l.advance(time.Second)
	// A reload in the middle of the hold (its 4 s) keeps it.
	l.rewrite(holddownConf)
	if res := l.d.reload(l.now); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	from := l.h.mark()
	l.advance(2900 * time.Millisecond)
	if slices.Contains(l.h.took(from), damped+"true") {
		t.Fatal("the reload ended the hold")
	}
	l.advance(100 * time.Millisecond)
	if !slices.Contains(l.h.took(from), damped+"true") {
		t.Fatal("neighbor not back after its 4 s hold across a reload")
	}

	// A flap during a hold is a flap too; bfd_holddown_max caps it.
	down("fourth flap")
	setBFD(true)
	l.advance(time.Second)
	if ops := setBFD(false); !slices.Contains(ops, undamped+"false") || slices.Contains(ops, damped+"true") {
		t.Fatalf("fifth flap, during the hold:\n\t%s", strings.Join(ops, "\n\t"))
	}
	wantBack("after the fifth flap", 4*time.Second)

	// Once the BGP session has run for bfd_holddown_max, its flaps are
	// forgiven.
	l.advance(4 * time.Second)
	down("a flap after 4 s up")
	wantBack("forgiven", time.Second)

	// A local AdminDown (the BFD process restarting) takes BGP down but
	// is no flap: back at once, and the next flap holds 2 s, not 4.
	if ops := l.h.took(l.h.mark()); len(ops) != 0 {
		t.Fatal(ops)
	}
	l.d.bfdChanged(l.now, link.Event{Session: "R", Up: false, Transition: bfd.Transition{From: wire.Up, To: wire.AdminDown}})
	l.turn()
	if held := heldDown(); !strings.HasPrefix(held, "BFD session R: ") {
		t.Errorf("after a local AdminDown: held down for %q, want its BFD session", held)
	}
	wantBack("after a local AdminDown", 0)
	down("a flap after the AdminDown")
	wantBack("after the flap following the AdminDown", 2*time.Second)
}

// TestBGPReloadOffTheLoop: a reload that changes a bgp_instance's
// neighbors hands them to the speaker on the instance's worker, after the
// disables queued before it and before the gating of the new neighbors,
// and does not wait for it: vigil-bgp stuck does not stop the reload, nor
// the loop and its VRRP adverts.
func TestBGPReloadOffTheLoop(t *testing.T) {
	l, r := workerLab(t)
	release := make(chan struct{})
	l.h.mu.Lock()
	l.h.hold = func(op string) {
		if strings.HasPrefix(op, "bgp EDGE ") && !strings.HasPrefix(op, "bgp EDGE set") {
			<-release // vigil-bgp (or gobgp) stuck
		}
	}
	l.h.mu.Unlock()
	from := l.h.mark()
	l.h.bfd.mu.Lock()
	l.h.bfd.up["R"] = false // what the BFD process says at the reload
	l.h.bfd.mu.Unlock()
	// BFD goes down (disables queued), then a reload drops a neighbor.
	l.d.bfdChanged(l.now, link.Event{Session: "R", Up: false, Transition: bfd.Transition{From: wire.Up, To: wire.Down}})
	l.rewrite(strings.Replace(holddownConf, "neighbor 198.51.100.253 {\n    remote_as 65000\n    bfd_instance R\n    bfd_holddown 0\n  }", "", 1))
	done := make(chan control.ReloadResult, 1)
	go func() { done <- l.d.reload(l.now) }()
	select {
	case res := <-done:
		if !res.OK || !slices.Contains(res.Changes, "bgp_instance EDGE neighbors changed") {
			t.Errorf("reload: %+v", res)
		}
	case <-time.After(5 * time.Second):
		close(release) // for the worker to finish at the cleanup
		t.Fatal("the reload waited for the speaker")
	}
	close(release)
	r.gate.wait()
	var ops []string
	for _, op := range l.h.took(from) {
		if strings.HasPrefix(op, "bgp EDGE ") && !strings.HasPrefix(op, "bgp EDGE set") {
			ops = append(ops, op)
		}
	}
	// The disables first, then the neighbors; the one left is down with
	// BFD and stays so (gateAll after the reload changes nothing).
	want := []string{damped + "false", undamped + "false", "bgp EDGE neighbors [198.51.100.254]"}
	if !slices.Equal(ops, want) {
		t.Errorf("the worker ran\n\t%s\nwant\n\t%s", strings.Join(ops, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// workerLab is a lab of holddownConf whose bgp_instance has a worker, as
// in Run (the lab runs slow work inline), with BFD session R Up and the
// worker idle.
func workerLab(t *testing.T) (*lab, *bgpRun) {
	l := newLab(t, holddownConf)
	r := l.d.bgp.runs["EDGE"]
	r.gate = newSlowWork()
	t.Cleanup(r.gate.close)
	l.h.bfd.mu.Lock()
	l.h.bfd.up["R"] = true
	l.h.bfd.mu.Unlock()
	l.d.bfdChanged(l.now, link.Event{Session: "R", Up: true, Transition: bfd.Transition{To: wire.Up}}) // the first Up: at once
	r.gate.wait()
	return l, r
}

// TestBGPGateOffTheLoop: disabling and enabling a BFD-guarded neighbor is
// a round trip to vigil-bgp; the loop hands it to the run's own worker
// and goes on (it sends VRRP adverts), and the worker keeps the order.
func TestBGPGateOffTheLoop(t *testing.T) {
	l, r := workerLab(t)
	release := make(chan struct{})
	held := make(chan struct{}, 8)
	l.h.mu.Lock()
	l.h.hold = func(op string) {
		if strings.HasPrefix(op, "bgp EDGE neighbor ") {
			held <- struct{}{}
			<-release // vigil-bgp (or gobgp) stuck
		}
	}
	l.h.mu.Unlock()
	from := l.h.mark()
	returned := make(chan struct{})
	go func() {
		l.d.bfdChanged(l.now, link.Event{Session: "R", Up: false, Transition: bfd.Transition{From: wire.Up, To: wire.Down}})
		l.d.bfdChanged(l.now.Add(10*time.Millisecond), link.Event{Session: "R", Up: true, Transition: bfd.Transition{To: wire.Up}})
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop waited for the speaker's disable")
	}
	<-held
	close(release)
	r.gate.wait()
	var ops []string
	for _, op := range l.h.took(from) {
		if strings.HasPrefix(op, "bgp EDGE neighbor ") {
			ops = append(ops, op)
		}
	}
	want := []string{damped + "false", undamped + "false", undamped + "true"}
	if !slices.Equal(ops, want) {
		t.Errorf("the worker ran\n\t%s\nwant\n\t%s", strings.Join(ops, "\n\t"), strings.Join(want, "\n\t"))
	}
}
