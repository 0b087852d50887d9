package control

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestWriteStatusSync(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := Status{Version: "v", Sync: &SyncStatus{Interface: "eth1", Port: 8848, Instance: "VI_1", ID: 51, Running: true, Holding: true,
		Authenticated: true, Services: 2, Entries: 300, Received: 900, Lag: Duration(3 * time.Millisecond),
		Peers:    []SyncPeer{{Addr: "198.51.100.1", Master: true, LastSeen: now.Add(-5 * time.Second)}, {Addr: "198.51.100.3", Configured: true}},
		Installs: 1, LastInstall: SyncInstall{At: now.Add(-time.Minute), Entries: 290, Took: Duration(20 * time.Millisecond)},
		Dropped: map[string]uint64{"auth": 2}}}
	var b bytes.Buffer
	if err := WriteStatus(&b, s, now); err != nil {
		t.Fatal(err)
	}
	norm := strings.Join(strings.Fields(b.String()), " ")
	for _, want := range []string{
		"eth1:8848 VI_1 51 backup (keeps a copy) running, waiting for the full table (not preempting) HMAC-SHA256 2 300 0 900 0 3ms",
		"198.51.100.1 master 5s ago (UNREACHABLE)",
		"198.51.100.3 backup never",
		"last takeover install: 290 entries in 20ms, 1m0s ago, ok",
		"sync datagrams dropped: auth 2",
	} {
		if !strings.Contains(norm, want) {
			t.Errorf("missing %q in:\n%s", want, b.String())
		}
	}
	j, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"connection_sync":{`, `"holding":true`, `"received":900`, `"last_install":{`} {
		if !strings.Contains(string(j), want) {
			t.Errorf("JSON lacks %s: %s", want, j)
		}
	}
}
