package vrrp

import (
	"strings"

	"vigil/internal/enum"
)

// Cause is why an instance (or a sync group) changed state: the typed half
// of a Transition, for programs (doctor, metrics) to switch on; the
// Transition's Reason says the same in words, with the details, for logs
// and notify scripts. Its String is the stable name the status socket
// carries.
type Cause int

// The causes. Adding one means adding its name below; doctor's tests fail
// until doctor and docs/operations.md know it too.
const (
	// CauseStartup: the instance started (RFC 5798 section 6.4.1), at
	// process start, after a Startup event or on leaving FAULT.
	CauseStartup Cause = iota + 1
	// CauseAddressOwner: priority 255 with state MASTER went MASTER at once
	// (RFC 5798 section 6.4.1).
	CauseAddressOwner
	// CauseMasterDown: the Master_Down_Timer expired: no advert from a
	// master for Master_Down_Interval (RFC 5798 section 6.4.2).
	CauseMasterDown
	// CauseHigherPriority: a master left MASTER for an advert of higher
	// priority (RFC 5798 section 6.4.3).
	CauseHigherPriority
	// CauseHigherAddress: a master left MASTER for an advert of equal
	// priority from a higher address (RFC 5798 section 6.4.3).
	CauseHigherAddress
	// CauseInterfaceDown and CauseInterfaceUp: the instance's interface
	// went down (FAULT) or came back.
	CauseInterfaceDown
	CauseInterfaceUp
	// CauseTracking: a tracker (script, interface, file, process) changed
	// the instance's fault.
	CauseTracking
	// CauseShutdown: the instance was stopped (RFC 5798 section 6.4.2/3
	// Shutdown event).
	CauseShutdown
	// CauseSyncGroup: another member of the sync group moved this one, or
	// the group's own state changed.
	CauseSyncGroup
	// CauseBFDTakeover: a backup took over before its Master_Down_Timer
	// because a BFD session to the master went down (vigil's bfd_takeover,
	// the PeerDown event), one Skew_Time after the session's detection.
	CauseBFDTakeover
	numCauses
)

var causeNames = [numCauses]string{
	CauseStartup: "startup", CauseAddressOwner: "address_owner", CauseMasterDown: "master_down",
	CauseHigherPriority: "higher_priority", CauseHigherAddress: "higher_address",
	CauseInterfaceDown: "interface_down", CauseInterfaceUp: "interface_up", CauseTracking: "tracking",
	CauseShutdown: "shutdown", CauseSyncGroup: "sync_group", CauseBFDTakeover: "bfd_takeover",
}

// String returns the cause's stable name ("master_down"), or "Cause(n)".
func (c Cause) String() string { return enum.Name(causeNames[:], c, "Cause") }

// Causes lists every cause.
func Causes() []Cause {
	cs := make([]Cause, 0, numCauses-1)
	for c := CauseStartup; c < numCauses; c++ {
		cs = append(cs, c)
	}
	return cs
}

// ParseCause returns the cause named s (as String spells it), or zero.
func ParseCause(s string) Cause {
	for c := CauseStartup; c < numCauses; c++ {
		if causeNames[c] == s {
			return c
		}
	}
	return 0
}

// because is why a transition happens: its cause, and the words for logs.
type because struct {
	cause Cause
	text  string
}

// fixed is the cause with its usual words, for causes that carry no
// details.
func fixed(c Cause) because {
	switch c {
	case CauseMasterDown:
		return because{c, "master down timer expired"}
	case CauseAddressOwner:
		return because{c, "priority 255 and state MASTER: address owner"}
	}
	return because{c, strings.ReplaceAll(c.String(), "_", " ")}
}
