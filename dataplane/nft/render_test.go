package nft

import (
	"flag"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/knftables"

	"vigil/internal/goldenfile"
	"vigil/internal/inet"
	"vigil/lb"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func be(ap string, w int) lb.Backend {
	a := netip.MustParseAddrPort(ap)
	return lb.Backend{Addr: a.Addr(), Port: a.Port(), Weight: w}
}

func beMAC(ap string, w int, mac byte) lb.Backend {
	b := be(ap, w)
	b.MAC = lb.MAC{0x02, 0, 0, 0, 0, mac}
	return b
}

func natSvc(vip string, port uint16, sel lb.Selection, bs ...lb.Backend) lb.Service {
	v := netip.MustParseAddr(vip)
	f := inet.IPv4
	if v.Is6() {
		f = inet.IPv6
	}
	s := lb.Service{Name: vip + "/tcp", ID: "vs_" + strings.NewReplacer(".", "_", ":", "_").Replace(vip) + "_tcp",
		Proto: lb.TCP, Family: f, VIP: v, Port: port, Method: lb.NAT, Selection: sel, Backends: bs, Active: true,
		PersistenceMask: 32}
	if f == inet.IPv6 {
		s.PersistenceMask = 128
	}
	return s
}

var golden = []struct {
	name string
	d    lb.Desired
}{
	{"nat_rr", lb.Desired{Services: []lb.Service{
		natSvc("192.0.2.10", 80, lb.SelectNumgen, be("198.51.100.11:8080", 1), be("198.51.100.12:8080", 1), be("198.51.100.13:8080", 1)),
	}}},
	{"nat_wrr_draining", lb.Desired{Services: []lb.Service{func() lb.Service {
		s := natSvc("192.0.2.10", 80, lb.SelectNumgen, be("198.51.100.11:80", 3), be("198.51.100.12:80", 1))
		s.Scheduler = "wrr"
		s.Draining = []lb.Backend{be("198.51.100.13:80", 0)}
		return s
	}()}}},
	{"nat_wlc", lb.Desired{Services: []lb.Service{func() lb.Service {
		// What lb makes of wlc: the renderer sees the selection only.
		return natSvc("192.0.2.10", 80, lb.SelectRandom, be("198.51.100.11:80", 200), be("198.51.100.12:80", 56))
	}()}}},
	{"nat_sh_mask", lb.Desired{Services: []lb.Service{func() lb.Service {
		s := natSvc("192.0.2.10", 80, lb.SelectHash, be("198.51.100.11:80", 1), be("198.51.100.12:80", 2))
		s.Hash, s.PersistenceMask = lb.HashSourceAddr, 24
		return s
	}()}}},
	{"nat_dh", lb.Desired{Services: []lb.Service{func() lb.Service {
		s := natSvc("192.0.2.10", 80, lb.SelectHash, be("198.51.100.11:80", 1), be("198.51.100.12:80", 1))
		s.Hash = lb.HashDestAddr
		return s
	}()}}},
	{"nat_mh_port", lb.Desired{Services: []lb.Service{func() lb.Service {
		s := natSvc("192.0.2.10", 80, lb.SelectMaglev, be("198.51.100.11:80", 1), be("198.51.100.12:80", 1))
		s.Hash, s.Maglev = lb.HashSourceAddrPort, []int{0, 1, 1, 0, 1, 0, 0}
		return s
	}()}}},
	{"nat_persistence", lb.Desired{Services: []lb.Service{func() lb.Service {
		s := natSvc("192.0.2.10", 443, lb.SelectNumgen, be("198.51.100.11:443", 1), be("198.51.100.12:443", 2))
		s.Persistence, s.PersistenceMask = 300*time.Second, 24
		return s
	}()}}},
	{"nat_ipv6", lb.Desired{Services: []lb.Service{func() lb.Service {
		s := natSvc("2001:db8::10", 80, lb.SelectNumgen, be("[2001:db8:1::11]:80", 1), be("[2001:db8:1::12]:80", 1))
		s.Persistence, s.PersistenceMask = time.Minute, 64
		return s
	}()}}},
	{"nat_allports_fwmark_udp", lb.Desired{Services: []lb.Service{
		natSvc("192.0.2.10", 0, lb.SelectNumgen, be("198.51.100.11:0", 1), be("198.51.100.12:0", 1)),
		{Name: "fwmark 7/udp", ID: "fwm_7_udp", Proto: lb.UDP, Family: inet.IPv4, FwMark: 7, Method: lb.NAT,
			Selection: lb.SelectNumgen, Backends: []lb.Backend{be("198.51.100.11:53", 1)}, Active: true, PersistenceMask: 32},
	}}},
	{"nat_empty_inactive", lb.Desired{Services: []lb.Service{
		natSvc("192.0.2.10", 80, lb.SelectNumgen),
		func() lb.Service {
			s := natSvc("192.0.2.11", 80, lb.SelectNumgen, be("198.51.100.11:80", 1))
			s.Active = false
			return s
		}(),
	}}},
	{"fnat", lb.Desired{Services: []lb.Service{
		func() lb.Service {
			s := natSvc("192.0.2.10", 80, lb.SelectNumgen, be("198.51.100.11:80", 1), be("203.0.113.12:80", 1))
			s.Method, s.LocalAddrs = lb.FNAT, []netip.Addr{netip.MustParseAddr("198.51.100.200"), netip.MustParseAddr("198.51.100.201")}
			return s
		}(),
		func() lb.Service {
			s := natSvc("192.0.2.11", 80, lb.SelectNumgen, be("198.51.100.11:80", 1))
			s.Method, s.LocalAddrs = lb.FNAT, []netip.Addr{netip.MustParseAddr("198.51.100.200"), netip.MustParseAddr("198.51.100.210")}
			return s
		}(),
		func() lb.Service {
			s := natSvc("2001:db8::10", 80, lb.SelectNumgen, be("[2001:db8:1::11]:80", 1))
			s.Method, s.LocalAddrs = lb.FNAT, []netip.Addr{netip.MustParseAddr("2001:db8:2::1")}
			return s
		}(),
	}}},
	{"nat_sh_port", lb.Desired{Services: []lb.Service{func() lb.Service {
		s := natSvc("192.0.2.10", 80, lb.SelectHash, be("198.51.100.11:80", 2), be("198.51.100.12:80", 1))
		s.Hash = lb.HashSourceAddrPort
		return s
	}()}}},
	{"dr_v6_persistent_allports", lb.Desired{Services: []lb.Service{
		func() lb.Service {
			s := natSvc("2001:db8::100", 0, lb.SelectMaglev, beMAC("[2001:db8::11]:0", 1, 0x11), beMAC("[2001:db8::12]:0", 1, 0x12))
			s.Method, s.Interface, s.Hash, s.Maglev = lb.DR, "eth0", lb.HashSourceAddr, []int{0, 1, 1, 0, 1}
			s.Persistence, s.PersistenceMask = time.Minute, 64
			s.FlowTimeout, s.FlowFinTimeout = lb.DefaultFlowTimeouts(s.Proto)
			return s
		}(),
		func() lb.Service {
			s := natSvc("192.0.2.100", 53, lb.SelectMaglev, beMAC("192.0.2.11:53", 1, 0x11))
			s.Proto, s.ID = lb.UDP, "vs_192_0_2_100_53_udp"
			s.Method, s.Interface, s.Hash, s.Maglev = lb.DR, "eth0", lb.HashSourceAddr, []int{0, 0, 0}
			s.Persistence, s.PersistenceMask = time.Minute, 24
			s.FlowTimeout, s.FlowFinTimeout = lb.DefaultFlowTimeouts(s.Proto)
			return s
		}(),
	}}},
	{"dr", lb.Desired{Services: []lb.Service{func() lb.Service {
		s := natSvc("192.0.2.100", 80, lb.SelectMaglev, beMAC("192.0.2.11:80", 1, 0x11), beMAC("192.0.2.12:80", 1, 0x12), be("192.0.2.13:80", 1))
		s.Method, s.Interface, s.Hash, s.Maglev = lb.DR, "eth0", lb.HashFlow, []int{0, 1, 2, 0, 1, 2, 2}
		s.FlowTimeout, s.FlowFinTimeout = lb.DefaultFlowTimeouts(s.Proto)
		return s
	}()}}},
}

var testEnv = env{devMAC: map[string]lb.MAC{"eth0": {0x02, 0, 0, 0, 0, 0xd1}}}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	goldenfile.Check(t, filepath.Join("testdata", name+".golden"), got, *update, "go test ./dataplane/nft -update")
}

