package nft

import (
	"net/netip"
	"testing"
	"time"

	"vigil/lb"
)

// TestParseDRFlows reads nft 1.0.6's JSON of a map of remembered flows:
// an element a SYN made (its own timeout), one a later packet refreshed,
// one of an all-ports service (the service port in the key).
func TestParseDRFlows(t *testing.T) {
	raw := []byte(`{"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
 {"map": {"family": "netdev", "name": "vs_192_0_2_100_80_tcp_flows", "table": "vigil", "type": ["ipv4_addr", "inet_service"],
  "map": "ether_addr", "size": 65535, "flags": ["timeout"], "timeout": 900, "elem": [
  [{"elem": {"val": {"concat": ["192.0.2.1", 3000]}, "timeout": 60, "expires": 58}}, "02:00:00:00:00:01"],
  [{"elem": {"val": {"concat": ["192.0.2.2", 3001]}, "expires": 899}}, "02:00:00:00:00:02"],
  [{"elem": {"val": {"concat": ["192.0.2.3", 3002, 8080]}, "expires": 100}}, "02:00:00:00:00:03"]]}}]}`)
	got, err := parseDRFlows(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []drFlow{
		{client: netip.MustParseAddrPort("192.0.2.1:3000"), mac: lb.MAC{2, 0, 0, 0, 0, 1}, timeout: time.Minute, expires: 58 * time.Second},
		{client: netip.MustParseAddrPort("192.0.2.2:3001"), mac: lb.MAC{2, 0, 0, 0, 0, 2}, expires: 899 * time.Second},
		{client: netip.MustParseAddrPort("192.0.2.3:3002"), dport: 8080, mac: lb.MAC{2, 0, 0, 0, 0, 3}, expires: 100 * time.Second},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("element %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{
		`{"nftables": [{"map": {"elem": [[{"elem": {"val": {"concat": ["192.0.2.1"]}}}, "02:00:00:00:00:01"]]}}]}`,
		`{"nftables": [{"map": {"elem": [[{"elem": {"val": {"concat": ["192.0.2.1", 1]}}}, "not a mac"]]}}]}`,
		`{"nftables": [{"map": {"elem": [[{"elem": {"val": {"concat": ["nowhere", 1]}}}, "02:00:00:00:00:01"]]}}]}`,
	} {
		if _, err := parseDRFlows([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
