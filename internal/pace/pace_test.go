package pace

import (
	"testing"
	"time"
)

// TestSpacer: the first run is due at once; after a run that took t, the
// next is due Share × t after it began, not before.
func TestSpacer(t *testing.T) {
	var s Spacer
	t0 := time.Unix(1000, 0)
	if !s.Due(t0) {
		t.Fatal("the first run is not due")
	}
	s.Begin(t0)
	s.End(t0.Add(100 * time.Millisecond))
	if s.Took() != 100*time.Millisecond {
		t.Errorf("took %v, want 100ms", s.Took())
	}
	next := t0.Add(Share * 100 * time.Millisecond)
	if !s.Next().Equal(next) || s.Due(next.Add(-time.Millisecond)) || !s.Due(next) {
		t.Errorf("next %v, due a millisecond before it %v, at it %v; want %v, false, true", s.Next(), s.Due(next.Add(-time.Millisecond)), s.Due(next), next)
	}
}
