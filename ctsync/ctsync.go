// Package ctsync keeps established NAT and FNAT connections alive across a
// director failover, as keepalived's lvs_sync_daemon does for IPVS: the
// master reads its kernel conntrack table (ctnetlink events and periodic full
// dumps), keeps the flows of the virtual servers it is given and sends them
// over UDP to the backups; a backup keeps a bounded copy and, when it is about
// to become master, installs it into its own kernel conntrack table with the
// NAT bindings, so that packets of established flows are translated to the
// same real server with the same addresses and ports.
//
// The datagram format is in ctsync/wire; docs/architecture.md ("Connection
// sync") says why vigil syncs conntrack itself instead of driving conntrackd.
package ctsync

import (
	"net/netip"
	"time"
)

// Service is a NAT or FNAT virtual server whose flows are synced: a flow
// is synced when its original destination is VIP, its protocol Proto and
// (unless Port is 0) its original destination port Port.
type Service struct {
	VIP   netip.Addr
	Proto uint8
	Port  uint16
}

// matches reports whether a flow's original direction is to one of svcs.
func matches(svcs []Service, proto uint8, dst netip.Addr, dport uint16) bool {
	for _, s := range svcs {
		if s.VIP == dst && s.Proto == proto && (s.Port == 0 || s.Port == dport) {
			return true
		}
	}
	return false
}

// Config configures a Syncer; the zero value of each field is its default.
type Config struct {
	// Interface is lvs_sync_daemon's INTERFACE: datagrams are sent from it
	// and only datagrams that arrive on it are accepted.
	Interface string
	// Group is the multicast group, used when Peers is empty: default
	// DefaultGroup4 (IPVS's 224.0.0.81), or DefaultGroup6 when Source is
	// IPv6. Invalid (the zero Addr) when Peers are set.
	Group netip.Addr
	// Peers are unicast peers (the VRRP instance's unicast_peer); when set
	// only datagrams from them are accepted.
	Peers []netip.Addr
	// Source is the optional source address of sent datagrams.
	Source netip.Addr
	// Port is the UDP port, sent from and listened on; default 8848.
	Port uint16
	// TTL is the IPv4 TTL or IPv6 hop limit of sent datagrams, default 1.
	// A receiver drops a datagram that arrives with another TTL: both
	// directors must configure the same value, and a datagram that crossed
	// a router (or was sent by anything else) is refused.
	TTL uint8
	// MaxLen is the largest datagram sent (UDP payload), default the
	// interface's MTU less the IP and UDP headers.
	MaxLen int
	// SyncID is keepalived's "id": datagrams with another id are dropped
	// and counted.
	SyncID uint8
	// Key is the HMAC-SHA256 key authenticating every datagram; nil sends
	// and accepts unauthenticated datagrams (still confined to Interface,
	// the peers or the interface's subnets, and TTL).
	Key []byte
	// MaxEntries bounds the backup's copy (default 1<<20); entries beyond
	// it are counted (Status.Overflow) and dropped.
	MaxEntries int
	// FullInterval is the period of the master's full dumps, default 30 s:
	// they repair lost datagrams and remove entries whose delete was lost.
	FullInterval time.Duration
	// Logf logs; nil logs nothing.
	Logf func(format string, args ...any)
}

// Defaults.
var (
	DefaultGroup4 = netip.MustParseAddr("224.0.0.81")
	DefaultGroup6 = netip.MustParseAddr("ff02::81")
)

const (
	DefaultPort         = 8848
	DefaultTTL          = 1
	DefaultMaxEntries   = 1 << 20
	DefaultFullInterval = 30 * time.Second
)

// PeerStatus is one sender seen by this Syncer.
type PeerStatus struct {
	Addr     netip.Addr
	Master   bool      // the peer said it is master in its last datagram
	LastSeen time.Time // last accepted datagram
	Epoch    uint64    // the peer's incarnation (its start time in ns)
}

// Status is a snapshot for vigil status, metrics and doctor.
type Status struct {
	Master bool
	Peers  []PeerStatus
	// Entries counts (entries, not datagrams).
	Sent, Received, Installed, Deleted uint64
	SentPackets, ReceivedPackets       uint64
	// Dropped counts dropped datagrams by reason (see DropReasons).
	Dropped map[string]uint64
	// Entries held in the copy.
	Entries int
	// Overflow counts entries refused because the copy held MaxEntries.
	Overflow uint64
	// Gaps counts sequence gaps (each asks for a full table).
	Gaps uint64
	// FullSyncs counts complete full tables received; FullSent counts full
	// tables sent (periodic dumps and answers to requests).
	FullSyncs, FullSent uint64
	// Resyncs counts full dumps the master made because its event socket
	// overflowed (ENOBUFS).
	Resyncs uint64
	// Lag is the last received entry datagram's receipt time less its send
	// time (the directors' clocks are assumed NTP-close).
	Lag          time.Duration
	LastError    string
	LastFullSync time.Time
}
