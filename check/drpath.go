package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"vigil/internal/drpath"
)

// DRPathConfig configures a DR_PATH_CHECK, a vigil extension for lb_kind
// DR: the real server is up when a frame sent to its MAC the way the
// director forwards a client's (a TCP SYN for VIP:port whose IP source is
// not this host's address) reaches it. Health checks from the director's
// own address cannot see a filter that drops only forwarded frames (an
// anti-spoofing filter: libvirt clean-traffic, a cloud's
// source/destination check); this one can. See package internal/drpath.
type DRPathConfig struct {
	// Real is the real server; VIP and Port the service's.
	Real netip.Addr
	VIP  netip.Addr
	Port uint16
	// Timeout is connect_timeout: how long to wait for the real server's
	// ARP request after the last SYN; zero means 1 s.
	Timeout time.Duration
}

// DRPath is a DR_PATH_CHECK.
type DRPath struct {
	cfg DRPathConfig
	mu  sync.Mutex
	// spoofed is the unused address the SYNs come from, chosen on the first
	// check (ARP probes) and kept while the checks pass.
	spoofed netip.Addr
}

// NewDRPath validates cfg and returns the checker; it sends nothing.
func NewDRPath(cfg DRPathConfig) (*DRPath, error) {
	if !cfg.Real.Is4() || !cfg.VIP.Is4() {
		return nil, errors.New("DR_PATH_CHECK: IPv4 real server and VIP only")
	}
	if cfg.Port == 0 {
		return nil, errors.New("DR_PATH_CHECK: no port (connect_port, or the virtual server's)")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("DR_PATH_CHECK: connect_timeout %v is negative", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	return &DRPath{cfg: cfg}, nil
}

func (c *DRPath) String() string {
	return "DR_PATH_CHECK " + c.cfg.Real.String() + " for " + netip.AddrPortFrom(c.cfg.VIP, c.cfg.Port).String()
}

// Check sends two SYNs from the unused address through the real server's
// MAC and waits for the real server to ask who has that address.
func (c *DRPath) Check(ctx context.Context) Result {
	start := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	fail := func(format string, args ...any) Result { return down(fmt.Sprintf(format, args...), start) }
	link, err := drpath.FindLink(c.cfg.Real)
	if err != nil {
		return fail("DR path to %s: %v", c.cfg.Real, err)
	}
	conn, err := link.Open()
	if err != nil {
		return fail("DR path to %s: %v", c.cfg.Real, err)
	}
	defer conn.Close()
	mac, err := link.Resolve(ctx, conn, c.cfg.Real, c.cfg.Timeout)
	if err != nil {
		return fail("DR path to %s: %v", c.cfg.Real, err)
	}
	if !c.spoofed.IsValid() || !link.Own.Masked().Contains(c.spoofed) {
		nb := drpath.Neighbours()
		taken := func(a netip.Addr) bool {
			_, seen := nb[a.String()+" "+link.Ifi.Name]
			return seen || a == link.Own.Addr() || a == c.cfg.Real || a == c.cfg.VIP || isLocal(a)
		}
		c.spoofed = link.Unused(ctx, conn, drpath.FreeCandidates(link.Own, taken, 4), 300*time.Millisecond)
		if !c.spoofed.IsValid() {
			return fail("DR path to %s: no unused address in %s to send the probe from", c.cfg.Real, link.Own.Masked())
		}
	}
	ok, seen, err := link.Reaches(ctx, conn, mac, c.spoofed, c.cfg.VIP, c.cfg.Port, 2, c.cfg.Timeout)
	switch {
	case ctx.Err() != nil:
		return fail("DR path to %s: cancelled", c.cfg.Real)
	case err != nil:
		return fail("DR path to %s: %v", c.cfg.Real, err)
	case !ok:
		// Try another address next time, in case this one was taken since.
		spoofed := c.spoofed
		c.spoofed = netip.Addr{}
		return fail("forwarded frames do not reach %s: a SYN for %s:%d from %s (not this host's address) sent to %s on %s got no ARP request back within %v; an anti-spoofing filter between this host and the real server (libvirt clean-traffic, a cloud's source/destination check) is the usual cause",
			c.cfg.Real, c.cfg.VIP, c.cfg.Port, spoofed, mac, link.Ifi.Name, c.cfg.Timeout)
	}
	return up(fmt.Sprintf("a SYN from %s reached %s: %s", c.spoofed, c.cfg.Real, seen), start)
}

// isLocal reports whether a is an address of this host.
func isLocal(a netip.Addr) bool {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, x := range as {
		if n, ok := x.(*net.IPNet); ok {
			if ip, _ := netip.AddrFromSlice(n.IP); ip.Unmap() == a {
				return true
			}
		}
	}
	return false
}
