package track

import (
	"fmt"
	"strings"

	"vigil/internal/enum"
)

// Kind is the kind of a tracker.
type Kind int

// The kinds of tracker.
const (
	KindScript    Kind = iota + 1 // vrrp_script, followed with track_script
	KindInterface                 // track_interface
	KindFile                      // track_file (vrrp_track_file)
	KindProcess                   // vrrp_track_process, followed with track_process
	KindBFD                       // bfd_instance, followed with track_bfd (OK: the session is Up)
)

var kindNames = []string{KindScript: "script", KindInterface: "interface", KindFile: "file", KindProcess: "process", KindBFD: "bfd"}

// String returns the word used in reasons and logs.
func (k Kind) String() string { return enum.Name(kindNames, k, "Kind") }

// Key names one tracker.
type Key struct {
	Kind Kind
	Name string
}

func (k Key) String() string { return k.Kind.String() + " " + k.Name }

// Event is a change in a tracker's result, as the watchers report it.
type Event struct {
	Kind Kind
	Name string
	// OK: script succeeded (after rise/fall), interface up, process quorum
	// met. For a file, whether it could be read: Aggregate uses only Value,
	// and a missing or unreadable file has Value 0, as in keepalived.
	OK bool
	// Value: a file's number; a process's count of matching processes; a
	// script's last exit code (-1 when it was killed or could not start).
	Value int
	// Detail says what happened in plain words, for logs.
	Detail string
}

// Key returns the key of the tracker the event is about.
func (e Event) Key() Key { return Key{e.Kind, e.Name} }

// Result is a tracker's current result.
type Result struct {
	OK    bool
	Value int
}

// Results holds the current result of every tracker that has one. A
// tracker without an entry has no result yet (a vrrp_script that has not
// completed its first run and has no init_fail): it neither changes the
// priority nor causes a fault, as in keepalived.
type Results map[Key]Result

// Apply records an event's result.
func (r Results) Apply(e Event) { r[e.Key()] = Result{OK: e.OK, Value: e.Value} }

// Ref is one tracker an instance (or sync group) follows, with the weight
// that applies to that instance: the track_* line's weight if it has one,
// else the tracker's own. Effective drops the ones keepalived ignores.
// The daemon also leaves out a track_interface naming the instance's own
// interface, which keepalived ignores ("Ignoring track_interface eth0
// since own interface"): that one is followed through
// vrrp.InterfaceDown/InterfaceUp.
type Ref struct {
	Kind    Kind
	Name    string
	Weight  int
	Reverse bool
}

// MaxFileDelta bounds a track_file's contribution: keepalived 2.2.7 adds
// at most 253 for one file (a file reading 100 with weight 3 adds 253),
// and puts the instance in FAULT when the product is below −253.
const MaxFileDelta = 253

// Aggregate computes the tracking result of one instance from the trackers
// it follows and their current results. The rules, keepalived 2.2.7's (each
// checked against it in a namespace):
//
//   - script, interface, process: a positive weight is added while the
//     tracker is OK (script succeeded, interface up, quorum met), a negative
//     weight while it has failed; reverse negates what is added without
//     changing when (weight 10 reverse subtracts 10 while OK; weight −10
//     reverse adds 10 while failed). Weight 0 means FAULT while failed, or,
//     with reverse, while OK.
//   - file: weight 0 means FAULT while the value is non-zero, or, with
//     reverse, while it is zero. Otherwise value × weight, negated with
//     reverse, is added, capped at +253; below −253 it means FAULT instead.
//
// A tracker with no result yet is skipped. The engine adds delta to the
// base priority, clamps to 1..254 and leaves priority 255 alone. reason
// lists the faults when there are any, else the trackers that move the
// priority, in refs order; it is "" when nothing applies.
func Aggregate(refs []Ref, results Results) (delta int, fault bool, reason string) {
	var faults, moves []string
	for _, ref := range refs {
		res, ok := results[Key{ref.Kind, ref.Name}]
		if !ok {
			continue
		}
		d, f, why := contribution(ref, res)
		switch {
		case f:
			faults = append(faults, why)
		case d != 0:
			delta += d
			moves = append(moves, why)
		}
	}
	if len(faults) > 0 {
		return delta, true, strings.Join(faults, "; ")
	}
	return delta, false, strings.Join(moves, "; ")
}

