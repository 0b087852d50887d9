package track

import (
	"strings"
	"testing"
)

func TestAggregate(t *testing.T) {
	ok := func(k Kind, n string) Results { return Results{{k, n}: {OK: true}} }
	bad := func(k Kind, n string) Results { return Results{{k, n}: {OK: false}} }
	file := func(n string, v int) Results { return Results{{KindFile, n}: {OK: true, Value: v}} }
	ref := func(k Kind, n string, w int, rev bool) []Ref {
		return []Ref{{Kind: k, Name: n, Weight: w, Reverse: rev}}
	}

	tests := []struct {
		name    string
		refs    []Ref
		results Results
		delta   int
		fault   bool
		reason  string
	}{
		{"no trackers", nil, nil, 0, false, ""},
		{"no result yet is ignored", ref(KindScript, "chk", 0, false), Results{}, 0, false, ""},

		// Scripts: the sign of the weight says when it applies.
		{"script weight 0 ok", ref(KindScript, "chk", 0, false), ok(KindScript, "chk"), 0, false, ""},
		{"script weight 0 failed is fault", ref(KindScript, "chk", 0, false), bad(KindScript, "chk"), 0, true, "script chk failed"},
		{"script weight 0 reverse ok is fault", ref(KindScript, "chk", 0, true), ok(KindScript, "chk"), 0, true, "script chk succeeded (weight 0 reverse)"},
		{"script weight 0 reverse failed", ref(KindScript, "chk", 0, true), bad(KindScript, "chk"), 0, false, ""},
		{"script positive ok adds", ref(KindScript, "chk", 10, false), ok(KindScript, "chk"), 10, false, "script chk succeeded (weight +10)"},
		{"script positive failed adds nothing", ref(KindScript, "chk", 10, false), bad(KindScript, "chk"), 0, false, ""},
		{"script negative failed subtracts", ref(KindScript, "chk_nginx", -20, false), bad(KindScript, "chk_nginx"), -20, false, "script chk_nginx failed (weight -20)"},
		{"script negative ok adds nothing", ref(KindScript, "chk", -20, false), ok(KindScript, "chk"), 0, false, ""},
		// Observed in keepalived 2.2.7: weight 10 reverse OK gives 90,
		// weight -10 reverse failed 110, the other two 100.
		{"script positive reverse ok subtracts", ref(KindScript, "chk", 10, true), ok(KindScript, "chk"), -10, false, "script chk succeeded (weight 10 reverse: -10)"},
		{"script positive reverse failed", ref(KindScript, "chk", 10, true), bad(KindScript, "chk"), 0, false, ""},
		{"script negative reverse failed adds", ref(KindScript, "chk", -10, true), bad(KindScript, "chk"), 10, false, "script chk failed (weight -10 reverse: +10)"},
		{"script negative reverse ok", ref(KindScript, "chk", -10, true), ok(KindScript, "chk"), 0, false, ""},

		// Interfaces follow the same rules.
		{"interface down is fault", ref(KindInterface, "eth1", 0, false), bad(KindInterface, "eth1"), 0, true, "interface eth1 is down"},
		{"interface up", ref(KindInterface, "eth1", 0, false), ok(KindInterface, "eth1"), 0, false, ""},
		{"interface reverse up is fault", ref(KindInterface, "eth1", 0, true), ok(KindInterface, "eth1"), 0, true, "interface eth1 is up (weight 0 reverse)"},
		{"interface weighted down", ref(KindInterface, "eth1", -30, false), bad(KindInterface, "eth1"), -30, false, "interface eth1 is down (weight -30)"},
		{"interface weighted up", ref(KindInterface, "eth1", 5, false), ok(KindInterface, "eth1"), 5, false, "interface eth1 is up (weight +5)"},

		// Processes too.
		{"process quorum lost is fault", ref(KindProcess, "nginx", 0, false), bad(KindProcess, "nginx"), 0, true, "process nginx lost its quorum"},
		{"process quorum met adds", ref(KindProcess, "nginx", 2, false), ok(KindProcess, "nginx"), 2, false, "process nginx has its quorum (weight +2)"},

		// Files: value × weight; weight 0 is a fault on non-zero.
		{"file weight 0 zero", ref(KindFile, "f", 0, false), file("f", 0), 0, false, ""},
		{"file weight 0 non-zero is fault", ref(KindFile, "f", 0, false), file("f", 1), 0, true, "file f is 1, not 0"},
		{"file weight 0 negative is fault", ref(KindFile, "f", 0, false), file("f", -4), 0, true, "file f is -4, not 0"},
		{"file weight 0 reverse zero is fault", ref(KindFile, "f", 0, true), file("f", 0), 0, true, "file f is 0 (weight 0 reverse)"},
		{"file weight 0 reverse non-zero", ref(KindFile, "f", 0, true), file("f", 2), 0, false, ""},
		{"file multiplies", ref(KindFile, "f", 3, false), file("f", 7), 21, false, "file f is 7 (weight 3: +21)"},
		{"file negative value", ref(KindFile, "f", 3, false), file("f", -5), -15, false, "file f is -5 (weight 3: -15)"},
		{"file reverse negates", ref(KindFile, "f", 5, true), file("f", 2), -10, false, "file f is 2 (weight 5 reverse: -10)"},
		{"file zero value", ref(KindFile, "f", 5, false), file("f", 0), 0, false, ""},
		{"file capped at 253", ref(KindFile, "f", 3, false), file("f", 100), 253, false, "file f is 100 (weight 3: +253, capped)"},
		{"file exactly -253", ref(KindFile, "f", 1, false), file("f", -253), -253, false, "file f is -253 (weight 1: -253)"},
		{"file below -253 is fault", ref(KindFile, "f", 3, false), file("f", -300), 0, true, "file f is -300 (weight 3: -900, below -253)"},
		{"file huge value does not overflow", ref(KindFile, "f", 254, false), file("f", 1<<31-1), 253, false, "file f is 2147483647 (weight 254: +253, capped)"},
		{"file huge negative is fault", ref(KindFile, "f", -254, false), file("f", 1<<31-1), 0, true, "file f is 2147483647 (weight -254: -545460846338, below -253)"},
		{"file reverse below -253 is fault", ref(KindFile, "f", 2, true), file("f", 200), 0, true, "file f is 200 (weight 2 reverse: -400, below -253)"},

		// Several trackers: deltas add up; faults win and are all named.
		{
			"sum",
			[]Ref{{Kind: KindScript, Name: "a", Weight: 10}, {Kind: KindScript, Name: "b", Weight: -20}, {Kind: KindFile, Name: "f", Weight: 2}},
			Results{{KindScript, "a"}: {OK: true}, {KindScript, "b"}: {OK: false}, {KindFile, "f"}: {OK: true, Value: 4}},
			-2, false, "script a succeeded (weight +10); script b failed (weight -20); file f is 4 (weight 2: +8)",
		},
		{
			"faults listed, delta still computed",
			[]Ref{{Kind: KindInterface, Name: "eth0"}, {Kind: KindScript, Name: "a", Weight: 10}, {Kind: KindScript, Name: "z"}},
			Results{{KindInterface, "eth0"}: {OK: false}, {KindScript, "a"}: {OK: true}, {KindScript, "z"}: {OK: false}},
			10, true, "interface eth0 is down; script z failed",
		},
		{
			"same name, different kinds",
			[]Ref{{Kind: KindInterface, Name: "x"}, {Kind: KindScript, Name: "x", Weight: 5}},
			Results{{KindInterface, "x"}: {OK: true}, {KindScript, "x"}: {OK: true}},
			5, false, "script x succeeded (weight +5)",
		},
		{
			"one tracker followed by two refs with different weights",
			[]Ref{{Kind: KindScript, Name: "a", Weight: 10}, {Kind: KindScript, Name: "a", Weight: 10, Reverse: true}},
			Results{{KindScript, "a"}: {OK: true}},
			0, false, "script a succeeded (weight +10); script a succeeded (weight 10 reverse: -10)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, f, r := Aggregate(tt.refs, tt.results)
			if d != tt.delta || f != tt.fault || r != tt.reason {
				t.Errorf("Aggregate = (%d, %v, %q), want (%d, %v, %q)", d, f, r, tt.delta, tt.fault, tt.reason)
			}
		})
	}
}

