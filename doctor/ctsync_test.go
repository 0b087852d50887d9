package doctor

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/control"
)

func TestCheckSync(t *testing.T) {
	backup := control.SyncStatus{Interface: "eth1", Instance: "VI_1", ID: 51, Port: 8848, Running: true, Synced: true,
		Started: now.Add(-time.Hour), Entries: 300, Received: 900, FullSyncs: 2,
		Peers: []control.SyncPeer{{Addr: "198.51.100.1", Master: true, LastSeen: now.Add(-500 * time.Millisecond)}}}
	with := func(f func(*control.SyncStatus)) *control.SyncStatus {
		s := backup
		s.Peers = append([]control.SyncPeer(nil), backup.Peers...)
		s.Dropped = maps.Clone(backup.Dropped)
		f(&s)
		return &s
	}
	for _, c := range []struct {
		name      string
		s, before *control.SyncStatus
		want      map[string]Severity
	}{
		{"backup fine", &backup, nil, map[string]Severity{"VDB00": Ok}},
		{"master fine", with(func(s *control.SyncStatus) { s.Master, s.Peers = true, nil }), nil, map[string]Severity{"VDB00": Ok}},
		{"not running", with(func(s *control.SyncStatus) { s.Running, s.Error = false, "listen udp :8848: address already in use" }), nil,
			map[string]Severity{"VDB01": Crit}},
		{"peer silent", with(func(s *control.SyncStatus) { s.Peers[0].LastSeen = now.Add(-10 * time.Second) }), nil,
			map[string]Severity{"VDB02": Crit}},
		{"never heard", with(func(s *control.SyncStatus) { s.Peers = []control.SyncPeer{{Addr: "198.51.100.1", Configured: true}} }), nil,
			map[string]Severity{"VDB02": Crit}},
		{"no full table", with(func(s *control.SyncStatus) { s.FullSyncs, s.Received = 0, 0 }), nil,
			map[string]Severity{"VDB03": Warn}},
		{"no full table yet", with(func(s *control.SyncStatus) { s.FullSyncs, s.Started = 0, now.Add(-5*time.Second) }), nil,
			map[string]Severity{"VDB00": Ok}},
		{"auth", with(func(s *control.SyncStatus) { s.Dropped = map[string]uint64{"auth": 12} }), nil,
			map[string]Severity{"VDB04": Crit}},
		{"auth, old", with(func(s *control.SyncStatus) { s.Dropped = map[string]uint64{"auth": 12} }),
			with(func(s *control.SyncStatus) { s.Dropped = map[string]uint64{"auth": 12} }), map[string]Severity{"VDB00": Ok}},
		{"auth, old, nothing heard", with(func(s *control.SyncStatus) {
			s.Dropped, s.Peers = map[string]uint64{"auth": 12}, nil
		}), with(func(s *control.SyncStatus) { s.Dropped = map[string]uint64{"auth": 12} }), map[string]Severity{"VDB02": Crit, "VDB04": Crit}},
		{"sync id", with(func(s *control.SyncStatus) { s.Dropped = map[string]uint64{"sync-id": 3} }), nil,
			map[string]Severity{"VDB05": Crit}},
		{"ttl", with(func(s *control.SyncStatus) { s.Dropped = map[string]uint64{"ttl": 3} }), nil,
			map[string]Severity{"VDB06": Warn}},
		{"stale", with(func(s *control.SyncStatus) { s.Dropped = map[string]uint64{"stale": 5} }), nil,
			map[string]Severity{"VDB08": Warn}},
		{"install failed", with(func(s *control.SyncStatus) {
			s.Installs, s.LastInstall = 1, control.SyncInstall{At: now.Add(-time.Minute), Entries: 10, Error: "file exists"}
		}), nil, map[string]Severity{"VDB07": Warn}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &Input{Now: now, Status: &control.Status{Sync: c.s}}
			if c.before != nil {
				in.Before = &control.Status{Sync: c.before}
			}
			got := map[string]Severity{}
			for _, f := range checkSync(in) {
				got[f.Code] = f.Severity
				if f.Instance != "VI_1" || f.Interface != "eth1" || f.Summary == "" {
					t.Errorf("finding %+v: want instance, interface and summary", f)
				}
			}
			if !maps.Equal(got, c.want) {
				t.Errorf("findings %v, want %v", got, c.want)
			}
		})
	}
	// A mismatch drop's finding says how many and, for the sync id, ours.
	drops := with(func(s *control.SyncStatus) {
		s.Dropped = map[string]uint64{"sync-id": 3, "stale": 5, "auth": 1, "unexpected-auth": 1}
	})
	for _, f := range checkSync(&Input{Now: now, Status: &control.Status{Sync: drops}}) {
		want := map[string]string{"VDB04": "dropped for auth: 2", "VDB05": "dropped for sync id: 3", "VDB08": "dropped as stale: 5"}[f.Code]
		if want != "" && !slices.Contains(f.Evidence, want) {
			t.Errorf("%s evidence %q, want %q", f.Code, f.Evidence, want)
		}
		if f.Code == "VDB05" && !strings.Contains(f.Summary, "this director's (51)") {
			t.Errorf("VDB05 summary %q does not name our sync id", f.Summary)
		}
	}
	if fs := checkSync(&Input{Now: now, Status: &control.Status{}}); len(fs) != 0 {
		t.Errorf("no sync configured: %v, want no finding", fs)
	}
}
