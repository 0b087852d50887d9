package track_test

import (
	"fmt"

	"vigil/track"
)

// The daemon keeps Results from the watchers' events and recomputes an
// instance's tracking from the trackers it follows.
func ExampleAggregate() {
	results := track.Results{}
	results.Apply(track.Event{Kind: track.KindScript, Name: "chk_nginx", OK: false})
	results.Apply(track.Event{Kind: track.KindFile, Name: "prio", OK: true, Value: 3})
	results.Apply(track.Event{Kind: track.KindInterface, Name: "eth1", OK: true})

	refs := []track.Ref{
		{Kind: track.KindScript, Name: "chk_nginx", Weight: -20},
		{Kind: track.KindFile, Name: "prio", Weight: 5},
		{Kind: track.KindInterface, Name: "eth1"}, // weight 0: down means FAULT
	}
	delta, fault, reason := track.Aggregate(refs, results)
	fmt.Println(delta, fault, reason)

	results.Apply(track.Event{Kind: track.KindInterface, Name: "eth1", OK: false})
	delta, fault, reason = track.Aggregate(refs, results)
	fmt.Println(delta, fault, reason)
	// Output:
	// -5 false script chk_nginx failed (weight -20); file prio is 3 (weight 5: +15)
	// -5 true interface eth1 is down
}

// A sync group member without sync_group_tracking_weight drops its own
// weighted scripts, as keepalived does.
func ExampleEffective() {
	own := []track.Ref{{Kind: track.KindScript, Name: "chk", Weight: 10}, {Kind: track.KindScript, Name: "hard"}}
	group := []track.Ref{{Kind: track.KindScript, Name: "grp", Weight: -10}}
	refs, ignored := track.Effective(own, group, true, false, false, "VI_1")
	for _, r := range refs {
		fmt.Println("follows", r.Kind, r.Name, r.Weight)
	}
	fmt.Println(ignored[0])
	// Output:
	// follows script hard 0
	// follows script grp -10
	// (VI_1) ignoring tracked script chk with weight 10: member of a sync group without sync_group_tracking_weight
}