// TestRenderGolden pins the nft text of each method and scheduler, and
// proves that the text nft would receive parses as nft transaction syntax
// for knftables (the real kernel tests load the same text).
func TestRenderGolden(t *testing.T) {
	for _, tc := range golden {
		t.Run(tc.name, func(t *testing.T) {
			r, err := render(tc.d, testEnv)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name, r.rs.String())
			// Deterministic: a second render is byte for byte the same.
			r2, _ := render(tc.d, testEnv)
			if a, b := r.rs.String(), r2.rs.String(); a != b {
				t.Fatalf("render is not deterministic:\n%s\n---\n%s", a, b)
			}
			tx := knftables.NewFake("", "").NewTransaction()
			diff(tx, r.rs, r2.rs)
			if n := tx.NumOperations(); n != 0 {
				t.Errorf("diff of equal renders has %d operations:\n%s", n, tx)
			}
		})
	}
}

// TestDiffGolden pins the transaction that moves from one state to
// another: element-level changes to the maps, a flushed chain only where
// its rules changed, and deletions last.
func TestDiffGolden(t *testing.T) {
	a := natSvc("192.0.2.10", 80, lb.SelectNumgen, be("198.51.100.11:80", 1), be("198.51.100.12:80", 1), be("198.51.100.13:80", 1))
	b := natSvc("192.0.2.10", 80, lb.SelectNumgen, be("198.51.100.11:80", 1), be("198.51.100.14:80", 1), be("198.51.100.13:80", 1))
	b.Draining = []lb.Backend{be("198.51.100.12:80", 0)}
	c := natSvc("192.0.2.20", 80, lb.SelectNumgen, be("198.51.100.11:80", 1))
	steps := []lb.Desired{
		{Services: []lb.Service{a}},
		{Services: []lb.Service{b, c}},
		{Services: []lb.Service{b}},
		{},
	}
	var out strings.Builder
	prev := newRuleset()
	for i, d := range steps {
		r, err := render(d, testEnv)
		if err != nil {
			t.Fatal(err)
		}
		tx := knftables.NewFake("", "").NewTransaction()
		if i == 0 {
			full(tx, r.rs, []knftables.Family{knftables.InetFamily, knftables.NetDevFamily})
		} else {
			diff(tx, prev, r.rs)
		}
		out.WriteString("# step " + string(rune('0'+i)) + "\n" + tx.String())
		prev = r.rs
	}
	checkGolden(t, "diff", out.String())
}

