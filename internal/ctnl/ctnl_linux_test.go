package ctnl

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"testing"

	"github.com/vishvananda/netns"

	"vigil/internal/ctflow"
	"vigil/internal/nsthread"
	"vigil/internal/testenv"
)

// inNS runs fn with a Conn opened in a new network namespace of its own
// (an empty conntrack table), closed when the test ends.
func inNS(t *testing.T, fn func(c *Conn)) {
	t.Helper()
	testenv.RequireRoot(t)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	ns, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(orig); err != nil {
		t.Fatal(err) // the thread stays locked and dies with the test
	}
	orig.Close()
	runtime.UnlockOSThread()
	defer ns.Close()
	var c *Conn
	if err := nsthread.Run(ns, "ctnl test", func() (err error) { c, err = Open(); return err }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fn(c)
}

// TestDumpFilter: the kernel sends only the flows whose reply comes from
// the real server (and port, and protocol) asked for, in either family.
func TestDumpFilter(t *testing.T) {
	vip, vip6 := netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")
	a, b, a6 := netip.MustParseAddr("198.51.100.10"), netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8:1::10")
	flow := func(i int, proto uint8, rs netip.Addr, port uint16) ctflow.Entry {
		cl, local := netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), netip.MustParseAddr("198.51.100.200")
		v := vip
		if rs.Is6() {
			cl, local, v = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}), netip.MustParseAddr("2001:db8:1::200"), vip6
		}
		e := ctflow.Entry{Key: ctflow.Key{Proto: proto, Orig: ctflow.Tuple{Src: cl, Dst: v, SrcPort: uint16(1024 + i), DstPort: 80}},
			Reply: ctflow.Tuple{Src: rs, Dst: local, SrcPort: port, DstPort: uint16(10000 + i)}, Timeout: 600, Status: StatusSeenReply}
		if proto == 6 {
			e.TCPState = 3
		}
		return e
	}
	flows := []ctflow.Entry{
		flow(1, 6, a, 8080), flow(2, 6, a, 8080), flow(3, 6, a, 8080), // wanted
		flow(4, 6, a, 9090), flow(5, 17, a, 8080), flow(6, 6, b, 8080), flow(7, 6, b, 8080), flow(8, 6, a6, 8080),
	}
	inNS(t, func(c *Conn) {
		res, err := c.Do(context.Background(), flows, (*Msg).AppendCreate)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range res {
			if e != 0 {
				t.Fatalf("create %v: %v", flows[i].Orig, e)
			}
		}
		dumped := func(f *Filter) (ports []uint16) {
			t.Helper()
			fn := func(e *ctflow.Entry) { ports = append(ports, e.Orig.SrcPort-1024) }
			var err error
			if f == nil {
				err = c.Dump(fn)
			} else {
				err = c.DumpFilter(*f, fn)
			}
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(ports)
			return ports
		}
		for _, tc := range []struct {
			name string
			f    *Filter
			want []uint16
		}{
			{"whole table", nil, []uint16{1, 2, 3, 4, 5, 6, 7, 8}},
			{"a:8080/tcp", &Filter{Proto: 6, ReplySrc: a, ReplySrcPort: 8080}, []uint16{1, 2, 3}},
			{"a/tcp, any port", &Filter{Proto: 6, ReplySrc: a}, []uint16{1, 2, 3, 4}},
			{"a:8080/udp", &Filter{Proto: 17, ReplySrc: a, ReplySrcPort: 8080}, []uint16{5}},
			{"b:8080/tcp", &Filter{Proto: 6, ReplySrc: b, ReplySrcPort: 8080}, []uint16{6, 7}},
			{"IPv6", &Filter{Proto: 6, ReplySrc: a6, ReplySrcPort: 8080}, []uint16{8}},
			{"nobody", &Filter{Proto: 6, ReplySrc: netip.MustParseAddr("198.51.100.99"), ReplySrcPort: 8080}, nil},
		} {
			if got := dumped(tc.f); !slices.Equal(got, tc.want) {
				t.Errorf("%s: dumped flows %v, want %v", tc.name, got, tc.want)
			}
		}
		// A delete of what a filter found leaves the rest.
		var gone []ctflow.Entry
		if err := c.DumpFilter(Filter{Proto: 6, ReplySrc: a, ReplySrcPort: 8080}, func(e *ctflow.Entry) { gone = append(gone, *e) }); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Do(context.Background(), gone, (*Msg).AppendDelete); err != nil {
			t.Fatal(err)
		}
		if got := dumped(nil); !slices.Equal(got, []uint16{4, 5, 6, 7, 8}) {
			t.Errorf("after deleting a:8080's flows: %v left, want [4 5 6 7 8]", got)
		}
	})
}
