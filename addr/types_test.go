package addr

import (
	"net/netip"
	"strings"
	"testing"
	"vigil/internal/inet"
)

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Scope
		err  bool
	}{
		{"global", ScopeGlobal, false},
		{"site", ScopeSite, false},
		{"link", ScopeLink, false},
		{"host", ScopeHost, false},
		{"nowhere", ScopeNowhere, false},
		{"200", ScopeSite, false},
		{"galactic", 0, true},
		{"256", 0, true},
	} {
		got, err := ParseScope(tc.in)
		if (err != nil) != tc.err || (err == nil && got != tc.want) {
			t.Errorf("ParseScope(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestVIPString(t *testing.T) {
	v := VIP{Prefix: netip.MustParsePrefix("192.0.2.100/24"), Dev: "eth0", Brd: netip.MustParseAddr("192.0.2.255"), Label: "eth0:1", Scope: ScopeLink}
	if got, want := v.String(), "192.0.2.100/24 brd 192.0.2.255 dev eth0 scope link label eth0:1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestVIPPreferredLft(t *testing.T) {
	for _, tc := range []struct {
		v    VIP
		want uint32
	}{
		{VIP{Prefix: netip.MustParsePrefix("2001:db8::1/128")}, 0},
		{VIP{Prefix: netip.MustParsePrefix("2001:db8::1/64")}, Forever},
		{VIP{Prefix: netip.MustParsePrefix("2001:db8::1/128"), PreferredLftSet: true, PreferredLft: Forever}, Forever},
		{VIP{Prefix: netip.MustParsePrefix("2001:db8::1/64"), PreferredLftSet: true, PreferredLft: 30}, 30},
	} {
		if got := tc.v.preferredLft(); got != tc.want {
			t.Errorf("%v: preferred lifetime %d, want %d", tc.v, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	p4 := netip.MustParsePrefix("192.0.2.1/32")
	p6 := netip.MustParsePrefix("2001:db8::1/128")
	for _, tc := range []struct {
		name string
		err  error
		want string // substring of the error; "" means valid
	}{
		{"vip ok", VIP{Prefix: p4, Dev: "eth0"}.Validate(), ""},
		{"vip no dev", VIP{Prefix: p4}.Validate(), "no interface"},
		{"vip no addr", VIP{Dev: "eth0"}.Validate(), "no address"},
		{"vip v6 label", VIP{Prefix: p6, Dev: "eth0", Label: "eth0:1"}.Validate(), "label is only for IPv4"},
		{"vip v6 brd", VIP{Prefix: p6, Dev: "eth0", Brd: netip.MustParseAddr("192.0.2.255")}.Validate(), "brd is only for IPv4"},
		{"route ok", Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("192.0.2.254")}.Validate(), ""},
		{"route no dev or via", Route{Dst: netip.MustParsePrefix("198.51.100.0/24")}.Validate(), "needs a gateway"},
		{"route mixed", Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Via: netip.MustParseAddr("2001:db8::1")}.Validate(), "not of the destination's family"},
		{"blackhole ok", Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Type: Blackhole}.Validate(), ""},
		{"rule ok", Rule{From: netip.MustParsePrefix("198.51.100.0/24"), Table: 100}.Validate(), ""},
		{"rule no table", Rule{From: netip.MustParsePrefix("198.51.100.0/24")}.Validate(), "no table"},
		{"rule family", Rule{Family: inet.IPv6, From: netip.MustParsePrefix("198.51.100.0/24"), Table: 1}.Validate(), "does not match"},
	} {
		switch {
		case tc.want == "" && tc.err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, tc.err)
		case tc.want != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestRuleString(t *testing.T) {
	r := Rule{From: netip.MustParsePrefix("198.51.100.0/24"), Table: 100, Priority: 50, FwMark: 0x10, FwMask: 0xff}
	if got, want := r.String(), "priority 50 from 198.51.100.0/24 fwmark 0x10/0xff table 100"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Rule{Family: inet.IPv6, Table: 7}).String(), "inet6 from all table 7"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
