package doctor

import (
	"strings"
	"testing"

	"vigil/control"
)

// A director's metrics as `vigil run --metrics` serves them, with one
// virtual server: the table digest and the real servers' state.
func peerMetrics(digest string, weight2 string, up3 bool) string {
	u3 := "0"
	if up3 {
		u3 = "1"
	}
	return `# HELP vigil_virtual_server_table_info 1, labelled with the digest.
# TYPE vigil_virtual_server_table_info gauge
vigil_virtual_server_table_info{digest="` + digest + `",virtual_server="203.0.113.100:80/tcp"} 1
vigil_real_server_up{real_server="198.51.100.11:80",virtual_server="203.0.113.100:80/tcp"} 1
vigil_real_server_up{real_server="198.51.100.12:80",virtual_server="203.0.113.100:80/tcp"} 1
vigil_real_server_up{real_server="198.51.100.13:80",virtual_server="203.0.113.100:80/tcp"} ` + u3 + `
vigil_real_server_weight{real_server="198.51.100.11:80",virtual_server="203.0.113.100:80/tcp"} 1
vigil_real_server_weight{real_server="198.51.100.12:80",virtual_server="203.0.113.100:80/tcp"} ` + weight2 + `
vigil_real_server_weight{real_server="198.51.100.13:80",virtual_server="203.0.113.100:80/tcp"} 3
`
}

func TestCheckTables(t *testing.T) {
	st := &control.Status{Services: []control.ServiceStatus{{Name: "203.0.113.100:80/tcp", TableDigest: "aaaa000011112222", RealServers: []control.RealStatus{
		{Addr: "198.51.100.11:80", Weight: 1, Up: true}, {Addr: "198.51.100.12:80", Weight: 2, Up: true}, {Addr: "198.51.100.13:80", Weight: 3, Up: true}}}}}
	for _, c := range []struct {
		name     string
		peer     PeerTables
		code     string
		sev      Severity
		evidence string
	}{
		{"agree", ParsePeerMetrics("198.51.100.2:9650", strings.NewReader(peerMetrics("aaaa000011112222", "2", true))), "VDA07", Ok, ""},
		{"another weight", ParsePeerMetrics("198.51.100.2:9650", strings.NewReader(peerMetrics("bbbb000011112222", "5", true))), "VDA07", Crit, "198.51.100.2:9650: 198.51.100.12:80 up weight 5"},
		{"a real server down there", ParsePeerMetrics("198.51.100.2:9650", strings.NewReader(peerMetrics("cccc000011112222", "2", false))), "VDA07", Crit, "198.51.100.2:9650: 198.51.100.13:80 down"},
		{"not vigil", ParsePeerMetrics("198.51.100.2:9650", strings.NewReader("go_goroutines 7\n")), "VDA08", Warn, ""},
		{"unreachable", PeerTables{Addr: "198.51.100.2:9650", Err: "dial tcp 198.51.100.2:9650: connect: connection refused"}, "VDA08", Warn, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := checkTables(&Input{Status: st, Peers: []PeerTables{c.peer}})
			if len(fs) != 1 || fs[0].Code != c.code || fs[0].Severity != c.sev {
				t.Fatalf("findings %+v, want one %s %v", fs, c.code, c.sev)
			}
			if c.evidence != "" && !strings.Contains(strings.Join(fs[0].Evidence, "\n"), c.evidence) {
				t.Errorf("evidence %q does not show %q", fs[0].Evidence, c.evidence)
			}
		})
	}
	if fs := checkTables(&Input{Status: st}); len(fs) != 0 {
		t.Errorf("no --peer: findings %+v", fs)
	}
	if fs := checkTables(&Input{Peers: []PeerTables{{Addr: "x:1"}}}); len(fs) != 1 || fs[0].Code != "VDA08" {
		t.Errorf("no daemon here: findings %+v, want VDA08", fs)
	}
}
