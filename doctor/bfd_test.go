package doctor

import (
	"strings"
	"testing"
	"time"

	"vigil/control"
)

func TestCheckBFD(t *testing.T) {
	ms := func(n int) control.Duration { return control.Duration(time.Duration(n) * time.Millisecond) }
	up := control.BFDSessionStatus{Name: "gw", Peer: "192.0.2.254", State: "Up", RemoteState: "Up", Sent: 900, Received: 900,
		MinRx: ms(10), MinTx: ms(10), Multiplier: 3, RemoteMinRx: ms(10), RemoteMinTx: ms(10), RemoteMultiplier: 3,
		TxInterval: ms(10), RxInterval: ms(10), DetectTime: ms(30), Since: now.Add(-time.Hour), LastRx: now}
	with := func(f func(*control.BFDSessionStatus)) control.BFDSessionStatus { s := up; f(&s); return s }
	nftDrop := Firewall{NftText: []byte("table inet f {\n chain in {\n  udp dport 3784 drop # handle 7\n }\n}\n")}
	for _, c := range []struct {
		name string
		s    control.BFDSessionStatus
		fw   Firewall
		want map[string]Severity
	}{
		{"up", up, Firewall{}, map[string]Severity{"VD901": Ok}},
		{"never heard", with(func(s *control.BFDSessionStatus) { s.State, s.RemoteState, s.Received = "Down", "Down", 0 }), Firewall{},
			map[string]Severity{"VD901": Crit}},
		{"firewall", with(func(s *control.BFDSessionStatus) { s.State, s.RemoteState, s.Received = "Down", "Down", 0 }), nftDrop,
			map[string]Severity{"VD901": Crit, "VD902": Crit}},
		{"ttl", with(func(s *control.BFDSessionStatus) {
			s.State, s.Received, s.Drops = "Down", 0, map[string]uint64{"ttl": 40}
		}), Firewall{}, map[string]Severity{"VD901": Crit, "VD903": Warn}},
		{"init", with(func(s *control.BFDSessionStatus) { s.State, s.RemoteState = "Init", "Down" }), Firewall{},
			map[string]Severity{"VD904": Crit}},
		{"flaps", with(func(s *control.BFDSessionStatus) { s.Flaps, s.LastDownAt, s.LastDown = 4, now.Add(-time.Minute), "x" }), Firewall{},
			map[string]Severity{"VD905": Warn}},
		{"slower peer", with(func(s *control.BFDSessionStatus) {
			s.RemoteMinRx, s.TxInterval, s.DetectTime = ms(300), ms(300), ms(900)
		}), Firewall{},
			map[string]Severity{"VD905": Info}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &Input{Now: now, Status: &control.Status{BFD: []control.BFDSessionStatus{c.s}}, Facts: &fakeFacts{fw: c.fw}}
			got := map[string]Severity{}
			for _, f := range checkBFD(in) {
				got[f.Code] = f.Severity
				if f.Instance != "gw" || f.Summary == "" {
					t.Errorf("finding %+v", f)
				}
				if f.Code == "VD902" && !strings.Contains(strings.Join(f.Evidence, "\n"), "udp dport 3784 drop") {
					t.Errorf("VD902 does not quote the rule: %v", f.Evidence)
				}
			}
			if len(got) != len(c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			for code, sev := range c.want {
				if got[code] != sev {
					t.Errorf("%s: %v, want %v (all: %v)", code, got[code], sev, got)
				}
			}
		})
	}
}

// TestCheckBFDProcessRestarts: a BFD process that was restarted is
// reported, as a warning while it happens (during the capture, or none
// running) and as history otherwise.
func TestCheckBFDProcessRestarts(t *testing.T) {
	for _, c := range []struct {
		name           string
		now, before    *control.BFDRunnerStatus
		want           Severity
		wantNoFindings bool
	}{
		{"never", &control.BFDRunnerStatus{PID: 10}, nil, Ok, true},
		{"history", &control.BFDRunnerStatus{PID: 10, Restarts: 2}, &control.BFDRunnerStatus{PID: 10, Restarts: 2}, Info, false},
		{"during the capture", &control.BFDRunnerStatus{PID: 11, Restarts: 3}, &control.BFDRunnerStatus{PID: 10, Restarts: 2}, Warn, false},
		{"not running", &control.BFDRunnerStatus{Restarts: 1}, nil, Warn, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &control.Status{BFD: []control.BFDSessionStatus{{Name: "gw", Peer: "192.0.2.254", State: "Up", RemoteState: "Up"}}, BFDRunner: c.now}
			in := &Input{Now: now, Status: st, Facts: &fakeFacts{}}
			if c.before != nil {
				in.Before = &control.Status{BFDRunner: c.before}
			}
			var got *Finding
			for _, f := range checkBFD(in) {
				if f.Code == "VD906" {
					got = &f
				}
			}
			if c.wantNoFindings {
				if got != nil {
					t.Fatalf("VD906 without a restart: %+v", got)
				}
				return
			}
			if got == nil || got.Severity != c.want || got.Fix == "" {
				t.Fatalf("VD906 %+v, want severity %v", got, c.want)
			}
		})
	}
}
