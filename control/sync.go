package control

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// SyncStatus is lvs_sync_daemon's connection sync (package ctsync): what
// this director sends or keeps, its peers, and the installs it made on
// takeovers. Counts are of connection entries unless they say packets.
type SyncStatus struct {
	Interface     string `json:"interface"`
	Instance      string `json:"instance"`
	ID            int    `json:"sync_id"`
	Port          int    `json:"port"`
	Group         string `json:"group,omitempty"` // multicast; empty with unicast peers
	Authenticated bool   `json:"authenticated"`
	// Running is false when the configured sync could not start (Error).
	Running bool      `json:"running"`
	Error   string    `json:"error,omitempty"`
	Started time.Time `json:"started"`
	// Master: this director sends (it is MASTER of Instance); otherwise it
	// keeps a copy of the master's table.
	Master   bool `json:"master"`
	Services int  `json:"services"` // NAT and FNAT virtual servers synced
	// Holding: the instance does not preempt until the copy is complete
	// (Synced) or the bound passed (docs/operations.md, "Connection sync").
	Holding  bool      `json:"holding"`
	Synced   bool      `json:"synced"`
	SyncedAt time.Time `json:"synced_at,omitzero"`

	Peers []SyncPeer `json:"peers,omitempty"`
	// Entries held: the copy (backup) or the flows tracked (master).
	Entries         int               `json:"entries"`
	Sent            uint64            `json:"sent"`
	Received        uint64            `json:"received"`
	Installed       uint64            `json:"installed"`
	Deleted         uint64            `json:"deleted"`
	SentPackets     uint64            `json:"sent_packets"`
	ReceivedPackets uint64            `json:"received_packets"`
	Overflow        uint64            `json:"overflow"`
	Gaps            uint64            `json:"gaps"`
	FullSyncs       uint64            `json:"full_syncs"`
	FullSent        uint64            `json:"full_sent"`
	Resyncs         uint64            `json:"resyncs"`
	Dropped         map[string]uint64 `json:"dropped,omitempty"` // datagrams, by reason
	// Lag is the latest entry datagram's receipt less its send time.
	Lag          Duration  `json:"lag"`
	LastError    string    `json:"last_error,omitempty"`
	LastFullSync time.Time `json:"last_full_sync,omitzero"`

	Installs        uint64      `json:"installs"`
	InstallFailures uint64      `json:"install_failures"`
	LastInstall     SyncInstall `json:"last_install"`
}

// SyncPeer is a director the sync hears from, or a configured unicast
// peer it has not heard from (LastSeen zero).
type SyncPeer struct {
	Addr       string    `json:"addr"`
	Configured bool      `json:"configured"`
	Master     bool      `json:"master"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	Age        Duration  `json:"age"` // since LastSeen, at the snapshot
	Epoch      uint64    `json:"epoch,omitempty"`
}

// SyncInstall is the install of the synced copy at a takeover.
type SyncInstall struct {
	At      time.Time `json:"at,omitzero"`
	Entries int       `json:"entries"`
	Took    Duration  `json:"took"`
	Error   string    `json:"error,omitempty"`
}

// SyncPeerSilentAfter is how long a peer may go unheard before it counts
// as unreachable: every Syncer sends a hello each second.
const SyncPeerSilentAfter = 3 * time.Second

func writeSync(w io.Writer, s *SyncStatus, now time.Time) {
	if s == nil {
		return
	}
	role := "backup (keeps a copy)"
	if s.Master {
		role = "master (sends)"
	}
	state := "running"
	switch {
	case !s.Running:
		state = "NOT RUNNING: " + s.Error
	case s.Holding:
		state = "running, waiting for the full table (not preempting)"
	}
	auth := "no"
	if s.Authenticated {
		auth = "HMAC-SHA256"
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "CONNECTION SYNC\tINSTANCE\tID\tROLE\tSTATE\tAUTH\tSERVICES\tENTRIES\tSENT\tRECEIVED\tINSTALLED\tLAG")
	fmt.Fprintf(w, "%s:%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Interface, s.Port, s.Instance, s.ID, role, state, auth,
		s.Services, s.Entries, s.Sent, s.Received, s.Installed, time.Duration(s.Lag))
	if len(s.Peers) > 0 {
		fmt.Fprintln(w, "SYNC PEER\tROLE\tLAST HEARD")
		for _, p := range s.Peers {
			role, heard := "backup", "never"
			if p.Master {
				role = "master"
			}
			if !p.LastSeen.IsZero() {
				heard = since(now, p.LastSeen) + " ago"
				if now.Sub(p.LastSeen) > SyncPeerSilentAfter {
					heard += " (UNREACHABLE)"
				}
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", p.Addr, role, heard)
		}
	}
	if s.Installs > 0 {
		li := s.LastInstall
		res := "ok"
		if li.Error != "" {
			res = "FAILED: " + li.Error
		}
		fmt.Fprintf(w, "last takeover install: %d entries in %s, %s ago, %s\n", li.Entries, time.Duration(li.Took), since(now, li.At), res)
	}
	if len(s.Dropped) > 0 {
		var parts []string
		for k, v := range s.Dropped {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "sync datagrams dropped: %s\n", strings.Join(parts, ", "))
	}
}
