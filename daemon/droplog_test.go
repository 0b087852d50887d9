package daemon

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"vigil/vrrp"
)

type logLine struct {
	Msg    string `json:"msg"`
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
}

func logLines(t *testing.T, buf *bytes.Buffer) []logLine {
	t.Helper()
	var out []logLine
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var ll logLine
		if err := json.Unmarshal([]byte(l), &ll); err != nil {
			t.Fatal(err)
		}
		out = append(out, ll)
	}
	buf.Reset()
	return out
}

// A storm of bad adverts gives one line per reason at once, then one line
// per reason per interval with the count, and nothing once it stops.
func TestDropLogStorm(t *testing.T) {
	var buf bytes.Buffer
	l := dropLog{log: slog.New(slog.NewJSONHandler(&buf, nil))}
	src := netip.MustParseAddr("192.0.2.9")
	drop := func(r vrrp.DropReason) error { return &vrrp.DropError{Reason: r, Src: src, Detail: "x"} }
	t0 := time.Unix(1000, 0)
	now := t0
	// 25 s of storm: 1,000 bad-TTL and 500 bad-checksum adverts a second.
	for ms := 0; ms < 25000; ms++ {
		now = t0.Add(time.Duration(ms) * time.Millisecond)
		if next := l.next(); !next.IsZero() && !now.Before(next) {
			l.flush(now)
		}
		l.note(now, "VI_1", drop(vrrp.DropTTL))
		if ms%2 == 0 {
			l.note(now, "VI_1", drop(vrrp.DropChecksum))
		}
		l.note(now, "VI_1", drop(vrrp.DropInactive)) // valid adverts: not reported
		l.note(now, "VI_1", drop(vrrp.DropOwn))
	}
	lines := logLines(t, &buf)
	count := map[string][]uint64{}
	for _, ll := range lines {
		count[ll.Reason] = append(count[ll.Reason], ll.Count)
	}
	// First drop at once (no count), then at 10 s and 20 s the counts.
	if got := count["ttl"]; len(got) != 3 || got[0] != 0 || got[1] != 9999 || got[2] != 10000 {
		t.Errorf("ttl lines: counts %v, want [0 9999 10000] (first at once, then one per 10 s)", got)
	}
	if got := count["checksum"]; len(got) != 3 || got[1] != 4999 || got[2] != 5000 {
		t.Errorf("checksum lines: counts %v, want [0 4999 5000]", got)
	}
	if len(count) != 2 {
		t.Errorf("reasons logged: %v, want ttl and checksum only", count)
	}
	// The storm stops: the last 5 s are reported at the window's end, and
	// then nothing more is scheduled.
	now = now.Add(10 * time.Second)
	l.flush(now)
	lines = logLines(t, &buf)
	if len(lines) != 2 || lines[0].Count == 0 {
		t.Errorf("after the storm: %+v, want the last window's ttl and checksum counts", lines)
	}
	l.flush(now.Add(10 * time.Second))
	if !l.next().IsZero() || len(logLines(t, &buf)) != 0 {
		t.Errorf("a quiet log still wants a wake-up at %v or wrote lines", l.next())
	}
	// A later single drop is logged at once again.
	l.note(now.Add(time.Minute), "VI_1", drop(vrrp.DropTTL))
	if lines := logLines(t, &buf); len(lines) != 1 || lines[0].Reason != "ttl" {
		t.Errorf("a new drop after quiet: %+v, want one line at once", lines)
	}
}