func TestResultsApply(t *testing.T) {
	r := Results{}
	r.Apply(Event{Kind: KindFile, Name: "f", OK: true, Value: 3})
	r.Apply(Event{Kind: KindFile, Name: "f", OK: true, Value: 4})
	if got := r[Key{KindFile, "f"}]; got != (Result{OK: true, Value: 4}) {
		t.Errorf("after two events: %+v", got)
	}
	if got := (Key{KindProcess, "nginx"}).String(); got != "process nginx" {
		t.Errorf("Key.String = %q", got)
	}
	if got := Kind(9).String(); got != "Kind(9)" {
		t.Errorf("Kind(9).String = %q", got)
	}
}

func TestEffective(t *testing.T) {
	script := Ref{Kind: KindScript, Name: "s", Weight: 10}
	script0 := Ref{Kind: KindScript, Name: "s0"}
	file := Ref{Kind: KindFile, Name: "f", Weight: 5}
	proc := Ref{Kind: KindProcess, Name: "p", Weight: -2}
	iface := Ref{Kind: KindInterface, Name: "nocar", Weight: -7}
	gscript := Ref{Kind: KindScript, Name: "g", Weight: -10}
	own := []Ref{script, script0, file, proc, iface}
	names := func(rs []Ref) string {
		var s []string
		for _, r := range rs {
			s = append(s, r.Name)
		}
		return strings.Join(s, " ")
	}
	tests := []struct {
		name                        string
		inGroup, trackWeight, owner bool
		want                        string
		ignored                     int
	}{
		{"plain instance keeps all", false, false, false, "s s0 f p nocar g", 0},
		// Seen: "(S1) ignoring tracked script bad with weights due to SYNC
		// group", file likewise; the interface's -7 and the group's
		// script -10 still applied.
		{"sync group member", true, false, false, "s0 nocar g", 3},
		{"sync_group_tracking_weight", true, true, false, "s s0 f p nocar g", 0},
		// Seen: "(O1) ignoring tracked script badneg with weights due to
		// address_owner", file and interface likewise.
		{"address owner", false, false, true, "s0", 5},
		{"owner in a sync group", true, false, true, "s0", 5},
	}
	for _, tt := range tests {
		refs, ignored := Effective(own, []Ref{gscript}, tt.inGroup, tt.trackWeight, tt.owner, "VI_1")
		if got := names(refs); got != tt.want || len(ignored) != tt.ignored {
			t.Errorf("%s: kept %q, %d ignored %q; want %q, %d", tt.name, got, len(ignored), ignored, tt.want, tt.ignored)
		}
	}
	_, ignored := Effective([]Ref{script}, nil, true, false, false, "S1")
	if want := "(S1) ignoring tracked script s with weight 10: member of a sync group without sync_group_tracking_weight"; len(ignored) != 1 || ignored[0] != want {
		t.Errorf("log line %q, want %q", ignored, want)
	}
}