// contribution applies the rules of Aggregate to one tracker.
func contribution(ref Ref, res Result) (delta int, fault bool, why string) {
	name := ref.Kind.String() + " " + ref.Name
	if ref.Kind == KindFile {
		return fileContribution(ref, res, name)
	}
	state := failedWord(ref.Kind)
	if res.OK {
		state = okWord(ref.Kind)
	}
	if ref.Weight == 0 {
		// Weight 0 is a hard dependency: failed (OK with reverse) is FAULT.
		if res.OK == ref.Reverse {
			if ref.Reverse {
				return 0, true, fmt.Sprintf("%s %s (weight 0 reverse)", name, state)
			}
			return 0, true, name + " " + state
		}
		return 0, false, ""
	}
	// The sign of the configured weight says when it applies; reverse only
	// flips what is added.
	applies := (ref.Weight > 0) == res.OK
	if !applies {
		return 0, false, ""
	}
	if ref.Reverse {
		return -ref.Weight, false, fmt.Sprintf("%s %s (weight %d reverse: %+d)", name, state, ref.Weight, -ref.Weight)
	}
	return ref.Weight, false, fmt.Sprintf("%s %s (weight %+d)", name, state, ref.Weight)
}

func fileContribution(ref Ref, res Result, name string) (int, bool, string) {
	if ref.Weight == 0 {
		if (res.Value != 0) != ref.Reverse {
			if ref.Reverse {
				return 0, true, fmt.Sprintf("%s is 0 (weight 0 reverse)", name)
			}
			return 0, true, fmt.Sprintf("%s is %d, not 0", name, res.Value)
		}
		return 0, false, ""
	}
	// int64: a file may hold any int and weights reach ±254.
	p := int64(res.Value) * int64(ref.Weight)
	rev := ""
	if ref.Reverse {
		p = -p
		rev = " reverse"
	}
	if p < -MaxFileDelta {
		return 0, true, fmt.Sprintf("%s is %d (weight %d%s: %d, below -%d)", name, res.Value, ref.Weight, rev, p, MaxFileDelta)
	}
	if p == 0 {
		return 0, false, ""
	}
	capped := ""
	if p > MaxFileDelta {
		p = MaxFileDelta
		capped = ", capped"
	}
	return int(p), false, fmt.Sprintf("%s is %d (weight %d%s: %+d%s)", name, res.Value, ref.Weight, rev, p, capped)
}

func okWord(k Kind) string {
	switch k {
	case KindInterface, KindBFD:
		return "is up"
	case KindProcess:
		return "has its quorum"
	}
	return "succeeded"
}

func failedWord(k Kind) string {
	switch k {
	case KindInterface, KindBFD:
		return "is down"
	case KindProcess:
		return "lost its quorum"
	}
	return "failed"
}

// Effective returns the trackers keepalived 2.2.7 applies to an instance:
// its own (instance) followed by those of its sync group (group), minus the
// ones it ignores, and a log line for each of those. Observed by running
// keepalived (the man page says such weights are "set to zero"; they are
// in fact dropped, so a failing one neither moves the priority nor causes
// FAULT):
//
//   - an address owner (priority 255) ignores every tracker with a
//     non-zero weight, its own and its group's;
//   - a sync group member ignores its own scripts, files and processes with
//     a non-zero weight, unless the group has sync_group_tracking_weight
//     (trackingWeight). Its own weighted interfaces still apply (keepalived
//     logs that it ignores their weight, then applies it), and so do the
//     group's trackers, weighted or not.
//
// Trackers with weight 0 always apply.
func Effective(instance, group []Ref, inSyncGroup, trackingWeight, addressOwner bool, name string) (refs []Ref, ignored []string) {
	for _, r := range instance {
		switch {
		case r.Weight != 0 && addressOwner:
			ignored = append(ignored, fmt.Sprintf("(%s) ignoring tracked %s %s with weight %d: address owner", name, r.Kind, r.Name, r.Weight))
		case r.Weight != 0 && inSyncGroup && !trackingWeight && r.Kind != KindInterface:
			ignored = append(ignored, fmt.Sprintf("(%s) ignoring tracked %s %s with weight %d: member of a sync group without sync_group_tracking_weight", name, r.Kind, r.Name, r.Weight))
		default:
			refs = append(refs, r)
		}
	}
	for _, r := range group {
		if r.Weight != 0 && addressOwner {
			ignored = append(ignored, fmt.Sprintf("(%s) ignoring sync group's tracked %s %s with weight %d: address owner", name, r.Kind, r.Name, r.Weight))
			continue
		}
		refs = append(refs, r)
	}
	return refs, ignored
}
