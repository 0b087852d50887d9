package nft

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vigil/internal/ctflow"
	"vigil/internal/ctnl"
	"vigil/lb"
)

func flow(proto uint8, src, dst, rsrc, rdst string, state uint8) *ctflow.Entry {
	tuple := func(a, b string) ctflow.Tuple {
		x, y := netip.MustParseAddrPort(a), netip.MustParseAddrPort(b)
		return ctflow.Tuple{Src: x.Addr(), SrcPort: x.Port(), Dst: y.Addr(), DstPort: y.Port()}
	}
	e := &ctflow.Entry{Key: ctflow.Key{Proto: proto, Orig: tuple(src, dst)}, Reply: tuple(rsrc, rdst), Timeout: 300}
	if proto == 6 {
		e.TCPState = state
	}
	return e
}

// TestConnOf: conntrack entries map to the service they went through, with
// the FNAT local address, and the rest (not DNATed, other VIPs, DR) are
// left out; countConn counts the active ones per real server.
func TestConnOf(t *testing.T) {
	nat := natSvc("192.0.2.10", 80, lb.SelectNumgen, be("198.51.100.11:80", 1))
	nat.Name = "192.0.2.10:80/tcp"
	fnat := natSvc("192.0.2.20", 80, lb.SelectNumgen, be("198.51.100.12:80", 1))
	fnat.Name, fnat.Method = "192.0.2.20:80/tcp", lb.FNAT
	fwm := lb.Service{Name: "fwmark 7/udp", Proto: lb.UDP, FwMark: 7, Method: lb.NAT, Backends: []lb.Backend{be("198.51.100.13:0", 1)}}
	services := []lb.Service{nat, fnat, fwm}
	flows := []*ctflow.Entry{
		flow(6, "203.0.113.2:4000", "192.0.2.10:80", "198.51.100.11:80", "203.0.113.2:4000", 3),
		flow(6, "203.0.113.2:4001", "192.0.2.10:80", "198.51.100.11:80", "203.0.113.2:4001", 7),
		flow(6, "203.0.113.2:4002", "192.0.2.20:80", "198.51.100.12:80", "198.51.100.200:4002", 3),
		flow(17, "203.0.113.2:5000", "192.0.2.99:53", "198.51.100.13:53", "203.0.113.2:5000", 0),
		flow(6, "203.0.113.2:4003", "192.0.2.10:80", "192.0.2.10:80", "203.0.113.2:4003", 3),    // not DNATed
		flow(6, "203.0.113.2:4004", "192.0.2.30:80", "198.51.100.11:80", "203.0.113.2:4004", 3), // other VIP
	}
	var got []Conn
	for _, f := range flows {
		if c, ok := connOf(services, f); ok {
			got = append(got, c)
		}
	}
	ap := netip.MustParseAddrPort
	want := []Conn{
		{Service: nat.Name, Proto: "tcp", State: "ESTABLISHED", Expires: 5 * time.Minute, Client: ap("203.0.113.2:4000"), VIP: ap("192.0.2.10:80"), Real: ap("198.51.100.11:80")},
		{Service: nat.Name, Proto: "tcp", State: "TIME_WAIT", Expires: 5 * time.Minute, Client: ap("203.0.113.2:4001"), VIP: ap("192.0.2.10:80"), Real: ap("198.51.100.11:80")},
		{Service: fnat.Name, Proto: "tcp", State: "ESTABLISHED", Expires: 5 * time.Minute, Client: ap("203.0.113.2:4002"), VIP: ap("192.0.2.20:80"), Local: ap("198.51.100.200:4002"), Real: ap("198.51.100.12:80")},
		{Service: fwm.Name, Proto: "udp", Expires: 5 * time.Minute, Client: ap("203.0.113.2:5000"), VIP: ap("192.0.2.99:53"), Real: ap("198.51.100.13:53")},
	}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Errorf("connOf (-want +got):\n%s", d)
	}
	counts := map[string]map[netip.AddrPort]int{}
	for i := range got {
		countConn(counts, &got[i])
	}
	wantCounts := map[string]map[netip.AddrPort]int{
		nat.Name:  {ap("198.51.100.11:80"): 1},
		fnat.Name: {ap("198.51.100.12:80"): 1},
		fwm.Name:  {ap("198.51.100.13:53"): 1},
	}
	if d := cmp.Diff(wantCounts, counts, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); d != "" {
		t.Errorf("countConn (-want +got):\n%s", d)
	}
}

// TestStaleTo: the flush and the sweep pick the unanswered, reset and UDP
// flows of the real servers that left, and no others; a real server of a
// fwmark service (port 0) owns its flows on every port.
func TestStaleTo(t *testing.T) {
	nat := natSvc("192.0.2.10", 80, lb.SelectNumgen, be("198.51.100.11:80", 1), be("198.51.100.14:80", 1))
	nat.Name = "192.0.2.10:80/tcp"
	fwm := lb.Service{Name: "fwmark 7/tcp", Proto: lb.TCP, FwMark: 7, Method: lb.NAT, Backends: []lb.Backend{be("198.51.100.13:0", 1)}}
	f := staleTo{gone: []goneBackend{
		{svc: nat, rs: netip.MustParseAddrPort("198.51.100.11:80")},
		{svc: fwm, rs: netip.MustParseAddrPort("198.51.100.13:0")},
	}}
	for _, c := range []struct {
		name  string
		e     *ctflow.Entry
		of    int
		stale bool
	}{
		{"reset, gone server", flow(6, "203.0.113.2:4000", "192.0.2.10:80", "198.51.100.11:80", "203.0.113.2:4000", ctClose), 0, true},
		{"unanswered", flow(6, "203.0.113.2:4001", "192.0.2.10:80", "198.51.100.11:80", "203.0.113.2:4001", ctSynSent), 0, true},
		{"established stays", flow(6, "203.0.113.2:4002", "192.0.2.10:80", "198.51.100.11:80", "203.0.113.2:4002", 3), 0, false},
		{"server still there", flow(6, "203.0.113.2:4003", "192.0.2.10:80", "198.51.100.14:80", "203.0.113.2:4003", ctClose), -1, true},
		{"fwmark server, port 8443", flow(6, "203.0.113.2:4004", "192.0.2.99:8443", "198.51.100.13:8443", "203.0.113.2:4004", ctClose), 1, true},
		{"fwmark server, port 22", flow(6, "203.0.113.2:4005", "192.0.2.99:22", "198.51.100.13:22", "203.0.113.2:4005", ctSynSent2), 1, true},
	} {
		if got := f.of(c.e); got != c.of {
			t.Errorf("%s: of = %d, want %d", c.name, got, c.of)
		}
		if got := stale(c.e); got != c.stale {
			t.Errorf("%s: stale = %v, want %v", c.name, got, c.stale)
		}
	}
	want := []ctnl.Filter{{Proto: 6, ReplySrc: netip.MustParseAddr("198.51.100.11"), ReplySrcPort: 80}, {Proto: 6, ReplySrc: netip.MustParseAddr("198.51.100.13")}}
	if got := f.filters(); !slices.Equal(got, want) {
		t.Errorf("filters %+v, want %+v", got, want)
	}
}
