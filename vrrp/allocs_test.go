package vrrp_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"vigil/vrrp"
)

// The daemon's steady state allocates nothing per advert (issue #7): a
// master's Advance, HasReady and Ready, and a backup's Step with a valid
// advert from its master. Measured before: 6 allocations per advert sent,
// 2 per advert received. Nothing is handed back: a master sends
// the adverts it built while they stay right.
func TestSteadyStateAllocations(t *testing.T) {
	c := v3(100)
	c.Version = 3
	m := start(t, c, t0)
	mustStep(t, m, t0, vrrp.Startup{})
	m.Advance(at(10 * time.Second)) // master down: MASTER
	m.Ready()
	wantState(t, m, vrrp.StateMaster)
	now := at(10 * time.Second)
	sent := 0
	if n := testing.AllocsPerRun(200, func() {
		now = now.Add(time.Second)
		m.Advance(now)
		if m.HasReady() {
			sent += len(m.Ready().Adverts)
		}
	}); n != 0 {
		t.Errorf("master: %v allocations per advert sent, want 0", n)
	}
	if sent != 201 {
		t.Errorf("master sent %d adverts in 201 intervals", sent)
	}

	b := start(t, v3(50), t0)
	mustStep(t, b, t0, vrrp.Startup{})
	wantState(t, b, vrrp.StateBackup)
	p := packet(t, v3(50), "192.0.2.20", 100, 100)
	now = t0
	if n := testing.AllocsPerRun(200, func() {
		now = now.Add(time.Second)
		if err := b.Step(now, p); err != nil {
			t.Fatal(err)
		}
		if b.HasReady() {
			b.Ready()
		}
	}); n != 0 {
		t.Errorf("backup: %v allocations per advert received, want 0", n)
	}
	wantState(t, b, vrrp.StateBackup)
}

// TestAdvertsAreReadOnly: a master hands out the same advert bytes while
// its priority stays, and never writes into bytes it handed out: a caller
// that keeps them (a simulator delivering them later) still reads what
// was sent after the priority changed, the advert was sent again, and
// the instance went to BACKUP and back.
func TestAdvertsAreReadOnly(t *testing.T) {
	c := v3(100)
	c.Peers = []netip.Addr{netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("192.0.2.30")}
	m := start(t, c, t0)
	m.Advance(at(10 * time.Second))
	wantState(t, m, vrrp.StateMaster)
	first := m.Ready().Adverts
	kept := make([][]byte, len(first))
	for k, o := range first {
		kept[k] = bytes.Clone(o.Data)
	}
	m.Advance(at(11 * time.Second))
	again := m.Ready().Adverts
	if len(again) != 2 || &again[0].Data[0] != &first[0].Data[0] || &again[1].Data[0] != &first[1].Data[0] {
		t.Errorf("the second adverts are not the first ones' bytes")
	}
	mustStep(t, m, at(11500*time.Millisecond), vrrp.Tracking{Delta: 20})
	m.Advance(at(12 * time.Second))
	rd := m.Ready()
	wantOneAdvert(t, vrrp.Ready{Adverts: rd.Adverts[:1]}, 120)
	mustStep(t, m, at(12*time.Second), vrrp.Shutdown{})
	wantOneAdvert(t, vrrp.Ready{Adverts: m.Ready().Adverts[:1]}, 0)
	mustStep(t, m, at(13*time.Second), vrrp.Startup{})
	m.Advance(at(20 * time.Second))
	wantState(t, m, vrrp.StateMaster)
	wantOneAdvert(t, vrrp.Ready{Adverts: m.Ready().Adverts[:1]}, 120)
	for k, o := range first {
		if !bytes.Equal(o.Data, kept[k]) {
			t.Errorf("advert %d handed out at 10s now reads %x, was %x", k, o.Data, kept[k])
		}
	}
}

// TestInstanceSize keeps an Instance in the runtime's 512-byte size class
// (issue #7; 1,152 once, then 1,024, 768 and 576): up to 512 bytes an
// object has no header; one byte more and the runtime puts an 8-byte
// header before it (an object of more than 512 bytes with pointers), in
// the 576 class, 64 bytes more per instance.
func TestInstanceSize(t *testing.T) {
	n := unsafe.Sizeof(vrrp.Instance{})
	t.Logf("an Instance is %d bytes", n)
	if n > 512 {
		t.Errorf("an Instance is %d bytes, want at most 512 (see its comment)", n)
	}
}
