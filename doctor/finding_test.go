package doctor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestReportText(t *testing.T) {
	rep := Report{Notes: []string{"daemon: none running"}, Findings: []Finding{
		{Code: "VD101", Severity: Ok, Instance: "VI_1", Interface: "eth0", Summary: "no firewall rule drops VRRP"},
		{Code: "VD301", Severity: Crit, Instance: "VI_1", Interface: "eth0", Summary: "Split brain.", Evidence: []string{"5 adverts from 192.0.2.2"}, Fix: "Allow VRRP."},
		{Code: "VD202", Severity: Info, Interface: "eth0", Summary: "Another VRID."},
	}}
	var b bytes.Buffer
	if err := WriteText(&b, rep); err != nil {
		t.Fatal(err)
	}
	want := `note: daemon: none running

CRITICAL
  VD301 [VI_1 on eth0] Split brain.
      seen: 5 adverts from 192.0.2.2
      fix:  Allow VRRP.

FOR INFORMATION
  VD202 [eth0] Another VRID.

CHECKED, NOTHING WRONG
  VD101 [VI_1 on eth0] no firewall rule drops VRRP

1 problem(s) found.
`
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"severity": "crit"`) {
		t.Errorf("JSON does not name severities: %s", b.String())
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if Problems(back.Findings) != 1 || back.Findings[1].Severity != Crit {
		t.Errorf("round trip: %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"findings":[{"severity":"bad"}]}`), &back); err == nil {
		t.Error("unknown severity accepted")
	}
}

func TestNftRuleTexts(t *testing.T) {
	text := `table inet filter { # handle 1
	set blocked { # handle 5
		type ipv4_addr
		elements = { 198.51.100.1 }
	}

	chain input { # handle 1
		type filter hook input priority filter; policy accept;
		ip saddr @blocked drop # handle 6
		ip protocol vrrp counter packets 3 bytes 60 drop # handle 7
	}
}
table netdev edge { # handle 2
	chain ingress { # handle 1
		type filter hook ingress device "eth0" priority filter; policy accept;
		ip protocol vrrp drop # handle 2
	}
}
`
	got := nftRuleTexts([]byte(text))
	want := map[string]string{
		"inet filter input 6":   "ip saddr @blocked drop",
		"inet filter input 7":   "ip protocol vrrp counter packets 3 bytes 60 drop",
		"netdev edge ingress 2": "ip protocol vrrp drop",
		"netdev edge ingress":   "eth0",
	}
	if len(got) != len(want) {
		t.Errorf("got %d rules, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestDiagnoseEmpty: no daemon, no config, no facts: one finding saying so,
// and no panic.
func TestDiagnoseEmpty(t *testing.T) {
	fs := Diagnose(&Input{})
	if got := codes(fs); len(got) != 1 || got[0] != "VD001/info" {
		t.Errorf("codes = %v, want [VD001/info]", got)
	}
}
