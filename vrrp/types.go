package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"vigil/internal/enum"
)

// State is the state of an instance: RFC 5798 section 6.4's Initialize,
// Backup and Master, and keepalived's FAULT. One byte, so that it packs
// with the other one-byte fields of Config and Instance (issue #7).
type State uint8

// The states. StateInit is also the zero value of Config.InitialState,
// meaning BACKUP.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
)

var stateNames = []string{StateInit: "INIT", StateBackup: "BACKUP", StateMaster: "MASTER", StateFault: "FAULT"}

// String returns the name keepalived uses in logs and notify scripts.
func (s State) String() string { return enum.Name(stateNames, s, "State") }

// Event is something Step reacts to: Packet, InterfaceUp, InterfaceDown,
// Tracking, Shutdown or Startup.
type Event interface{ event() }

// Packet is a VRRP advert received on the instance's interface. Whether it
// came by unicast or multicast is read from Dst.
type Packet struct {
	Data []byte     // the VRRP message: the IP payload, exactly
	Src  netip.Addr // IP source
	Dst  netip.Addr // IP destination: the multicast group or our address
	TTL  int        // IPv4 TTL or IPv6 hop limit
}

// InterfaceDown: the instance's interface went down (or lost its address);
// the instance goes to FAULT.
type InterfaceDown struct{}

// InterfaceUp: the interface is back; the instance leaves FAULT unless
// another cause holds it there.
type InterfaceUp struct{}

// Tracking is the current result of the instance's trackers (track_script,
// track_interface, track_file, ...): Delta is the sum of the weights that
// apply, Fault that a tracker with weight 0 has failed. It replaces the
// previous Tracking; Reason says why, for the transition it may cause.
type Tracking struct {
	Delta  int
	Fault  bool
	Reason string
}

// Shutdown stops the instance (RFC 5798 sections 6.4.2 and 6.4.3): a master
// sends a priority 0 advert and releases its VIPs; the state becomes INIT.
type Shutdown struct{}

// Startup restarts an instance that was shut down (RFC 5798 section
// 6.4.1); New already starts it.
type Startup struct{}

// PeerDown says that a failure detector faster than VRRP's own (a BFD
// session, vigil's bfd_takeover extension) found the router at Addr
// unreachable. A BACKUP whose current master is Addr acts as if its
// Master_Down_Timer fired, after Skew_Time so that the best backup still
// goes first; any other instance ignores it. It causes no FAULT, and an
// advert from that master before the takeover cancels it (the master is
// alive on the LAN), as does one after it (ordinary preemption), so a
// failure seen only by the detector never leaves two masters.
type PeerDown struct {
	Addr   netip.Addr
	Reason string // e.g. "BFD session A to 192.0.2.1 went down"
}

func (Packet) event()        {}
func (InterfaceDown) event() {}
func (InterfaceUp) event()   {}
func (Tracking) event()      {}
func (Shutdown) event()      {}
func (Startup) event()       {}
func (PeerDown) event()      {}

// Ready is what the caller must do, collected since the last call to
// Instance.Ready. It is meant to be carried out in this order: send
// Adverts, add AddAddrs, send Announce, delete DelAddrs; so that a new
// master's first advert goes out before any slow work, as RFC 5798 section
// 6.4.1 orders it (a backup waiting on its Master_Down_Timer hears it in
// time), it owns its VIPs before it announces them, and a leaving master's
// priority 0 advert goes out before its VIPs disappear.
type Ready struct {
	// Adverts to send, in order. They and their Data are shared with the
	// engine, which hands the same ones out while they stay right (a
	// master's adverts between changes of priority): read only. The
	// engine never writes into them either, so they may be kept.
	Adverts     []Outbound
	AddAddrs    []netip.Prefix // VIPs and excluded VIPs to add
	DelAddrs    []netip.Prefix // VIPs and excluded VIPs to remove
	Announce    []Announcement // gratuitous ARP (IPv4) / unsolicited NA (IPv6)
	Transitions []Transition   // state changes, for logs and notify scripts
	// Notes are log-worthy events that are not transitions, such as an
	// advert whose address list differs from ours.
	Notes []string
	// Next is when Advance must next be called; zero when no timer runs
	// (INIT, FAULT). It may already have passed (a sync group peer moved
	// the instance along): then Advance at once.
	Next time.Time
}

// Empty reports whether r asks for nothing but a wait until Next.
func (r *Ready) Empty() bool {
	return len(r.Adverts) == 0 && len(r.AddAddrs) == 0 && len(r.DelAddrs) == 0 &&
		len(r.Announce) == 0 && len(r.Transitions) == 0 && len(r.Notes) == 0
}

// Outbound is one advert to send from Config.SrcAddr to Dst with TTL or hop
// limit 255 and IP protocol 112; Data is the VRRP message, checksummed for
// that source and destination.
type Outbound struct {
	Dst      netip.Addr // the multicast group or a unicast peer
	Data     []byte
	Priority uint8 // as in Data, for logs: 0 is a shutdown advert
}

