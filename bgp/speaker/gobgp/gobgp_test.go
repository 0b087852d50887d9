package gobgp

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"vigil/bgp/speaker"
	"vigil/internal/labtest"
)

func TestNotificationText(t *testing.T) {
	for _, c := range []struct {
		code, sub int
		want      string
	}{
		{2, 2, "OPEN message error: bad peer AS"},
		{4, 0, "hold timer expired"},
		{6, 4, "cease: administrative reset"},
		{3, 9, "UPDATE message error, subcode 9"},
		{9, 1, "code 9, subcode 1"},
	} {
		if got := notificationText(c.code, c.sub); got != c.want {
			t.Errorf("notificationText(%d, %d) = %q, want %q", c.code, c.sub, got, c.want)
		}
	}
}

// TestLogHookRecordsErrors: the errors gobgp only logs reach the session.
func TestLogHookRecordsErrors(t *testing.T) {
	buf := &labtest.Buffer{}
	changes := 0
	sp := New(speaker.Config{Name: "E", Neighbors: []speaker.Neighbor{{Addr: mustAddr("192.0.2.1"), RemoteAS: 1}}}, slog.New(slog.NewTextHandler(buf, nil)), func() { changes++ }).(*Engine)
	h := &logHook{next: sp.log.Handler(), sp: sp}
	l := slog.New(h).With("Key", "192.0.2.1")
	l.Debug("failed to connect", "Error", "dial tcp 192.0.2.1:179: i/o timeout")
	if s := sp.Sessions()[0]; s.LastError != "connect: dial tcp 192.0.2.1:179: i/o timeout" {
		t.Errorf("last error = %q", s.LastError)
	}
	l.Info("received notification", "Code", 2, "Subcode", 2)
	if s := sp.Sessions()[0]; s.LastError != "notification received: OPEN message error: bad peer AS" {
		t.Errorf("last error = %q", s.LastError)
	}
	l.Info("sent notification", "Code", 6, "Subcode", 3)
	if s := sp.Sessions()[0]; s.LastError != "notification received: OPEN message error: bad peer AS" {
		t.Errorf("our own Cease replaced the last error: %q", s.LastError)
	}
	l.Debug("state changed", "old", "BGP_FSM_OPENCONFIRM", "new", "BGP_FSM_IDLE", "reason", "invalid-msg")
	if s := sp.Sessions()[0]; !strings.Contains(s.LastError, "refused our OPEN") {
		t.Errorf("last error after a refused OPEN = %q", s.LastError)
	}
	if changes != 3 {
		t.Errorf("%d changes reported for 3 new errors", changes)
	}
	_ = h.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelWarn, "something", 0))
	if buf.String() == "" {
		t.Error("warnings are not forwarded to the daemon's log")
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
