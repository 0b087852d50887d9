package doctor

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

var macRS = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x11}

func TestCheckDRPath(t *testing.T) {
	base := DRProbe{Service: "198.51.100.100:80", Real: netip.MustParseAddr("198.51.100.11"), RealMAC: macRS.String(), Interface: "eth0",
		Own: netip.MustParseAddr("198.51.100.1"), Spoofed: netip.MustParseAddr("198.51.100.254"), Sent: 3, Wait: "1s"}
	tests := []struct {
		name    string
		mod     func(p *DRProbe)
		want    string
		summary string
	}{
		{"both answered", func(p *DRProbe) { p.ControlAnswered, p.SpoofAnswered, p.SpoofSeen = true, true, "ARP" }, "VD705/ok", "reach real server 198.51.100.11"},
		{"spoofed dropped", func(p *DRProbe) { p.ControlAnswered, p.ControlSeen = true, "SYN-ACK" }, "VD705/crit", "anti-spoofing filter"},
		{"nothing answers", func(p *DRProbe) {}, "VD706/warn", "even from this host's own address"},
		{"probe failed", func(p *DRProbe) { p.Err = "no free address" }, "VD705/info", "could not be probed: no free address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.mod(&p)
			fs := checkDRPath(&Input{DRProbes: []DRProbe{p}})
			if got := codes(fs); len(got) != 1 || got[0] != tt.want || !strings.Contains(fs[0].Summary, tt.summary) {
				t.Errorf("got %v %+v, want %s saying %q", got, fs, tt.want, tt.summary)
			}
		})
	}
}
