package vrrp_test

import (
	"strings"
	"testing"
	"time"

	"vigil/vrrp"
)

func TestCauseNames(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range vrrp.Causes() {
		n := c.String()
		if n == "" || strings.HasPrefix(n, "Cause(") || seen[n] {
			t.Errorf("cause %d has name %q (missing or repeated)", int(c), n)
		}
		seen[n] = true
		if vrrp.ParseCause(n) != c {
			t.Errorf("ParseCause(%q) = %v, want %v", n, vrrp.ParseCause(n), c)
		}
	}
	if vrrp.ParseCause("no such cause") != 0 || vrrp.Cause(0).String() != "Cause(0)" {
		t.Error("an unknown cause is not zero")
	}
}

// TestTransitionCauses: each way into a state carries its typed cause, the
// same as the instance's status reports, beside the words.
func TestTransitionCauses(t *testing.T) {
	c := v3(100)
	in := start(t, c, t0)
	last := func(want vrrp.Cause, words string) {
		t.Helper()
		rd := in.Ready()
		if len(rd.Transitions) == 0 {
			t.Fatalf("no transition, want one caused by %v", want)
		}
		tr := rd.Transitions[len(rd.Transitions)-1]
		if tr.Cause != want || !strings.Contains(tr.Reason, words) || in.Status().Cause != want {
			t.Fatalf("transition %v caused by %v, status %v; want %v with %q", tr, tr.Cause, in.Status().Cause, want, words)
		}
	}
	last(vrrp.CauseStartup, "startup")
	mustStep(t, in, at(10*time.Second), vrrp.InterfaceUp{})
	last(vrrp.CauseMasterDown, "master down timer expired")
	mustStep(t, in, at(11*time.Second), packet(t, c, "192.0.2.1", 150, 100))
	last(vrrp.CauseHigherPriority, "higher priority 150 from 192.0.2.1")
	mustStep(t, in, at(20*time.Second), vrrp.InterfaceUp{})
	last(vrrp.CauseMasterDown, "master down")
	mustStep(t, in, at(21*time.Second), packet(t, c, "192.0.2.99", 100, 100))
	last(vrrp.CauseHigherAddress, "equal priority 100 from higher address 192.0.2.99")
	mustStep(t, in, at(22*time.Second), vrrp.InterfaceDown{})
	last(vrrp.CauseInterfaceDown, "interface down")
	mustStep(t, in, at(23*time.Second), vrrp.InterfaceUp{})
	last(vrrp.CauseInterfaceUp, "interface up")
	mustStep(t, in, at(24*time.Second), vrrp.Tracking{Fault: true, Reason: "chk failed"})
	last(vrrp.CauseTracking, "chk failed")
	mustStep(t, in, at(25*time.Second), vrrp.Shutdown{})
	last(vrrp.CauseShutdown, "shutdown")
	o := start(t, owner(), t0)
	rd := o.Ready()
	if n := len(rd.Transitions); n == 0 || rd.Transitions[n-1].Cause != vrrp.CauseAddressOwner {
		t.Fatalf("owner transitions %v, want the last caused by address_owner", rd.Transitions)
	}
}
