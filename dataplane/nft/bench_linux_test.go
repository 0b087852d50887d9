package nft

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vigil/internal/inet"
	"vigil/internal/pace"
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
//	VIGIL_BENCH_DR_MEMORY=0  DR without its memory of flows (drFlows)
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
		if os.Getenv("VIGIL_BENCH_DR_MEMORY") != "0" {
			// As lb sets it for every DR service (drFlows).
			s.FlowTimeout, s.FlowFinTimeout = lb.DefaultFlowTimeouts(proto)
		}
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

// TestBenchSweepDump is not a test: it measures what one Sweep costs on a
// director whose conntrack table holds VIGIL_BENCH_FLOWS established
// flows (none of them a watched server's), the figure package pace rests on
// (docs/benchmarks.md). Run as root:
//
//	VIGIL_BENCH_FLOWS=60000 go test -run TestBenchSweepDump -v ./dataplane/nft/
func TestBenchSweepDump(t *testing.T) {
	flows, err := strconv.Atoi(helperEnv(t, "VIGIL_BENCH_FLOWS", "the sweep's cost in docs/benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	x := natLab(t, "nftcb", true)
	dp := x.dataplane(t)
	for i := range flows {
		client := net.IPv4(203, 0, 113, byte(100+i/50000)).To4()
		fl := &netlink.ConntrackFlow{FamilyType: unix.AF_INET, TimeOut: 600, ProtoInfo: &netlink.ProtoInfoTCP{State: 3}}
		fl.Forward = netlink.IPTuple{SrcIP: client, DstIP: net.IPv4(203, 0, 113, 10).To4(), Protocol: unix.IPPROTO_TCP, SrcPort: uint16(10000 + i%50000), DstPort: 80}
		fl.Reverse = netlink.IPTuple{SrcIP: net.IPv4(198, 51, 100, 11).To4(), DstIP: client, Protocol: unix.IPPROTO_TCP, SrcPort: 80, DstPort: fl.Forward.SrcPort}
		if err := dp.nl.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, fl); err != nil {
			t.Fatalf("flow %d: %v (nf_conntrack_max?)", i, err)
		}
	}
	gone := goneBackend{svc: natService(lb.NAT, "203.0.113.10", backend("198.51.100.12:80", 1)), rs: netip.MustParseAddrPort("198.51.100.12:80"), left: time.Now()}
	// timed runs f and logs its wall and CPU time (the process's), per
	// flow of the table, after what.
	timed := func(f func() string) {
		var ru0, ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		start := time.Now()
		what := f()
		took := time.Since(start)
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		t.Logf("%s: %v wall, %v CPU (%.1f µs a flow)", what, took.Round(time.Millisecond), cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(flows))
	}
	for range 5 {
		dp.mu.Lock()
		dp.lingering = []goneBackend{gone}
		dp.mu.Unlock()
		dp.sweepPace = pace.Spacer{}
		timed(func() string {
			start := time.Now()
			if _, err := dp.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("sweep of %d flows (next sweep %v later)", flows, dp.sweepPace.Next().Sub(start).Round(time.Millisecond))
		})
	}
	// Conns and the lc/wlc count read the whole table: no filter can pick
	// a director's own flows out of it.
	if err := dp.Apply(ctx, lb.Desired{Services: []lb.Service{natService(lb.NAT, "203.0.113.10", backend("198.51.100.11:80", 1))}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		timed(func() string {
			conns, err := dp.Conns(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("Conns of %d flows: %d connections", flows, len(conns))
		})
	}
	for range 3 {
		timed(func() string {
			counts, err := dp.CountConns(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, m := range counts {
				for _, c := range m {
					n += c
				}
			}
			return fmt.Sprintf("CountConns of %d flows: %d active", flows, n)
		})
	}
}
