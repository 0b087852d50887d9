package doctor

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"vigil/control"
	"vigil/ctsync/wire"
)

// syncFullTableWait is how long a backup may run its sync without a full
// table from a master it hears before VDB03 is reported: the daemon's hold
// bound (10 s) and a margin.
const syncFullTableWait = 15 * time.Second

// checkSync explains lvs_sync_daemon's connection sync (package ctsync)
// from the daemon's status:
//
//   - VDB00: the sync runs (ok), with its role and peers;
//   - VDB01: configured but not running;
//   - VDB02: a backup hears no peer: no datagram at all, or none for 3 s;
//   - VDB03: a backup hears the master but no full table arrives;
//   - VDB04: datagrams dropped for their HMAC (the keys differ);
//   - VDB05: datagrams dropped for their sync id (the ids differ);
//   - VDB06: datagrams dropped for their TTL (the ttl settings differ, or
//     a router sits between);
//   - VDB07: the last takeover's install of the copy failed;
//   - VDB08: datagrams dropped as stale (sent long before this director's
//     sync started: the master's clock is behind, or a replay).
//
// Drop counts are problems when they grew during the capture (or, without
// an earlier snapshot, when there are any), or when a backup hears no peer.
func checkSync(in *Input) []Finding {
	if in.Status == nil || in.Status.Sync == nil {
		return nil
	}
	s := in.Status.Sync
	var before *control.SyncStatus
	if in.Before != nil {
		before = in.Before.Sync
	}
	role := "backup"
	if s.Master {
		role = "master"
	}
	ev := []string{fmt.Sprintf("sync on %s port %d, instance %s, id %d, %s: %d entries, sent %d, received %d, installed %d, full tables %d",
		s.Interface, s.Port, s.Instance, s.ID, role, s.Entries, s.Sent, s.Received, s.Installed, s.FullSyncs)}
	for _, p := range s.Peers {
		heard := "never heard"
		if !p.LastSeen.IsZero() {
			heard = "heard " + ago(in.Now, p.LastSeen) + " ago"
		}
		pr := "backup"
		if p.Master {
			pr = "master"
		}
		ev = append(ev, fmt.Sprintf("peer %s (%s): %s", p.Addr, pr, heard))
	}
	var out []Finding
	add := func(f Finding) {
		f.Instance, f.Interface = s.Instance, s.Interface
		f.Evidence = append(append([]string{}, ev...), f.Evidence...)
		out = append(out, f)
	}
	if !s.Running {
		add(Finding{Code: "VDB01", Severity: Crit,
			Summary:  "Connection sync (lvs_sync_daemon) is configured but not running: established NAT/FNAT connections will break at the next failover.",
			Evidence: []string{"error: " + s.Error},
			Fix:      "See the error: the interface must exist and the UDP port be free; `vigil status` and the log say more. A reload retries.",
		})
		return out
	}
	fresh := func(p control.SyncPeer) bool {
		return !p.LastSeen.IsZero() && in.Now.Sub(p.LastSeen) <= control.SyncPeerSilentAfter
	}
	if !s.Master {
		heard := slices.ContainsFunc(s.Peers, fresh)
		masterHeard := slices.ContainsFunc(s.Peers, func(p control.SyncPeer) bool { return p.Master && fresh(p) })
		switch {
		case !heard:
			add(Finding{Code: "VDB02", Severity: Crit,
				Summary: "This backup director hears no sync peer: no sync datagram arrived in the last 3 s (every director sends one each second), so it keeps no copy of the master's connections.",
				Fix:     "Check that the master runs vigil with the same lvs_sync_daemon settings (interface, port, group or unicast peers), that UDP to that port is allowed both ways on the sync interface, and see the drop counts (VDB04-VDB06).",
			})
		case masterHeard && s.FullSyncs == 0 && !s.Started.IsZero() && in.Now.Sub(s.Started) > syncFullTableWait:
			add(Finding{Code: "VDB03", Severity: Warn,
				Summary: fmt.Sprintf("This backup hears the master but has received no full connection table in %s: entries are not being received.", ago(in.Now, s.Started)),
				Fix:     "Datagrams larger than the path allows are lost: lower lvs_sync_daemon maxlen; check the drop counts and the master's `vigil status` (it should list this director as a peer).",
			})
		}
	}
	// A drop count is a finding when it grew during the capture, or when
	// it is the likely reason a backup hears nothing (the hellos come once
	// a second, so a short capture may see no new drop).
	silent := !s.Master && !slices.ContainsFunc(s.Peers, fresh)
	grew := func(reasons ...wire.Reason) (uint64, bool) {
		var now, was uint64
		for _, r := range reasons {
			now += s.Dropped[string(r)]
			if before != nil {
				was += before.Dropped[string(r)]
			}
		}
		return now, now > was || (now > 0 && silent)
	}
	// The drop reasons that are a mismatch between the directors, each a
	// finding of its own.
	for _, d := range []struct {
		reasons      []wire.Reason
		code         string
		severity     Severity
		dropped      string // the evidence: "dropped for auth: N"
		summary, fix string
	}{
		{[]wire.Reason{wire.ReasonAuth, wire.ReasonNoAuth}, "VDB04", Crit, "dropped for auth",
			"Sync datagrams are dropped for their authentication: the directors' lvs_sync_auth_key differ (or one has none).",
			"Set the same lvs_sync_auth_key (or lvs_sync_auth_key_file contents) on every director and reload them. A host injecting datagrams would show here too."},
		{[]wire.Reason{wire.ReasonSyncID}, "VDB05", Crit, "dropped for sync id",
			fmt.Sprintf("Sync datagrams arrive with another sync id than this director's (%d): the directors' lvs_sync_daemon id differ (the default is the instance's VRID).", s.ID),
			"Give lvs_sync_daemon the same `id N` on every director of the pair (or the same VRID to the sync instance)."},
		{[]wire.Reason{wire.ReasonTTL}, "VDB06", Warn, "dropped for TTL",
			"Sync datagrams arrive with another TTL (hop limit) than this director sends: the directors' `ttl` differ, or a router sits between them.",
			"Use the same lvs_sync_daemon `ttl N` on every director; directors on one link need no router between them."},
		{[]wire.Reason{wire.ReasonStale}, "VDB08", Warn, "dropped as stale",
			fmt.Sprintf("Sync datagrams are refused as stale: a peer's first datagrams were sent more than %s before this director's sync started, by their send time. Either the master's clock is behind this director's, or someone replays captured datagrams.", wire.ClockSlack),
			"Keep the directors' clocks in step (NTP): until the master's clock passes this director's start, its datagrams are refused and this director gets no copy."},
	} {
		if n, ok := grew(d.reasons...); ok {
			add(Finding{Code: d.code, Severity: d.severity, Summary: d.summary,
				Evidence: []string{fmt.Sprintf("%s: %d", d.dropped, n)}, Fix: d.fix})
		}
	}
	if li := s.LastInstall; s.Installs > 0 && li.Error != "" {
		add(Finding{Code: "VDB07", Severity: Warn,
			Summary:  fmt.Sprintf("The last takeover (%s ago) could not install the synced connections: some established connections broke.", ago(in.Now, li.At)),
			Evidence: []string{fmt.Sprintf("installed %d entries in %s, then: %s", li.Entries, time.Duration(li.Took), li.Error)},
			Fix:      "See the log around the takeover; the kernel's conntrack table may be full (net.netfilter.nf_conntrack_max).",
		})
	}
	if len(out) == 0 {
		sum := fmt.Sprintf("Connection sync runs as %s on %s", role, s.Interface)
		if s.Holding {
			sum += ", waiting for the master's full table (the instance does not preempt meanwhile)"
		}
		var parts []string
		for k, v := range s.Dropped {
			parts = append(parts, fmt.Sprintf("%s %d", k, v))
		}
		slices.Sort(parts)
		f := Finding{Code: "VDB00", Severity: Ok, Summary: sum + "."}
		if len(parts) > 0 {
			f.Evidence = []string{"dropped before: " + strings.Join(parts, ", ")}
		}
		add(f)
	}
	return out
}
