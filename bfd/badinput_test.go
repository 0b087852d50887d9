package bfd

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"vigil/bfd/wire"
)

// TestBadPacketsChangeNothing sends thousands of malformed, truncated,
// wrong-version, wrong-TTL, zero- and spoofed-discriminator packets to a
// live Up session: it stays Up with the same timers, and every packet is
// counted under its reason.
func TestBadPacketsChangeNothing(t *testing.T) {
	p := newPair(t, fast(), fast(), 11)
	p.run(time.Second)
	sa := p.a.Sessions()[0]
	before := sa.Status()
	if before.State != wire.Up {
		t.Fatal("not up")
	}
	good := wire.Packet{State: wire.Up, DetectMult: 3, MyDisc: before.RemoteDisc, YourDisc: before.LocalDisc, DesiredMinTx: 10000, RequiredMinRx: 10000}
	enc := func(q wire.Packet) []byte { b, _ := q.MarshalBinary(); return b }
	spoofer := netip.MustParseAddr("192.0.2.66")
	cases := []struct {
		reason string
		pkt    Packet
	}{
		{"short", Packet{Data: enc(good)[:20], Src: addrB, TTL: 255}},
		{"version", Packet{Data: func() []byte { b := enc(good); b[0] = 2<<5 | b[0]&0x1f; return b }(), Src: addrB, TTL: 255}},
		{"length", Packet{Data: func() []byte { b := enc(good); b[3] = 10; return b }(), Src: addrB, TTL: 255}},
		{"detect_mult", Packet{Data: func() []byte { q := good; q.DetectMult = 0; return enc(q) }(), Src: addrB, TTL: 255}},
		{"multipoint", Packet{Data: func() []byte { q := good; q.Multipoint = true; return enc(q) }(), Src: addrB, TTL: 255}},
		{"my_disc", Packet{Data: func() []byte { q := good; q.MyDisc = 0; return enc(q) }(), Src: addrB, TTL: 255}},
		{DropYourDisc, Packet{Data: func() []byte { q := good; q.YourDisc = 0; q.State = wire.Down; q.State = wire.Up; return enc(q) }(), Src: addrB, TTL: 255}},
		{DropUnknownDisc, Packet{Data: func() []byte { q := good; q.YourDisc++; q.State = wire.Down; return enc(q) }(), Src: addrB, TTL: 255}},
		{DropSpoofedDisc, Packet{Data: func() []byte { q := good; q.State = wire.Down; return enc(q) }(), Src: spoofer, TTL: 255}},
		{DropNoSession, Packet{Data: func() []byte { q := good; q.YourDisc = 0; q.State = wire.Down; return enc(q) }(), Src: spoofer, TTL: 255}},
		{DropTTL, Packet{Data: func() []byte { q := good; q.State = wire.Down; return enc(q) }(), Src: addrB, TTL: 254}},
		{DropAuth, Packet{Data: func() []byte { q := good; q.State = wire.Down; q.Auth = []byte{1, 3, 0}; return enc(q) }(), Src: addrB, TTL: 255}},
	}
	rnd := rand.New(rand.NewPCG(5, 5))
	const rounds = 500
	for i := 0; i < rounds; i++ {
		for _, c := range cases {
			err := p.a.Receive(p.now, c.pkt)
			de, ok := err.(*DropError)
			if !ok || de.Reason != c.reason {
				t.Fatalf("%s: got %v", c.reason, err)
			}
		}
		// And random garbage.
		junk := make([]byte, rnd.IntN(60))
		for j := range junk {
			junk[j] = byte(rnd.Uint32())
		}
		if err := p.a.Receive(p.now, Packet{Data: junk, Src: addrB, TTL: 255}); err == nil {
			// A random packet that happens to be valid must still not
			// name our session's discriminator from the right peer.
			t.Logf("random packet accepted: %x", junk)
		}
		p.run(time.Millisecond)
	}
	after := sa.Status()
	if after.State != wire.Up || after.Flaps != 0 || after.RemoteDisc != before.RemoteDisc || after.DetectTime != before.DetectTime || after.TxInterval != before.TxInterval {
		t.Fatalf("session changed:\nbefore %+v\nafter  %+v", before, after)
	}
	drops := p.a.Drops()
	for _, c := range cases {
		if drops[c.reason] < rounds {
			t.Errorf("%s counted %d times, want at least %d", c.reason, drops[c.reason], rounds)
		}
	}
}

func FuzzReceive(f *testing.F) {
	f.Add([]byte{0x20, 0x40, 3, 24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0, 0, 0x27, 0x10, 0, 0, 0, 0}, 255)
	f.Fuzz(func(t *testing.T, b []byte, ttl int) {
		s := NewSet(nil)
		ss, _ := s.Add(t0, Config{Name: "a", Peer: addrB})
		_ = s.Receive(t0, Packet{Data: b, Src: addrB, TTL: ttl})
		s.Advance(t0.Add(time.Second))
		_, _ = s.Ready()
		_ = ss.Status()
	})
}
