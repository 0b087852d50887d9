package control

import (
	"strings"

	"vigil/vrrp"
)

// The keys of InstanceStatus.Counters. This is the one place they are
// spelt: the daemon writes them, doctor, metrics and the demo read them, and
// docs/operations.md lists them (a test holds the list and the docs
// together).
const (
	CounterAdvertsReceived   = "adverts_received"
	CounterAdvertsSent       = "adverts_sent"
	CounterPriority0Received = "priority0_received"
	CounterPriority0Sent     = "priority0_sent"
	CounterBecameMaster      = "became_master"
	CounterReleasedMaster    = "released_master"
	// CounterLoopLagMaxMs is the worst lateness of the daemon's event loop,
	// in milliseconds (the same for every instance).
	CounterLoopLagMaxMs = "loop_lag_max_ms"
	// CounterFirstAdvertUs is how long after its last transition to MASTER
	// the instance sent its first advert, in microseconds.
	CounterFirstAdvertUs = "first_advert_us"
	// CounterVIPsClaimedUs is how long after that transition its VIPs were
	// on the interface, in microseconds.
	CounterVIPsClaimedUs = "vips_claimed_us"
)

// DropCounter is the key counting the adverts dropped for r:
// "dropped_auth_type" for vrrp.DropAuthType.
func DropCounter(r vrrp.DropReason) string { return "dropped_" + DropLabel(r) }

// DropLabel is r's name with underscores ("auth_type"), as metrics label
// it.
func DropLabel(r vrrp.DropReason) string { return strings.ReplaceAll(r.String(), "-", "_") }

// Counters lists every key of InstanceStatus.Counters.
func Counters() []string {
	ks := []string{CounterAdvertsReceived, CounterAdvertsSent, CounterPriority0Received, CounterPriority0Sent,
		CounterBecameMaster, CounterReleasedMaster, CounterLoopLagMaxMs, CounterFirstAdvertUs, CounterVIPsClaimedUs}
	for _, r := range vrrp.DropReasons() {
		ks = append(ks, DropCounter(r))
	}
	return ks
}
