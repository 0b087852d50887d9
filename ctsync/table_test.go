package ctsync

import (
	"net/netip"
	"testing"
	"time"

	"vigil/ctsync/wire"
)

func testEntry(i int, timeout uint32) wire.Entry {
	src := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
	vip := netip.MustParseAddr("198.51.100.100")
	rs := netip.MustParseAddr("203.0.113.10")
	return wire.Entry{
		Key:   wire.Key{Proto: 6, Orig: wire.Tuple{Src: src, Dst: vip, SrcPort: uint16(1000 + i), DstPort: 80}},
		Reply: wire.Tuple{Src: rs, Dst: src, SrcPort: 8080, DstPort: uint16(1000 + i)}, TCPState: 3, Timeout: timeout,
	}
}

func TestTableBound(t *testing.T) {
	now := time.Unix(1000, 0)
	tb := newTable(3)
	for i := range 5 {
		e := testEntry(i, 100)
		ok := tb.update(&e, now)
		if ok != (i < 3) {
			t.Errorf("entry %d: update %v", i, ok)
		}
	}
	if len(tb.m) != 3 || tb.overflow != 2 {
		t.Fatalf("%d entries, overflow %d; want 3, 2", len(tb.m), tb.overflow)
	}
	// Updates of held entries still work at the bound.
	e := testEntry(1, 200)
	if !tb.update(&e, now) || tb.m[e.Key].e.Timeout != 200 {
		t.Error("update of a held entry refused at the bound")
	}
	if !tb.remove(e.Key) || tb.remove(e.Key) || len(tb.m) != 2 {
		t.Error("remove")
	}
}

func TestTableExpiryAndSnapshot(t *testing.T) {
	now := time.Unix(1000, 0)
	tb := newTable(10)
	for i, to := range []uint32{10, 100} {
		e := testEntry(i, to)
		tb.update(&e, now)
	}
	snap := tb.snapshot(now.Add(5500 * time.Millisecond))
	if len(snap) != 2 {
		t.Fatalf("snapshot %d entries", len(snap))
	}
	for _, e := range snap {
		if want := map[uint32]uint32{1000: 5, 1001: 95}[uint32(e.Orig.SrcPort)]; e.Timeout != want {
			t.Errorf("%v: timeout %d, want the remaining %d (rounded up)", e.Orig, e.Timeout, want)
		}
	}
	if n := tb.expire(now.Add(10 * time.Second)); n != 1 || len(tb.m) != 1 {
		t.Errorf("expire removed %d, %d left", n, len(tb.m))
	}
	if snap := tb.snapshot(now.Add(100 * time.Second)); len(snap) != 0 {
		t.Errorf("an expired entry in the snapshot: %v", snap)
	}
}

// A complete full table removes what it did not carry (a lost delete); an
// incomplete one (a gap) removes nothing.
func TestTableFullReconcile(t *testing.T) {
	now := time.Unix(1000, 0)
	tb := newTable(10)
	for i := range 4 {
		e := testEntry(i, 100)
		tb.update(&e, now)
	}
	tb.beginFull()
	for i := range 2 {
		e := testEntry(i, 100)
		tb.update(&e, now)
	}
	tb.lost()
	if n, ok := tb.endFull(); ok || n != 0 || len(tb.m) != 4 {
		t.Fatalf("incomplete full table: removed %d ok %v, %d left", n, ok, len(tb.m))
	}
	tb.beginFull()
	for i := range 2 {
		e := testEntry(i, 100)
		tb.update(&e, now)
	}
	if n, ok := tb.endFull(); !ok || n != 2 || len(tb.m) != 2 {
		t.Fatalf("complete full table: removed %d ok %v, %d left; want 2 true 2", n, ok, len(tb.m))
	}
	if _, ok := tb.endFull(); ok {
		t.Error("an end without a begin completed a full table")
	}
}

func TestWindow(t *testing.T) {
	type step struct {
		epoch   uint64
		seq     uint32
		ok, gap bool
	}
	var w window
	for i, s := range []step{
		{5, 1, true, false},
		{5, 2, true, false},
		{5, 2, false, false}, // replay
		{5, 5, true, true},   // 3, 4 lost
		{5, 3, true, false},  // late, inside the window
		{5, 3, false, false}, // its replay
		{5, 70, true, true},
		{5, 6, false, false},   // older than the window
		{5, 7, true, false},    // inside the window, not seen
		{4, 100, false, false}, // an older epoch (a replay from before a restart)
		{9, 3, true, true},     // a new epoch, starting past 1: datagrams missed
		{9, 4, true, false},
		{9, 2, true, false},
		{5, 71, false, false},
		{10, 1, true, false},
	} {
		ok, gap := w.accept(s.epoch, s.seq)
		if ok != s.ok || gap != s.gap {
			t.Errorf("step %d (epoch %d seq %d): ok %v gap %v, want %v %v", i, s.epoch, s.seq, ok, gap, s.ok, s.gap)
		}
	}
}
