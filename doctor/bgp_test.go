package doctor

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"vigil/config"
	"vigil/control"
)

func TestCheckBGP(t *testing.T) {
	up := control.BGPPeerStatus{Peer: "192.0.2.1", Instance: "EDGE", RemoteAS: 65000, State: "Established", Since: now.Add(-time.Hour)}
	with := func(f func(*control.BGPPeerStatus)) control.BGPPeerStatus { s := up; f(&s); return s }
	down := func(e string) control.BGPPeerStatus {
		return with(func(s *control.BGPPeerStatus) {
			s.State, s.LastError, s.LastErrorAt, s.Since = "Active", e, now, now.Add(-time.Minute)
		})
	}
	nftDrop := Firewall{NftText: []byte("table inet f {\n chain in {\n  tcp dport 179 drop # handle 7\n }\n}\n")}
	withPassword := &config.Config{BGPInstances: []*config.BGPInstance{{Name: "EDGE", Neighbors: []*config.BGPNeighbor{{Addr: netip.MustParseAddr("192.0.2.1"), Password: "x"}}}}}
	for _, c := range []struct {
		name string
		s    control.BGPPeerStatus
		cfg  *config.Config
		fw   Firewall
		code string
		sev  Severity
	}{
		{"up", up, nil, Firewall{}, "VDA00", Ok},
		{"wrong AS", down("notification received: OPEN message error: bad peer AS"), nil, Firewall{}, "VDA01", Crit},
		{"router refuses our OPEN", down("the router refused our OPEN (a NOTIFICATION right after it; most often local_as is not the AS it expects for us)"), nil, Firewall{}, "VDA01", Crit},
		{"we refuse their AS", down("notification sent: OPEN message error: bad peer AS"), nil, Firewall{}, "VDA01", Crit},
		{"filtered", down("connect: dial tcp 192.0.2.1:179: i/o timeout"), nil, Firewall{}, "VDA02", Crit},
		{"filtered here", down(""), nil, nftDrop, "VDA02", Crit},
		{"md5", down("connect: dial tcp 192.0.2.1:179: i/o timeout"), withPassword, Firewall{}, "VDA03", Crit},
		{"refused", down("connect: dial tcp 192.0.2.1:179: connect: connection refused"), nil, Firewall{}, "VDA04", Crit},
		{"no route", down("connect: dial tcp 192.0.2.1:179: connect: network is unreachable"), nil, Firewall{}, "VDA05", Crit},
		{"flaps", with(func(s *control.BGPPeerStatus) { s.Flaps, s.Since = 2, now.Add(-time.Minute) }), nil, Firewall{}, "VDA06", Warn},
		{"long down", with(func(s *control.BGPPeerStatus) { s.State, s.Since = "Active", now.Add(-time.Minute) }), nil, Firewall{}, "VDA02", Warn},
		// Held down by vigil: not a TCP 179 problem, however long it lasts.
		{"BFD down", with(func(s *control.BGPPeerStatus) {
			s.State, s.Since, s.LastError, s.LastErrorAt = "Idle", now.Add(-time.Hour), "ADMIN_DOWN: admin-down", now
			s.HeldDown = "BFD session ROUTER: nothing received for 150ms (detection time)"
		}), nil, nftDrop, "VDA09", Crit},
		{"bfd_holddown", with(func(s *control.BGPPeerStatus) {
			s.State, s.Since, s.Flaps = "Idle", now.Add(-time.Hour), 3
			s.HeldDown = "bfd_holddown after 3 flaps of BFD session ROUTER: 7.9s more"
		}), nil, Firewall{}, "VDA09", Warn},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := &control.Status{BGPInstances: []control.BGPStatus{{Name: "EDGE", LocalAS: 65001, Sessions: []control.BGPPeerStatus{c.s}}}}
			fs := checkBGP(&Input{Now: now, Status: st, Config: c.cfg, Facts: &fakeFacts{fw: c.fw}})
			if len(fs) != 1 || fs[0].Code != c.code || fs[0].Severity != c.sev || fs[0].Instance != "EDGE" || fs[0].Summary == "" {
				t.Fatalf("got %+v, want one %s %v", fs, c.code, c.sev)
			}
			if c.name == "filtered here" && !strings.Contains(strings.Join(fs[0].Evidence, "\n"), "tcp dport 179 drop") {
				t.Errorf("the firewall rule is not quoted: %v", fs[0].Evidence)
			}
		})
	}
	if fs := checkBGP(&Input{Now: now, Status: &control.Status{}}); len(fs) != 0 {
		t.Errorf("findings without BGP: %v", fs)
	}
}
