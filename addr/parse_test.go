package addr

import (
	"net/netip"
	"strings"
	"testing"
	"vigil/internal/inet"

	"github.com/google/go-cmp/cmp"
)

func TestBroadcast(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.100/24":  "192.0.2.255",
		"198.51.100.9/25": "198.51.100.127",
		"203.0.113.1/30":  "203.0.113.3",
		"203.0.113.1/31":  "invalid IP",
		"2001:db8::1/64":  "invalid IP",
	} {
		if got := Broadcast(netip.MustParsePrefix(in)).String(); got != want {
			t.Errorf("Broadcast(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParseRoute(t *testing.T) {
	a := netip.MustParseAddr
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		line string
		want Route
		err  string
	}{
		{line: "src 192.0.2.1 to 198.51.100.0/24 via 192.0.2.254 dev eth1",
			want: Route{Dst: p("198.51.100.0/24"), Src: a("192.0.2.1"), Via: a("192.0.2.254"), Dev: "eth1"}},
		{line: "198.51.100.0/24 dev eth2 no_track", want: Route{Dst: p("198.51.100.0/24"), Dev: "eth2"}},
		{line: "blackhole 203.0.113.0/24", want: Route{Dst: p("203.0.113.0/24"), Type: Blackhole}},
		{line: "0.0.0.0/0 gw 192.0.2.1 table 100", want: Route{Dst: p("0.0.0.0/0"), Via: a("192.0.2.1"), Table: 100}},
		{line: "default via 2001:db8::1 dev eth0 metric 10", want: Route{Dst: p("::/0"), Via: a("2001:db8::1"), Dev: "eth0", Metric: 10}},
		{line: "2001:db8:1::5 dev eth0 table main scope link onlink", want: Route{Dst: p("2001:db8:1::5/128"), Dev: "eth0", Table: 254, Scope: ScopeLink, OnLink: true}},
		{line: "198.51.100.0/24 via 192.0.2.254 or 192.0.2.253 dev eth1", err: `"or" is not supported`},
		{line: "198.51.100.0/24 dev eth0 mtu 1000", err: `"mtu" is not supported`},
		{line: "local 192.0.2.5 dev eth0", err: "route type local is not supported"},
		{line: "198.51.100.0/24 table bogus dev eth0", err: `table "bogus"`},
		{line: "198.51.100.0/24", err: "needs a gateway"},
		{line: "via 192.0.2.1", err: "no destination"},
		{line: "198.51.100.0/24 via", err: "via needs a value"},
	} {
		checkParse(t, "ParseRoute", ParseRoute, tc.line, tc.want, tc.err)
	}
}

// checkParse checks that parse reads line as want, or, when wantErr is
// not empty, fails with an error containing it.
func checkParse[T any](t *testing.T, name string, parse func([]string) (T, error), line string, want T, wantErr string) {
	t.Helper()
	got, err := parse(strings.Fields(line))
	switch {
	case wantErr != "":
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s(%q) = %+v, %v; want error containing %q", name, line, got, err, wantErr)
		}
	case err != nil:
		t.Errorf("%s(%q): %v", name, line, err)
	default:
		if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y }), cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
			t.Errorf("%s(%q) (-want +got):\n%s", name, line, diff)
		}
	}
}

func TestParseRule(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		line string
		want Rule
		err  string
	}{
		{line: "from 192.168.2.0/24 table 1", want: Rule{Family: inet.IPv4, From: p("192.168.2.0/24"), Table: 1}},
		{line: "to 192.168.2.0/24 table 1 no_track", want: Rule{Family: inet.IPv4, To: p("192.168.2.0/24"), Table: 1}},
		{line: "from 198.51.100.0/24 to 203.0.113.0/26 table 100 iif eth1 oif eth2 fwmark 24/12 preference 39",
			want: Rule{Family: inet.IPv4, From: p("198.51.100.0/24"), To: p("203.0.113.0/26"), Table: 100, IIF: "eth1", OIF: "eth2", FwMark: 24, FwMask: 12, Priority: 39}},
		{line: "inet6 from all lookup 7", want: Rule{Family: inet.IPv6, Table: 7}},
		{line: "from 2001:db8::1 table main", want: Rule{Family: inet.IPv6, From: p("2001:db8::1/128"), Table: 254}},
		{line: "from 192.0.2.0/24 table 1 goto 40", err: `"goto" is not supported`},
		{line: "inet6 from 192.0.2.0/24 table 1", err: "does not match"},
		{line: "from 192.0.2.0/24", err: "no table"},
		{line: "from 192.0.2.0/24 table 1 fwmark x", err: "fwmark"},
	} {
		checkParse(t, "ParseRule", ParseRule, tc.line, tc.want, tc.err)
	}
}
