package nft

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"vigil/lb"
)

// TestNoStaleResetFlow: a real server resets connections it was serving
// (it died, or aborted them, with requests in flight) and then leaves the
// pool. The director's conntrack keeps each such flow in CLOSE for
// nf_conntrack_tcp_timeout_close (10 s) with its NAT binding, and the
// kernel reopens a CLOSE entry on a new SYN only when the client sent the
// reset (or a FIN was seen): a SYN from the same client address and port
// follows the old binding to the removed real server, which refuses it if
// it is dead. A client that binds before it connects picks a random port
// and, at a hundred connections a second, reuses one of those ports within
// seconds (e2e TestLBSorryServer failed so). Once the real server has left,
// a new connection from each of those ports must be scheduled among the
// real servers in the pool. The removed real server stays up here, so a
// stale binding shows as its answer rather than as a refusal.
func TestNoStaleResetFlow(t *testing.T) {
	for _, m := range []lb.Method{lb.NAT, lb.FNAT} {
		t.Run(m.String(), func(t *testing.T) { noStaleResetFlow(t, m) })
	}
}

func noStaleResetFlow(t *testing.T, method lb.Method) {
	x := natLab(t, "nftrst"+strings.ToLower(method.String())[:1], method == lb.NAT)
	dp := x.dataplane(t)
	b1, b2, b3 := backend("198.51.100.11:80", 1), backend("198.51.100.12:80", 1), backend("198.51.100.13:80", 1)
	vip := "203.0.113.10:80"
	apply(t, dp, natService(method, "203.0.113.10", b1, b2, b3))

	// 30 connections from fixed client ports, one request each: rr gives
	// rs2 ten, which it then resets.
	var reset []uint16
	for p := uint16(41000); p < 41030; p++ {
		c, err := x.dialFrom(p, vip)
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		srv, err := c.get()
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		if srv != "rs2" {
			c.Close()
			continue
		}
		if _, err := c.request("/reset"); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("port %d: rs2 was asked to reset the connection; the client got %v, want a reset", p, err)
		}
		c.Close()
		reset = append(reset, p)
	}
	if len(reset) != 10 {
		t.Fatalf("rr gave rs2 %d of 30 connections, want 10", len(reset))
	}
	conns, err := dp.Conns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed := 0
	for _, cn := range conns {
		if cn.Real == b2.AddrPort() && cn.State == "CLOSE" && slices.Contains(reset, cn.Client.Port()) {
			closed++
		}
	}
	if closed != len(reset) {
		t.Fatalf("conntrack holds %d of the %d flows rs2 reset in CLOSE bound to it, the case under test: %+v", closed, len(reset), conns)
	}

	apply(t, dp, natService(method, "203.0.113.10", b1, b3))
	var stale []string
	for _, p := range reset {
		c, err := x.dialFrom(p, vip)
		if err != nil {
			stale = append(stale, fmt.Sprintf("%d: %v", p, err))
			continue
		}
		srv, err := c.get()
		c.Close()
		if err != nil || srv == "rs2" {
			stale = append(stale, fmt.Sprintf("%d: %q %v", p, srv, err))
		}
	}
	if len(stale) > 0 {
		t.Errorf("%d of %d client ports whose flow rs2 had reset were not scheduled among rs1 and rs3 after rs2 left (port: answered by, error): %v",
			len(stale), len(reset), stale)
	}
}