// Announcement asks for Repeat gratuitous ARPs ("who-has A tell A",
// broadcast, as keepalived sends them) for each IPv4 address in Addrs and
// Repeat unsolicited neighbour advertisements (to ff02::1, Override flag
// set; RFC 5798 section 6.4.1 also asks for the Router flag) for each IPv6
// one. The caller may space them out (vrrp_garp_interval).
type Announcement struct {
	Addrs  []netip.Addr
	Repeat int
	Reason string
}

// Transition is a change of state.
type Transition struct {
	At       time.Time
	From, To State
	// Cause is why, for programs to switch on.
	Cause Cause
	// Reason is why in plain words, with the details, for logs and
	// notify: "master down timer expired", "higher priority 150 from
	// 192.0.2.2", "shutdown", ...
	Reason string
	// Priority is the effective priority after the change, which notify
	// scripts receive.
	Priority uint8
}

func (t Transition) String() string {
	return fmt.Sprintf("%v -> %v (%s)", t.From, t.To, t.Reason)
}

// DropReason is why a received packet was dropped, in the order the checks
// run.
type DropReason int

// The reasons.
const (
	DropLength      DropReason = iota // shorter than its header or address count need, or wrong family
	DropVRID                          // another virtual router's advert
	DropTTL                           // TTL or hop limit not 255
	DropVersion                       // not our VRRP version
	DropAuthType                      // version 2 auth type differs from ours
	DropAuth                          // version 2 password differs from ours
	DropInterval                      // version 2 advert interval differs from ours
	DropType                          // not an ADVERTISEMENT
	DropAddrCount                     // address count differs from ours, or from the length
	DropChecksum                      // bad checksum
	DropCast                          // unicast to a multicast instance or the reverse
	DropVIPs                          // one of our VIPs is missing from the advert
	DropUnknownPeer                   // unicast from an address not in Config.Peers
	DropOwn                           // our own advert, looped back
	DropInactive                      // valid, but the instance is in INIT or FAULT
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"length", "vrid", "ttl", "version", "auth-type", "auth", "interval", "type",
	"addr-count", "checksum", "cast", "vips", "unknown-peer", "own", "inactive",
}

// String returns a short name such as "ttl" or "checksum".
func (r DropReason) String() string { return enum.Name(dropNames[:], r, "DropReason") }

// DropReasons lists every reason, in check order.
func DropReasons() []DropReason {
	rs := make([]DropReason, numDropReasons)
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}

// ErrDropped is matched (errors.Is) by every *DropError.
var ErrDropped = errors.New("advert dropped")

// DropError is what Step returns for a dropped packet.
type DropError struct {
	Reason DropReason
	Src    netip.Addr
	Detail string // e.g. "ttl 64, want 255"
}

func (e *DropError) Error() string {
	return fmt.Sprintf("advert from %v dropped: %v: %s", e.Src, e.Reason, e.Detail)
}

// Is makes errors.Is(err, ErrDropped) true.
func (e *DropError) Is(target error) bool { return target == ErrDropped }

// Counters are the instance's statistics, in the spirit of keepalived's
// SIGUSR2 dump.
type Counters struct {
	Received         uint64 // adverts that passed every check
	Sent             uint64 // adverts sent, priority 0 included
	Dropped          [numDropReasons]uint64
	PriorityZeroRcvd uint64
	PriorityZeroSent uint64
	BecameMaster     uint64
	ReleasedMaster   uint64
}

// Drops returns the number of packets dropped for reason r.
func (c *Counters) Drops(r DropReason) uint64 {
	if r < 0 || r >= numDropReasons {
		return 0
	}
	return c.Dropped[r]
}

// TotalDrops is the number of packets dropped for any reason.
func (c *Counters) TotalDrops() uint64 {
	var n uint64
	for _, d := range c.Dropped {
		n += d
	}
	return n
}

// Status is a snapshot of an instance.
type Status struct {
	Name    string
	VRID    uint8
	Version int
	State   State
	Since   time.Time // of the last transition
	Reason  string    // of the last transition
	Cause   Cause     // of the last transition
	// Priority is the effective priority; BasePriority the configured one.
	Priority     uint8
	BasePriority uint8
	// Faults lists what holds the instance in FAULT, if anything.
	Faults []string
	// OwnsVIPs: the VIPs are (to be) installed, i.e. the instance is MASTER.
	OwnsVIPs bool
	// AcceptTraffic: packets addressed to the VIPs are to be accepted:
	// MASTER and either the address owner or not NoAccept (RFC 5798
	// section 6.4.3).
	AcceptTraffic bool
	// The master as last seen: our own address when we are master.
	MasterAddr     netip.Addr
	MasterPriority uint8
	// AdvertInterval is ours; MasterAdverInterval the one the down timer
	// uses (a version 3 backup adopts the master's).
	AdvertInterval      time.Duration
	MasterAdverInterval time.Duration
	MasterDownInterval  time.Duration
	// Timers; zero when not running.
	MasterDownAt time.Time
	NextAdvertAt time.Time
	PreemptAt    time.Time
	// Paced: the caller sends the periodic adverts (Instance.Pace), and
	// Counters.Sent leaves them out.
	Paced    bool
	Counters Counters
}
