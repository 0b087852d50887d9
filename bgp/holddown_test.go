package bgp

import (
	"math"
	"testing"
	"time"
)

func TestHoldDoubles(t *testing.T) {
	p := HoldParams{Base: time.Second, Max: 10 * time.Second}
	for flaps, want := range []time.Duration{0, 1, 2, 4, 8, 10, 10} {
		if got := p.Hold(flaps); got != want*time.Second {
			t.Errorf("Hold(%d) = %v, want %v", flaps, got, want*time.Second)
		}
	}
	if got := (HoldParams{Max: time.Minute}).Hold(3); got != 0 {
		t.Errorf("Base 0: Hold(3) = %v, want 0 (no damping)", got)
	}
	if got := (HoldParams{Base: 5 * time.Second, Max: time.Second}).Hold(2); got != 5*time.Second {
		t.Errorf("Max below Base: Hold(2) = %v, want Base", got)
	}
	if got := (HoldParams{Base: time.Second, Max: time.Hour}).Hold(1000); got != time.Hour {
		t.Errorf("1,000 flaps: Hold = %v, want Max (no overflow)", got)
	}
}

// TestHolddownFlaps steps a BFD session through a start, flaps, a quiet
// period and a flap during a hold, checking when BGP may run.
func TestHolddownFlaps(t *testing.T) {
	p := HoldParams{Base: time.Second, Max: 8 * time.Second}
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(math.Round(s*1000)) * time.Millisecond) }
	var h Holddown
	if h.Allowed(t0) {
		t.Fatal("a session never Up allows BGP")
	}
	h.Down(t0, p) // the start: Down before any Up is no flap
	if rel := h.Up(at(0.5), p); !rel.Equal(at(0.5)) || !h.Allowed(at(0.5)) {
		t.Fatalf("first Up: release %v, want at once", rel.Sub(t0))
	}
	steps := []struct {
		what string
		s    float64
		up   bool
		// release is when BGP may run after an Up, in seconds from t0.
		release float64
		flaps   int
	}{
		{"first flap", 2, false, 0, 1},
		{"back", 2.1, true, 3.1, 1},
		{"second flap, after BGP ran 0.5 s", 3.6, false, 0, 2},
		{"back", 3.7, true, 5.7, 2},
		{"down during the hold", 4, false, 0, 3},
		{"back", 4.2, true, 8.2, 3},
		{"fourth", 9, false, 0, 4},
		{"back: capped at Max", 9.1, true, 17.1, 4},
		{"ran 8 s: forgiven", 25.1, false, 0, 1},
		{"back: Base again", 26, true, 27, 1},
	}
	for _, s := range steps {
		if s.up {
			rel := h.Up(at(s.s), p)
			if want := at(s.release); !rel.Equal(want) {
				t.Fatalf("%s at %.1f s: release at %v, want %v", s.what, s.s, rel.Sub(t0), want.Sub(t0))
			}
			if h.Allowed(at(s.release).Add(-time.Millisecond)) || !h.Allowed(at(s.release)) {
				t.Fatalf("%s: Allowed does not turn true at the release", s.what)
			}
			if again := h.Up(at(s.release+1), p); !again.Equal(rel) {
				t.Fatalf("%s: a second Up moved the release to %v", s.what, again.Sub(t0))
			}
		} else {
			h.Down(at(s.s), p)
			h.Down(at(s.s+0.01), p) // repeated Down is one flap
			if h.Allowed(at(s.s)) {
				t.Fatalf("%s: BGP allowed while BFD is down", s.what)
			}
		}
		if h.Flaps() != s.flaps {
			t.Fatalf("%s: %d flaps, want %d", s.what, h.Flaps(), s.flaps)
		}
	}
}

// TestHolddownStop: a session stopped here (local AdminDown) is no flap.
func TestHolddownStop(t *testing.T) {
	p := HoldParams{Base: time.Second, Max: time.Minute}
	t0 := time.Unix(1000, 0)
	var h Holddown
	h.Up(t0, p)
	h.Stop()
	if h.Allowed(t0) {
		t.Fatal("BGP allowed while BFD is stopped")
	}
	if rel := h.Up(t0.Add(time.Second), p); !rel.Equal(t0.Add(time.Second)) || h.Flaps() != 0 {
		t.Fatalf("after a stop: release in %v, %d flaps; want at once, none", rel.Sub(t0.Add(time.Second)), h.Flaps())
	}
	// A flap, then a stop during its hold: the hold goes on to its end,
	// and a session that ran before a stop runs again at once.
	h.Down(t0.Add(2*time.Second), p)
	end := h.Up(t0.Add(3*time.Second), p) // 1 s hold
	h.Stop()
	if rel := h.Up(t0.Add(3500*time.Millisecond), p); !rel.Equal(end) || h.Flaps() != 1 {
		t.Fatalf("stopped during a hold: release %v, %d flaps; want %v, 1", rel.Sub(t0), h.Flaps(), end.Sub(t0))
	}
	h.Stop()
	if rel := h.Up(t0.Add(10*time.Second), p); !rel.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("stopped while running: release %v, want at once", rel.Sub(t0))
	}
	h.Down(t0.Add(11*time.Second), p)
	if got := h.Up(t0.Add(11*time.Second), p).Sub(t0.Add(11 * time.Second)); got != 2*time.Second {
		t.Fatalf("a flap after the stops: hold %v, want 2 s (its second flap)", got)
	}
}

func TestHolddownOff(t *testing.T) {
	p := HoldParams{Max: time.Minute}
	t0 := time.Unix(1000, 0)
	var h Holddown
	for i := range 5 {
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		h.Up(now, p)
		if !h.Allowed(now) {
			t.Fatalf("bfd_holddown 0: flap %d held BGP", i)
		}
		h.Down(now.Add(50*time.Millisecond), p)
	}
}