// TestDRDraining: a DR real server that turns to draining keeps the slots
// it owned for non-SYN packets, new flows there are pinned to the new
// table, and once it is removed the extra state goes.
func TestDRDraining(t *testing.T) {
	mk := func(bs []lb.Backend, draining []lb.Backend, mg []int) lb.Desired {
		s := natSvc("192.0.2.100", 80, lb.SelectMaglev, bs...)
		s.Method, s.Interface, s.Hash, s.Maglev, s.Draining = lb.DR, "eth0", lb.HashFlow, mg, draining
		s.FlowTimeout, s.FlowFinTimeout = lb.DefaultFlowTimeouts(s.Proto)
		return lb.Desired{Services: []lb.Service{s}}
	}
	b1, b2, b3 := beMAC("192.0.2.11:80", 1, 0x11), beMAC("192.0.2.12:80", 1, 0x12), beMAC("192.0.2.13:80", 1, 0x13)
	e := testEnv
	r1, err := render(mk([]lb.Backend{b1, b2, b3}, nil, []int{0, 1, 2, 0, 1, 2, 2}), e)
	if err != nil {
		t.Fatal(err)
	}
	e.drOwners = r1.drOwners
	d2 := b2
	d2.Weight = 0
	r2, err := render(mk([]lb.Backend{b1, b3}, []lb.Backend{d2}, []int{0, 0, 1, 0, 1, 1, 1}), e)
	if err != nil {
		t.Fatal(err)
	}
	e.drOwners = r2.drOwners
	// The next Apply with the same state keeps the drain slots.
	r3, _ := render(mk([]lb.Backend{b1, b3}, []lb.Backend{d2}, []int{0, 0, 1, 0, 1, 1, 1}), e)
	if r2.rs.String() != r3.rs.String() {
		t.Errorf("draining state is not stable across applies:\n%s\n---\n%s", r2.rs, r3.rs)
	}
	e.drOwners = r3.drOwners
	r4, _ := render(mk([]lb.Backend{b1, b3}, nil, []int{0, 0, 1, 0, 1, 1, 1}), e)
	if strings.Contains(r4.rs.String(), "_pin") || strings.Contains(r4.rs.String(), "_drain") {
		t.Errorf("removed real server left drain state:\n%s", r4.rs)
	}
	checkGolden(t, "dr_draining", r2.rs.String()+"# after removal\n"+r4.rs.String())
}

func TestRenderErrors(t *testing.T) {
	dr := natSvc("192.0.2.100", 80, lb.SelectMaglev, beMAC("192.0.2.11:80", 1, 0x11))
	dr.Method, dr.Interface, dr.Maglev = lb.DR, "missing0", []int{0, 0, 0}
	ok := natSvc("192.0.2.10", 80, lb.SelectNumgen, be("198.51.100.11:80", 1))
	r, err := render(lb.Desired{Services: []lb.Service{dr, ok}}, testEnv)
	if err == nil || !strings.Contains(err.Error(), `"missing0" does not exist`) {
		t.Errorf("err = %v, want the missing DR device", err)
	}
	if !strings.Contains(r.rs.String(), "vs_192_0_2_10_tcp") {
		t.Errorf("the good service was not rendered:\n%s", r.rs)
	}
	fn := natSvc("192.0.2.10", 80, lb.SelectNumgen, be("198.51.100.11:80", 1))
	fn.Method = lb.FNAT
	if _, err := render(lb.Desired{Services: []lb.Service{fn}}, testEnv); err == nil {
		t.Error("FNAT without local addresses: no error")
	}
}

func TestFNATCapacity(t *testing.T) {
	s := lb.Service{LocalAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.200"), netip.MustParseAddr("198.51.100.201")}}
	if got, want := FNATCapacity(&s), 2*64512; got != want {
		t.Errorf("FNATCapacity = %d, want %d", got, want)
	}
}
