package lb

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
	"vigil/internal/inet"

	"github.com/google/go-cmp/cmp"
)

var vip = netip.MustParseAddr("192.0.2.100")

func rs(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 80)
}

// svc is a wrr service on 192.0.2.100:80 with real servers 10.0.0.1..n,
// weight 1 each.
func svc(n int, opts ...func(*ServiceConfig)) ServiceConfig {
	c := ServiceConfig{Proto: TCP, VIP: vip, Port: 80, Scheduler: "wrr"}
	for i := 1; i <= n; i++ {
		c.RealServers = append(c.RealServers, RealServerConfig{Addr: rs(i).Addr(), Port: 80, Weight: 1})
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// pool renders the backends of a service: "10.0.0.1:80=1 10.0.0.2:80=2 |
// drain 10.0.0.3:80", "sorry" marks the sorry server.
func pool(s Service) string {
	var b strings.Builder
	list := func(bs []Backend, weights bool) {
		for i, x := range bs {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(x.AddrPort().String())
			if weights {
				fmt.Fprintf(&b, "=%d", x.Weight)
			}
			if x.Sorry {
				b.WriteString("(sorry)")
			}
		}
	}
	list(s.Backends, true)
	if len(s.Draining) > 0 {
		b.WriteString(" | drain ")
		list(s.Draining, false)
	}
	return b.String()
}

func mustNew(t testing.TB, cfgs ...ServiceConfig) *Model {
	t.Helper()
	m, err := New(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type step struct {
	rs     int  // real server 10.0.0.rs:80
	up     bool // its verdict
	weight int  // -1 configured
	events string
	pool   string
}

func TestQuorumInhibitSorry(t *testing.T) {
	sorry := netip.MustParseAddrPort("10.9.9.9:8080")
	const name = "192.0.2.100:80/tcp"
	tests := []struct {
		name  string
		cfg   ServiceConfig
		start string // pool before any step
		steps []step
	}{{
		name:  "a failed server is removed and comes back",
		cfg:   svc(2),
		start: "10.0.0.1:80=1 10.0.0.2:80=1",
		steps: []step{
			{rs: 1, up: false, weight: -1, pool: "10.0.0.2:80=1"},
			{rs: 1, up: true, weight: -1, pool: "10.0.0.1:80=1 10.0.0.2:80=1"},
		},
	}, {
		name: "inhibit_on_failure keeps a failed server at weight 0",
		cfg: svc(2, func(c *ServiceConfig) {
			c.RealServers[0].InhibitOnFailure = true
		}),
		start: "10.0.0.1:80=1 10.0.0.2:80=1",
		steps: []step{
			{rs: 1, up: false, weight: -1, pool: "10.0.0.2:80=1 | drain 10.0.0.1:80"},
			{rs: 2, up: false, weight: -1, events: "quorum down (weight 0, quorum 1±0)", pool: " | drain 10.0.0.1:80"},
			{rs: 2, up: true, weight: -1, events: "quorum up (weight 1, quorum 1±0)", pool: "10.0.0.2:80=1 | drain 10.0.0.1:80"},
		},
	}, {
		name: "quorum 3 hysteresis 1: lost below 2, regained at 4, sorry server in between",
		cfg: svc(4, func(c *ServiceConfig) {
			c.Quorum, c.Hysteresis, c.Sorry = 3, 1, sorry
		}),
		start: "10.0.0.1:80=1 10.0.0.2:80=1 10.0.0.3:80=1 10.0.0.4:80=1",
		steps: []step{
			{rs: 1, up: false, weight: -1, pool: "10.0.0.2:80=1 10.0.0.3:80=1 10.0.0.4:80=1"},
			{rs: 2, up: false, weight: -1, pool: "10.0.0.3:80=1 10.0.0.4:80=1"},
			{rs: 3, up: false, weight: -1, events: "quorum down (weight 1, quorum 3±1)", pool: "10.9.9.9:8080=1(sorry)"},
			{rs: 1, up: true, weight: -1, pool: "10.9.9.9:8080=1(sorry)"},
			{rs: 2, up: true, weight: -1, pool: "10.9.9.9:8080=1(sorry)"},
			{rs: 3, up: true, weight: -1, events: "quorum up (weight 4, quorum 3±1)", pool: "10.0.0.1:80=1 10.0.0.2:80=1 10.0.0.3:80=1 10.0.0.4:80=1"},
		},
	}, {
		name: "hysteresis 0: lost just below the quorum, regained at it",
		cfg: svc(3, func(c *ServiceConfig) {
			c.Quorum, c.Sorry = 2, sorry
		}),
		start: "10.0.0.1:80=1 10.0.0.2:80=1 10.0.0.3:80=1",
		steps: []step{
			{rs: 1, up: false, weight: -1, pool: "10.0.0.2:80=1 10.0.0.3:80=1"},
			{rs: 2, up: false, weight: -1, events: "quorum down (weight 1, quorum 2±0)", pool: "10.9.9.9:8080=1(sorry)"},
			{rs: 2, up: true, weight: -1, events: "quorum up (weight 2, quorum 2±0)", pool: "10.0.0.2:80=1 10.0.0.3:80=1"},
		},
	}, {
		name: "a hysteresis above the quorum loses it only at weight 0",
		cfg: svc(2, func(c *ServiceConfig) {
			c.Quorum, c.Hysteresis, c.Sorry = 1, 5, sorry
		}),
		start: "10.0.0.1:80=1 10.0.0.2:80=1",
		steps: []step{
			{rs: 1, up: false, weight: -1, pool: "10.0.0.2:80=1"},
			{rs: 2, up: false, weight: -1, events: "quorum down (weight 0, quorum 1±5)", pool: "10.9.9.9:8080=1(sorry)"},
			{rs: 2, up: true, weight: 6, events: "quorum up (weight 6, quorum 1±5)", pool: "10.0.0.2:80=6"},
		},
	}, {
		name: "while the sorry server serves, inhibited real servers drain at weight 0",
		cfg: svc(2, func(c *ServiceConfig) {
			c.Quorum, c.Sorry = 2, sorry
			c.RealServers[1].InhibitOnFailure = true
		}),
		start: "10.0.0.1:80=1 10.0.0.2:80=1",
		steps: []step{
			{rs: 1, up: false, weight: -1, events: "quorum down (weight 1, quorum 2±0)", pool: "10.9.9.9:8080=1(sorry) | drain 10.0.0.2:80"},
			{rs: 1, up: true, weight: -1, events: "quorum up (weight 2, quorum 2±0)", pool: "10.0.0.1:80=1 10.0.0.2:80=1"},
		},
	}, {
		name: "sorry_server_inhibit keeps the sorry server at weight 0 while the quorum holds",
		cfg: svc(1, func(c *ServiceConfig) {
			c.Sorry, c.SorryInhibit = sorry, true
		}),
		start: "10.0.0.1:80=1 | drain 10.9.9.9:8080(sorry)",
		steps: []step{
			{rs: 1, up: false, weight: -1, events: "quorum down (weight 0, quorum 1±0)", pool: "10.9.9.9:8080=1(sorry)"},
			{rs: 1, up: true, weight: -1, events: "quorum up (weight 1, quorum 1±0)", pool: "10.0.0.1:80=1 | drain 10.9.9.9:8080(sorry)"},
		},
	}, {
		name: "without a sorry server a lost quorum is only an event",
		cfg: svc(3, func(c *ServiceConfig) {
			c.Quorum = 3
		}),
		start: "10.0.0.1:80=1 10.0.0.2:80=1 10.0.0.3:80=1",
		steps: []step{
			{rs: 1, up: false, weight: -1, events: "quorum down (weight 2, quorum 3±0)", pool: "10.0.0.2:80=1 10.0.0.3:80=1"},
			{rs: 1, up: true, weight: -1, events: "quorum up (weight 3, quorum 3±0)", pool: "10.0.0.1:80=1 10.0.0.2:80=1 10.0.0.3:80=1"},
		},
	}, {
		name: "MISC_CHECK dynamic weights count toward the quorum; 0 drains; -1 restores",
		cfg: svc(2, func(c *ServiceConfig) {
			c.Quorum, c.Sorry = 5, sorry
			c.RealServers[0].Weight, c.RealServers[1].Weight = 3, 3
		}),
		start: "10.0.0.1:80=3 10.0.0.2:80=3",
		steps: []step{
			{rs: 1, up: true, weight: 0, events: "quorum down (weight 3, quorum 5±0)", pool: "10.9.9.9:8080=1(sorry)"},
			{rs: 2, up: true, weight: 10, events: "quorum up (weight 10, quorum 5±0)", pool: "10.0.0.2:80=10 | drain 10.0.0.1:80"},
			{rs: 1, up: true, weight: -1, pool: "10.0.0.1:80=3 10.0.0.2:80=10"},
			{rs: 1, up: true, weight: -1, pool: "10.0.0.1:80=3 10.0.0.2:80=10"},
		},
	}, {
		name: "alpha servers start down, without an event; the first success raises the quorum",
		cfg: svc(2, func(c *ServiceConfig) {
			c.Sorry = sorry
			c.RealServers[0].Alpha, c.RealServers[1].Alpha = true, true
		}),
		start: "10.9.9.9:8080=1(sorry)",
		steps: []step{
			{rs: 1, up: false, weight: -1, pool: "10.9.9.9:8080=1(sorry)"},
			{rs: 2, up: true, weight: -1, events: "quorum up (weight 1, quorum 1±0)", pool: "10.0.0.2:80=1"},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustNew(t, tt.cfg)
			if got := pool(m.Desired().Services[0]); got != tt.start {
				t.Fatalf("start: pool %q, want %q", got, tt.start)
			}
			for i, s := range tt.steps {
				evs, err := m.SetHealth(name, rs(s.rs), s.up, s.weight)
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				var got []string
				for _, e := range evs {
					got = append(got, strings.TrimPrefix(e.String(), name+": "))
				}
				if g := strings.Join(got, "; "); g != s.events {
					t.Errorf("step %d (%v up=%v w=%d): events %q, want %q", i, rs(s.rs), s.up, s.weight, g, s.events)
				}
				d := m.Desired().Services[0]
				if g := pool(d); g != s.pool {
					t.Errorf("step %d (%v up=%v w=%d): pool %q, want %q", i, rs(s.rs), s.up, s.weight, g, s.pool)
				}
				if d.Sorry != strings.Contains(s.pool, "=1(sorry)") {
					t.Errorf("step %d: Service.Sorry = %v", i, d.Sorry)
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  func(*ServiceConfig)
		want string
	}{
		{func(c *ServiceConfig) { c.FwMark = 1 }, "both a VIP and a fwmark"},
		{func(c *ServiceConfig) { c.VIP = netip.Addr{} }, "neither a VIP nor a fwmark"},
		{func(c *ServiceConfig) { c.Port = 0 }, "needs persistence_timeout"},
		{func(c *ServiceConfig) { c.Scheduler = "fastest" }, `unknown scheduler "fastest"`},
		{func(c *ServiceConfig) { c.Method = FNAT }, "FNAT needs local addresses"},
		{func(c *ServiceConfig) { c.Quorum = -1 }, "negative quorum"},
		{func(c *ServiceConfig) { c.PersistenceMask = 33 }, "/33 out of range"},
		{func(c *ServiceConfig) { c.MaglevSize = 65536 }, "not a prime"},
		{func(c *ServiceConfig) { c.MaglevSize = 1 }, "not a prime"},
		{func(c *ServiceConfig) { c.MaglevSize = 2; c.Sorry = rs(9) }, "smaller than its 3 servers"},
		{func(c *ServiceConfig) { c.VIP, c.FwMark, c.Family = netip.Addr{}, 1, 2 }, "unknown family 2"},
		{func(c *ServiceConfig) { c.RealServers[0].UThreshold = -1 }, "negative connection threshold"},
		{func(c *ServiceConfig) { c.RealServers[1].Weight = -1 }, "10.0.0.2:80: weight -1"},
		{func(c *ServiceConfig) { c.RealServers[1] = c.RealServers[0] }, "10.0.0.1:80 configured twice"},
		{func(c *ServiceConfig) { c.RealServers[0].Addr = netip.MustParseAddr("2001:db8::1") }, "[2001:db8::1]:80 is not IPv4"},
		{func(c *ServiceConfig) { c.Sorry = rs(2) }, "also the sorry server"},
		{func(c *ServiceConfig) { c.Sorry = netip.MustParseAddrPort("[::1]:80") }, "sorry server [::1]:80 is not IPv4"},
	}
	for _, tt := range tests {
		c := svc(2)
		tt.cfg(&c)
		_, err := New([]ServiceConfig{c})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v", tt.want, err)
		}
	}
	if _, err := New([]ServiceConfig{svc(1), svc(2)}); err == nil || !strings.Contains(err.Error(), "configured twice") {
		t.Errorf("duplicate service: %v", err)
	}
	m := mustNew(t, svc(1))
	if _, err := m.SetHealth("nope", rs(1), true, -1); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown service: %v", err)
	}
	if _, err := m.SetHealth("192.0.2.100:80/tcp", rs(7), true, -1); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown real server: %v", err)
	}
	if _, err := m.SetHealth("192.0.2.100:80/tcp", rs(1), true, -2); err == nil {
		t.Error("weight -2 accepted")
	}
}

func TestNamesAndIDs(t *testing.T) {
	tests := []struct {
		cfg      ServiceConfig
		name, id string
	}{
		{ServiceConfig{VIP: vip, Port: 80}, "192.0.2.100:80/tcp", "vs_192_0_2_100_80_tcp"},
		{ServiceConfig{VIP: netip.MustParseAddr("2001:db8::1"), Port: 443, Proto: UDP}, "[2001:db8::1]:443/udp", "vs_20010db8000000000000000000000001_443_udp"},
		{ServiceConfig{FwMark: 7}, "fwmark 7/tcp", "fwm_7_tcp"},
		{ServiceConfig{FwMark: 7, Family: inet.IPv6, Proto: SCTP}, "fwmark 7/sctp ip6", "fwm6_7_sctp"},
	}
	for _, tt := range tests {
		if n, id := tt.cfg.Name(), tt.cfg.id(); n != tt.name || id != tt.id {
			t.Errorf("got %q %q, want %q %q", n, id, tt.name, tt.id)
		}
	}
	// An IPv4-mapped VIP is the IPv4 service.
	m := mustNew(t, svc(1, func(c *ServiceConfig) { c.VIP = netip.MustParseAddr("::ffff:192.0.2.100") }))
	if s := m.Desired().Services[0]; s.Name != "192.0.2.100:80/tcp" || s.Family != inet.IPv4 {
		t.Errorf("mapped VIP: %s %v", s.Name, s.Family)
	}
}

func TestReloadKeepsState(t *testing.T) {
	m := mustNew(t, svc(3, func(c *ServiceConfig) { c.Quorum = 2 }))
	const name = "192.0.2.100:80/tcp"
	m.SetHealth(name, rs(1), false, -1)
	m.SetHealth(name, rs(2), true, 5)
	m.SetActive(vip, false)
	// Reload: server 3 leaves, server 4 arrives (up), quorum rises to 7.
	c := svc(4, func(c *ServiceConfig) { c.Quorum = 7 })
	c.RealServers = append(c.RealServers[:2], c.RealServers[3])
	evs, err := m.Configure([]ServiceConfig{c})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Kind != QuorumDown || evs[0].Weight != 6 {
		t.Errorf("events %v, want quorum down at weight 6", evs)
	}
	d := m.Desired().Services[0]
	if got, want := pool(d), "10.0.0.2:80=5 10.0.0.4:80=1"; got != want {
		t.Errorf("pool %q, want %q", got, want)
	}
	if d.Active {
		t.Error("reload made an inactive service active")
	}
	// A failed reload changes nothing.
	bad := c
	bad.Scheduler = "nope"
	if _, err := m.Configure([]ServiceConfig{bad}); err == nil {
		t.Fatal("bad reload accepted")
	}
	if got := pool(m.Desired().Services[0]); got != "10.0.0.2:80=5 10.0.0.4:80=1" {
		t.Errorf("after a failed reload: pool %q", got)
	}
}

func TestActiveAndGeneration(t *testing.T) {
	other := svc(1, func(c *ServiceConfig) { c.VIP = netip.MustParseAddr("192.0.2.200"); c.Inactive = true })
	fw := ServiceConfig{FwMark: 3, Scheduler: "rr", RealServers: []RealServerConfig{{Addr: rs(1).Addr(), Weight: 1}}}
	m := mustNew(t, svc(1), svc(1, func(c *ServiceConfig) { c.Proto = UDP }), other, fw)
	active := func() string {
		var s []string
		for _, x := range m.Desired().Services {
			s = append(s, fmt.Sprintf("%s=%v", x.Name, x.Active))
		}
		return strings.Join(s, " ")
	}
	if got, want := active(), "192.0.2.100:80/tcp=true 192.0.2.100:80/udp=true 192.0.2.200:80/tcp=false fwmark 3/tcp=true"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	g := m.Generation()
	if n := m.SetActive(vip, false); n != 2 {
		t.Errorf("SetActive matched %d services, want 2", n)
	}
	if g2 := m.Generation(); g2 == g {
		t.Error("SetActive did not change the generation")
	} else if m.SetActive(vip, false); m.Generation() != g2 {
		t.Errorf("generation %d, want %d: a repeated SetActive is not a change", m.Generation(), g2)
	}
	if err := m.SetServiceActive("fwmark 3/tcp", false); err != nil {
		t.Fatal(err)
	}
	if got, want := active(), "192.0.2.100:80/tcp=false 192.0.2.100:80/udp=false 192.0.2.200:80/tcp=false fwmark 3/tcp=false"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestDRAndFNAT(t *testing.T) {
	dr := svc(2, func(c *ServiceConfig) { c.Method, c.Interface, c.Scheduler = DR, "eth0", "wrr" })
	fnat := svc(1, func(c *ServiceConfig) {
		c.VIP, c.Method = netip.MustParseAddr("192.0.2.1"), FNAT
		c.LocalAddrs = []netip.Addr{netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.1.0.2")}
		c.Interface = "eth0" // ignored: not DR
	})
	persistent := svc(1, func(c *ServiceConfig) {
		c.VIP, c.Port, c.Method, c.Persistence, c.PersistenceMask = netip.MustParseAddr("192.0.2.2"), 0, DR, time.Minute, 24
	})
	m := mustNew(t, dr, fnat, persistent)
	mac := MAC{0x02, 0, 0, 0, 0, 1}
	if !m.SetMAC(rs(1).Addr(), mac) || m.SetMAC(rs(1).Addr(), mac) {
		t.Error("SetMAC should report one change")
	}
	d := m.Desired()
	f, p, r := d.Services[0], d.Services[1], d.Services[2]
	if f.Name != "192.0.2.1:80/tcp" || p.Name != "192.0.2.2:0/tcp" || r.Name != "192.0.2.100:80/tcp" {
		t.Fatalf("order: %s %s %s", f.Name, p.Name, r.Name)
	}
	if r.Selection != SelectMaglev || r.Hash != HashFlow || len(r.Maglev) != MaglevSizeFor(2) || r.Interface != "eth0" {
		t.Errorf("DR wrr: selection %v hash %v table %d iface %q", r.Selection, r.Hash, len(r.Maglev), r.Interface)
	}
	if r.Backends[0].MAC != mac || !r.Backends[1].MAC.IsZero() || r.Backends[0].MAC.String() != "02:00:00:00:00:01" {
		t.Errorf("MACs %v %v", r.Backends[0].MAC, r.Backends[1].MAC)
	}
	if f.Backends[0].MAC != mac {
		// FNAT takes no MAC: only DR forwards frames itself.
	} else {
		t.Error("FNAT backend got a MAC")
	}
	if diff := cmp.Diff([]netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("10.1.0.2")}, f.LocalAddrs, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" || f.Interface != "" || f.FNATCapacity(28232) != 56464 {
		t.Errorf("FNAT local addresses (-want +got):\n%s iface %q", diff, f.Interface)
	}
	if p.Port != 0 || p.Hash != HashSourceAddr || p.PersistenceMask != 24 || p.Persistence != time.Minute {
		t.Errorf("persistent DR: port %d hash %v mask %d", p.Port, p.Hash, p.PersistenceMask)
	}
	if f.PersistenceMask != 32 {
		t.Errorf("default mask %d, want 32", f.PersistenceMask)
	}
}

func TestShutdownOmega(t *testing.T) {
	m := mustNew(t, svc(1, func(c *ServiceConfig) { c.Omega = true }), svc(1, func(c *ServiceConfig) { c.Proto = UDP }))
	evs := m.Shutdown()
	if len(evs) != 1 || evs[0].Kind != QuorumDown || evs[0].Service != "192.0.2.100:80/tcp" {
		t.Errorf("Shutdown = %v", evs)
	}
	if up, _ := m.QuorumUp("192.0.2.100:80/tcp"); !up {
		t.Error("Shutdown changed the quorum state")
	}
}

// The same state, reached through calls in a different order, gives a
// byte-identical Desired.
func TestDesiredIsDeterministic(t *testing.T) {
	cfgs := func(rev bool) []ServiceConfig {
		var cs []ServiceConfig
		for i := range 20 {
			c := svc(8, func(c *ServiceConfig) {
				c.VIP = netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
				c.Scheduler = []string{"rr", "wrr", "sh", "dh", "mh", "wlc", "lc", "nq", "fo", "ovf"}[i%10]
				if i%3 == 0 {
					c.Method, c.Interface = DR, "eth0"
				}
				for j := range c.RealServers {
					c.RealServers[j].Weight = 1 + j%3
				}
			})
			if rev {
				for a, b := 0, len(c.RealServers)-1; a < b; a, b = a+1, b-1 {
					c.RealServers[a], c.RealServers[b] = c.RealServers[b], c.RealServers[a]
				}
			}
			cs = append(cs, c)
		}
		if rev {
			for a, b := 0, len(cs)-1; a < b; a, b = a+1, b-1 {
				cs[a], cs[b] = cs[b], cs[a]
			}
		}
		return cs
	}
	run := func(rev bool) string {
		m := mustNew(t, cfgs(rev)...)
		names := m.Services()
		if rev {
			for a, b := 0, len(names)-1; a < b; a, b = a+1, b-1 {
				names[a], names[b] = names[b], names[a]
			}
		}
		for _, n := range names {
			m.SetHealth(n, rs(3), false, -1)
			m.SetConnCounts(n, map[netip.AddrPort]int{rs(1): 10, rs(2): 3})
		}
		return fmt.Sprintf("%#v", m.Desired())
	}
	a, b := run(false), run(true)
	if a != b {
		t.Errorf("Desired differs with the order of inputs:\n%s", cmp.Diff(a, b))
	}
	if a != run(false) {
		t.Error("Desired differs between two identical runs")
	}
}

// uthreshold/lthreshold: above the upper threshold a server drains; it
// takes new flows again below the lower one (3/4 of the upper when unset).
func TestConnectionThresholds(t *testing.T) {
	c := svc(2, func(c *ServiceConfig) {
		c.RealServers[0].UThreshold = 100
		c.RealServers[1].UThreshold, c.RealServers[1].LThreshold = 10, 2
	})
	m := mustNew(t, c)
	for i, tt := range []struct {
		c1, c2 int
		pool   string
	}{
		{100, 10, "10.0.0.1:80=1 10.0.0.2:80=1"},
		{101, 11, " | drain 10.0.0.1:80 10.0.0.2:80"},
		{75, 2, " | drain 10.0.0.1:80 10.0.0.2:80"},
		{74, 1, "10.0.0.1:80=1 10.0.0.2:80=1"},
		{90, 9, "10.0.0.1:80=1 10.0.0.2:80=1"},
	} {
		m.SetConnCounts(c.Name(), map[netip.AddrPort]int{rs(1): tt.c1, rs(2): tt.c2})
		if got := pool(m.Desired().Services[0]); got != tt.pool {
			t.Errorf("step %d (%d, %d conns): pool %q, want %q", i, tt.c1, tt.c2, got, tt.pool)
		}
	}
	m.SetConnCounts(c.Name(), map[netip.AddrPort]int{rs(1): 500})
	m.SetConnCounts(c.Name(), nil)
	if got := pool(m.Desired().Services[0]); got != "10.0.0.1:80=1 10.0.0.2:80=1" {
		t.Errorf("forgotten counts: pool %q", got)
	}
	if up, _ := m.QuorumUp(c.Name()); !up {
		t.Error("overload touched the quorum")
	}
}

// TestEnumNames: every enum value prints its name, and a value the table
// does not name prints as Type(N) rather than "" (enum.Name).
func TestEnumNames(t *testing.T) {
	for _, c := range []struct {
		v    fmt.Stringer
		want string
	}{
		{FNAT, "FNAT"}, {SCTP, "sctp"}, {SelectRandom, "random"}, {HashSourceAddrPort, "saddr.sport"},
		{QuorumDown, "quorum down"}, {Method(7), "Method(7)"}, {Hash(-1), "Hash(-1)"}, {EventKind(0), "EventKind(0)"},
	} {
		if got := c.v.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.v, got, c.want)
		}
	}
}

// TestFlowTimeouts: a DR service remembers its flows for lvs_timeouts, or
// IPVS's defaults when they are not set; UDP has no close; NAT and FNAT
// remember nothing here (conntrack does); a negative timeout is refused.
func TestFlowTimeouts(t *testing.T) {
	dr := func(p Proto, idle, fin time.Duration) func(*ServiceConfig) {
		return func(c *ServiceConfig) {
			c.Proto, c.Method, c.Interface, c.FlowTimeout, c.FlowFinTimeout = p, DR, "eth0", idle, fin
		}
	}
	for _, tt := range []struct {
		name      string
		opt       func(*ServiceConfig)
		idle, fin time.Duration
	}{
		{"DR TCP, defaults", dr(TCP, 0, 0), 900 * time.Second, 120 * time.Second},
		{"DR TCP, set", dr(TCP, time.Minute, time.Second), time.Minute, time.Second},
		{"DR UDP", dr(UDP, 0, time.Second), 300 * time.Second, 0},
		{"DR SCTP", dr(SCTP, 0, 0), 900 * time.Second, 120 * time.Second},
		{"NAT", func(c *ServiceConfig) { c.FlowTimeout = time.Minute }, 0, 0},
	} {
		m := mustNew(t, svc(2, tt.opt))
		s := m.Desired().Services[0]
		if s.FlowTimeout != tt.idle || s.FlowFinTimeout != tt.fin {
			t.Errorf("%s: flow timeouts %v/%v, want %v/%v", tt.name, s.FlowTimeout, s.FlowFinTimeout, tt.idle, tt.fin)
		}
	}
	if _, err := New([]ServiceConfig{svc(1, dr(TCP, -time.Second, 0))}); err == nil || !strings.Contains(err.Error(), "negative flow timeout") {
		t.Errorf("negative flow timeout: %v", err)
	}
}
