package addr

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// usableNeigh are the neighbour states whose link-layer address can be
// used: confirmed, or being confirmed.
const usableNeigh = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT

// Neighbours returns the Ethernet addresses the kernel's neighbour tables
// hold, in a usable state, for the addresses in want (IPv4 and IPv6), and
// makes the kernel resolve the others: a datagram to their discard port
// (9) starts ARP or neighbour discovery, and the next call finds them. DR
// real servers are reached by their MAC (lb.SetMAC).
func Neighbours(want []netip.Addr) (map[netip.Addr][6]byte, error) {
	wanted := make(map[netip.Addr]bool, len(want))
	for _, a := range want {
		wanted[a.Unmap()] = true
	}
	neighs, err := netlink.NeighList(0, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := map[netip.Addr][6]byte{}
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || !wanted[a.Unmap()] || len(n.HardwareAddr) != 6 || n.State&usableNeigh == 0 {
			continue
		}
		out[a.Unmap()] = [6]byte(n.HardwareAddr)
	}
	for a := range wanted {
		if _, ok := out[a]; ok {
			continue
		}
		// The reply, if any, does not matter.
		if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9))); err == nil {
			_, _ = c.Write([]byte{0})
			c.Close()
		}
	}
	return out, nil
}
