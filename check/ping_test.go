package check

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/testenv"
)

// PING_CHECK needs an ICMP socket: unprivileged when
// net.ipv4.ping_group_range admits our group, raw as root.
func TestPing(t *testing.T) {
	testenv.RequireRoot(t)
	for _, a := range []string{"127.0.0.1", "127.0.0.9", "::1"} {
		t.Run(a, func(t *testing.T) {
			c, err := NewPing(PingConfig{Target{Addr: netip.AddrPortFrom(netip.MustParseAddr(a), 0), Timeout: 2 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			r := c.Check(context.Background())
			if !r.Up || !strings.Contains(r.Detail, "ping "+a+": echo reply") {
				t.Errorf("Check() = up %v %q, want an echo reply", r.Up, r.Detail)
			}
		})
	}
	// Two checks at once on raw sockets each take only their own reply.
	c1, _ := NewPing(PingConfig{Target{Addr: netip.MustParseAddrPort("127.0.0.1:0")}})
	c2, _ := NewPing(PingConfig{Target{Addr: netip.MustParseAddrPort("127.0.0.2:0"), BindAddr: netip.MustParseAddr("127.0.0.1")}})
	done := make(chan Result)
	go func() { done <- c1.Check(context.Background()) }()
	r2 := c2.Check(context.Background())
	if r1 := <-done; !r1.Up || !r2.Up {
		t.Errorf("concurrent pings: %q, %q", r1.Detail, r2.Detail)
	}
}

func TestNewPingErrors(t *testing.T) {
	if _, err := NewPing(PingConfig{}); err == nil || !strings.Contains(err.Error(), "PING_CHECK: no address") {
		t.Errorf("no address: %v", err)
	}
	if _, err := NewPing(PingConfig{Target{Addr: netip.MustParseAddrPort("127.0.0.1:0"), BindPort: 5}}); err == nil {
		t.Error("bind_port accepted")
	}
	c, err := NewPing(PingConfig{Target{Addr: netip.MustParseAddrPort("127.0.0.1:80")}})
	if err != nil || c.String() != "PING_CHECK 127.0.0.1" {
		t.Errorf("NewPing: %v, %v", c, err)
	}
}

// Both kinds of socket: in a fresh network namespace (the sysctl is per
// namespace, the host's is left alone), a net.ipv4.ping_group_range that
// admits group 0 gives an unprivileged ICMP socket, and one that admits no
// group makes root fall back to a raw socket.
func TestPingSocketKinds(t *testing.T) {
	testenv.RequireLab(t, "sysctl")
	h, err := labtest.New(t, "vchkping").AddHost("h")
	if err != nil {
		t.Fatal(err)
	}
	labtest.MustRun(t, h, "ip", "link", "set", "lo", "up")
	for _, tt := range []struct{ groups, kind string }{{"0 0", "(ICMP socket)"}, {"1 0", "(raw socket)"}} {
		labtest.MustRun(t, h, "sysctl", "-qw", "net.ipv4.ping_group_range="+tt.groups)
		for _, a := range []string{"127.0.0.1", "::1"} {
			c, err := NewPing(PingConfig{Target{Addr: netip.AddrPortFrom(netip.MustParseAddr(a), 0), Timeout: 2 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			var r Result
			if err := h.Do(func() error { r = c.Check(context.Background()); return nil }); err != nil {
				t.Fatal(err)
			}
			if !r.Up || !strings.HasSuffix(r.Detail, tt.kind) {
				t.Errorf("ping_group_range %q, %s: Check() = up %v %q, want an echo reply over a %s", tt.groups, a, r.Up, r.Detail, tt.kind)
			}
		}
	}
	// With lo down nothing answers: down, with the reason.
	labtest.MustRun(t, h, "ip", "link", "set", "lo", "down")
	c, _ := NewPing(PingConfig{Target{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Timeout: 300 * time.Millisecond}})
	var r Result
	h.Do(func() error { r = c.Check(context.Background()); return nil })
	if r.Up || r.Detail != "ping 127.0.0.1: no echo reply within 300ms" {
		t.Errorf("with lo down: Check() = up %v %q, want down, no echo reply", r.Up, r.Detail)
	}
}
