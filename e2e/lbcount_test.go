package e2e

import (
	"net/netip"
	"testing"
	"time"
)

// TestLBWeightedLeastConnection: nftables cannot count connections, so for
// lc/wlc/sed/nq the daemon counts conntrack entries every 2 s and the model
// re-derives the weights. With 12 connections held open to r1 (r2 and r3
// were down when they were opened), new connections under wlc must go
// mostly to the idle r2 and r3 once they are back: wlc's weight for r1 is
// about 1/13 of theirs.
func TestLBWeightedLeastConnection(t *testing.T) {
	requireLBLab(t)
	t.Parallel()
	x, d, c := startLB(t, "lbwlc", "FNAT", 2*time.Second, func(x *lbLab) string { return x.conf("wlc", 150, nil) })
	x.rs[1].kill()
	x.rs[2].kill()
	waitFor(t, 10*time.Second, "r2 and r3 to be marked down", func() bool {
		s2, ok2 := realStatus(d, x.rs[1].addr)
		s3, ok3 := realStatus(d, x.rs[2].addr)
		return ok2 && ok3 && !s2.Up && !s3.Up
	})
	var held []*kaConn
	defer func() {
		for _, k := range held {
			k.Close()
		}
	}()
	// The status shows the model; the rules follow it a moment later, so a
	// connection made at once may still be sent to a dead server.
	for i := 0; len(held) < 12; i++ {
		if i > 100 {
			t.Fatalf("only %d connections reached %s", len(held), x.rs[0].name)
		}
		k, err := c.dialKeepAlive(i%(lbClientAliases+1), netip.AddrPortFrom(x.vip, 80).String())
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if srv, _, err := k.get(2 * time.Second); err != nil || srv != x.rs[0].name {
			k.Close()
			time.Sleep(50 * time.Millisecond)
			continue
		}
		held = append(held, k)
	}
	x.rs[1].start(t)
	x.rs[2].start(t)
	waitFor(t, 10*time.Second, "r2 and r3 to be back", func() bool {
		s2, ok2 := realStatus(d, x.rs[1].addr)
		s3, ok3 := realStatus(d, x.rs[2].addr)
		return ok2 && ok3 && s2.Up && s3.Up
	})
	time.Sleep(3 * time.Second) // one conntrack count, then one nft apply
	if s, err := d.Status(); err == nil {
		t.Logf("status before the requests: %+v", s.Services)
	}
	got := c.spread(t, x.url(), 90)
	t.Logf("wlc with 12 connections held on %s: 90 new requests went %v", x.rs[0].name, got)
	// Equal weights would give r1 about 30; wlc's re-derived weights about 3.
	if got[x.rs[0].name] > 15 {
		t.Errorf("%s, holding 12 connections, took %d of 90 new ones: wlc did not follow the connection counts (%v)", x.rs[0].name, got[x.rs[0].name], got)
	}
	for _, k := range held {
		if srv, _, err := k.get(2 * time.Second); err != nil || srv != x.rs[0].name {
			t.Errorf("a held connection broke while the weights changed: %q %v", srv, err)
			break
		}
	}
}
