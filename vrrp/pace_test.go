package vrrp_test

import (
	"testing"
	"time"

	"vigil/vrrp"
)

// paced returns a master at t0 (priority 200, 1 s adverts) whose beat the
// caller runs from its second advert on (at 1 s).
func paced(t *testing.T) (*vrrp.Instance, vrrp.Beat) {
	t.Helper()
	c := v3(200)
	c.InitialState = vrrp.StateMaster
	c.Priority = 255
	c.GARP = vrrp.DefaultGARP()
	c.GARP.MasterDelay = 0 // no delayed burst: the beat is the only timer
	in := start(t, c, t0)
	wantState(t, in, vrrp.StateMaster)
	in.Ready()
	b, ok := in.Beat()
	if !ok {
		t.Fatal("a master has no beat")
	}
	if len(b.Adverts) != 1 || b.Interval != time.Second || !b.First.Equal(at(time.Second)) {
		t.Fatalf("beat %+v", b)
	}
	in.Pace(b)
	if !in.Pacing() {
		t.Fatal("Pace did not take")
	}
	if _, ok := in.Beat(); ok {
		t.Fatal("a beat of a paced master")
	}
	return in, b
}

func TestPacedMasterSendsNothingItself(t *testing.T) {
	in, b := paced(t)
	for k := 1; k <= 10; k++ {
		in.Advance(at(time.Duration(k)*time.Second + time.Millisecond))
		if in.HasReady() {
			t.Fatalf("a paced master's turn %d: %+v", k, in.Ready())
		}
		if n := in.Next(); !n.IsZero() && n.Before(at(time.Hour)) {
			t.Fatalf("Next %v: the beat's timer is the caller's", n.Sub(t0))
		}
	}
	st := in.Status()
	if !st.Paced || !st.NextAdvertAt.Equal(at(11*time.Second)) || st.Counters.Sent != 1 {
		t.Fatalf("status: paced %v, next advert %v, sent %d", st.Paced, st.NextAdvertAt.Sub(t0), st.Counters.Sent)
	}
	// The caller's beat stopped (its lease ran out) at 10.5 s: an advert
	// is due at once, and no beat until it is sent.
	in.Unpace(at(10500 * time.Millisecond))
	if in.Pacing() || !in.Next().Equal(at(10500*time.Millisecond)) {
		t.Fatalf("after Unpace: pacing %v, next %v", in.Pacing(), in.Next().Sub(t0))
	}
	if _, ok := in.Beat(); ok {
		t.Fatal("a beat while an advert is due")
	}
	in.Advance(at(10500 * time.Millisecond))
	wantOneAdvert(t, in.Ready(), 255)
	if nb, ok := in.Beat(); !ok || &nb.Adverts[0] != &b.Adverts[0] {
		t.Fatal("the same adverts are not the beat again")
	}
}

// TestPaceEnds: every change that makes the beat wrong takes the timer
// back in the same step, with what is to be sent in Ready.
func TestPaceEnds(t *testing.T) {
	t.Run("higher priority master", func(t *testing.T) {
		in, _ := paced(t)
		mustStep(t, in, at(2500*time.Millisecond), packet(t, in.Config(), "192.0.2.20", 255, 100))
		// 255 against 255: the higher address wins.
		wantState(t, in, vrrp.StateBackup)
		if in.Pacing() {
			t.Fatal("a backup still paced")
		}
	})
	t.Run("lower priority master", func(t *testing.T) {
		in, _ := paced(t)
		mustStep(t, in, at(2500*time.Millisecond), packet(t, in.Config(), "192.0.2.9", 100, 100))
		if in.Pacing() {
			t.Fatal("still paced after an advert out of turn")
		}
		wantOneAdvert(t, in.Ready(), 255)
		if n := in.Next(); !n.Equal(at(3500 * time.Millisecond)) {
			t.Fatalf("next advert at %v, want one interval after the answer", n.Sub(t0))
		}
	})
	t.Run("priority change", func(t *testing.T) {
		c := v3(200)
		c.InitialState = vrrp.StateMaster
		in := start(t, c, t0)
		mustStep(t, in, t0, vrrp.Startup{})
		for k := 1; in.State() != vrrp.StateMaster && k < 10; k++ {
			in.Advance(at(time.Duration(k) * time.Second))
		}
		wantState(t, in, vrrp.StateMaster)
		in.Ready()
		in.Advance(in.Next())
		in.Ready()
		b, ok := in.Beat()
		if !ok {
			t.Fatal("no beat")
		}
		in.Pace(b)
		mustStep(t, in, b.First.Add(1500*time.Millisecond), vrrp.Tracking{Delta: -50, Reason: "track"})
		if in.Pacing() {
			t.Fatal("still paced at priority 150")
		}
		if n := in.Next(); !n.Equal(b.First.Add(2 * time.Second)) {
			t.Fatalf("next advert %v after the beat's first, want the beat's next tick (2 s)", n.Sub(b.First))
		}
		in.Advance(in.Next())
		wantOneAdvert(t, in.Ready(), 150)
	})
	t.Run("shutdown", func(t *testing.T) {
		in, _ := paced(t)
		mustStep(t, in, at(2500*time.Millisecond), vrrp.Shutdown{})
		if in.Pacing() {
			t.Fatal("still paced after shutdown")
		}
		wantOneAdvert(t, in.Ready(), 0)
	})
	t.Run("interface down", func(t *testing.T) {
		in, _ := paced(t)
		mustStep(t, in, at(2500*time.Millisecond), vrrp.InterfaceDown{})
		wantState(t, in, vrrp.StateFault)
		if in.Pacing() {
			t.Fatal("still paced in FAULT")
		}
	})
	t.Run("reload", func(t *testing.T) {
		in, _ := paced(t)
		c := in.Config()
		c.AdvertInterval = 2 * time.Second
		if err := in.Reload(c, at(2500*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if in.Pacing() {
			t.Fatal("still paced after a reload")
		}
		wantOneAdvert(t, in.Ready(), 255)
		if b, ok := in.Beat(); !ok || b.Interval != 2*time.Second {
			t.Fatalf("the new beat %+v %v", b, ok)
		}
	})
}

// TestPaceOfAStaleBeat: a beat taken before a change is refused.
func TestPaceOfAStaleBeat(t *testing.T) {
	c := v3(200)
	c.InitialState = vrrp.StateMaster
	c.Priority = 255
	in := start(t, c, t0)
	in.Ready()
	b, _ := in.Beat()
	mustStep(t, in, at(500*time.Millisecond), packet(t, c, "192.0.2.9", 100, 100)) // answered: the timer moved
	in.Pace(b)
	if in.Pacing() {
		t.Fatal("paced with a beat whose first advert is no longer the next")
	}
}
