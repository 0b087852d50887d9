package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Summary is a short human description of what the configuration sets
// up, for `vigil check`.
func (c *Config) Summary() string {
	vips, peers := 0, 0
	for _, i := range c.Instances {
		vips += len(i.VIPs) + len(i.ExcludedVIPs)
		peers += len(i.UnicastPeers)
	}
	rs := 0
	for _, vs := range c.VirtualServers {
		rs += len(vs.RealServers)
	}
	var s strings.Builder
	fmt.Fprintf(&s, "%d vrrp instance%s (%d VIP%s", len(c.Instances), plural(len(c.Instances)), vips, plural(vips))
	if peers > 0 {
		fmt.Fprintf(&s, ", %d unicast peer%s", peers, plural(peers))
	}
	fmt.Fprintf(&s, "), %d sync group%s, %d vrrp script%s; %d virtual server%s (%d real server%s)",
		len(c.SyncGroups), plural(len(c.SyncGroups)), len(c.Scripts), plural(len(c.Scripts)),
		len(c.VirtualServers), plural(len(c.VirtualServers)), rs, plural(rs))
	return s.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// unsupportedMark starts the message of every diagnostic about a feature
// keepalived has and vigil refuses (AH, TUN), so that callers can tell
// them from configuration mistakes.
const unsupportedMark = "vigil does not support "

// IsUnsupported reports whether d is an error only because vigil refuses
// a keepalived feature (keepalived itself would accept the config).
func IsUnsupported(d Diagnostic) bool { return strings.HasPrefix(d.Msg, unsupportedMark) }

// AddrPort is the service's address and port (invalid for fwmark and
// group services).
func (vs *VirtualServer) AddrPort() netip.AddrPort {
	if vs.Kind != VSAddr {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(vs.Addr, vs.Port)
}

// AddrPort is the real server's address and port (port 0 for fwmark
// services: the packet's own port is kept).
func (rs *RealServer) AddrPort() netip.AddrPort { return netip.AddrPortFrom(rs.Addr, rs.Port) }

// Target is where the checker connects.
func (c *Checker) Target() netip.AddrPort { return netip.AddrPortFrom(c.ConnectIP, c.ConnectPort) }
