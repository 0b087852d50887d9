package nft

import (
	"net"
	"net/netip"
	"os"
	"testing"

	"vigil/internal/inet"
	"vigil/lb"
)

// TestBenchApply is not a test: bench/dataplane.sh runs the test binary
// with it to install vigil's rules for one service in its lab, and leaves
// them there (no Close) for wrk to measure. Environment:
//
//	VIGIL_BENCH_NS      namespace of the director
//	VIGIL_BENCH_METHOD  nat, fnat or dr
//	VIGIL_BENCH_VIP     virtual address (port 80)
//	VIGIL_BENCH_RS      real server address (port 80)
//	VIGIL_BENCH_LADDR   FNAT local address
//	VIGIL_BENCH_DEV     DR device; VIGIL_BENCH_RSMAC the real server's MAC
//	VIGIL_BENCH_PROTO   tcp (default) or udp
func TestBenchApply(t *testing.T) {
	ns := helperEnv(t, "VIGIL_BENCH_NS", "bench/dataplane.sh")
	rs := lb.Backend{Addr: netip.MustParseAddr(os.Getenv("VIGIL_BENCH_RS")), Port: 80, Weight: 1}
	proto := lb.TCP
	if os.Getenv("VIGIL_BENCH_PROTO") == "udp" {
		proto = lb.UDP
	}
	s := lb.Service{Name: "bench", ID: "vs_bench", Proto: proto, Family: inet.IPv4,
		VIP: netip.MustParseAddr(os.Getenv("VIGIL_BENCH_VIP")), Port: 80, Scheduler: "rr",
		Selection: lb.SelectNumgen, Backends: []lb.Backend{rs}, Active: true, PersistenceMask: 32}
	switch os.Getenv("VIGIL_BENCH_METHOD") {
	case "nat":
		s.Method = lb.NAT
	case "fnat":
		s.Method = lb.FNAT
		s.LocalAddrs = []netip.Addr{netip.MustParseAddr(os.Getenv("VIGIL_BENCH_LADDR"))}
	case "dr":
		s.Method, s.Selection, s.Hash, s.Interface = lb.DR, lb.SelectMaglev, lb.HashFlow, os.Getenv("VIGIL_BENCH_DEV")
		mac, err := net.ParseMAC(os.Getenv("VIGIL_BENCH_RSMAC"))
		if err != nil {
			t.Fatal(err)
		}
		copy(s.Backends[0].MAC[:], mac)
		s.Maglev = make([]int, 251) // a prime; one real server owns every slot
	default:
		t.Fatalf("VIGIL_BENCH_METHOD=%q", os.Getenv("VIGIL_BENCH_METHOD"))
	}
	dp, err := New(Config{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	if err := dp.Apply(ctx, lb.Desired{Services: []lb.Service{s}}); err != nil {
		t.Fatal(err)
	}
	t.Logf("applied:\n%s", dp.lastTx)
}
