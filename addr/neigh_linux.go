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
// real servers are reached by their MAC (lb.SetMAC); bfd_takeover matches
// an IPv6 master's link-local address to a BFD neighbor by it.
//
// An address with a zone (fe80::1%eth0) matches only the entry on that
// interface, and is the key of its result; one without matches an entry
// on any interface.
func Neighbours(want []netip.Addr) (map[netip.Addr][6]byte, error) {
	wanted := make(map[netip.Addr]bool, len(want))
	// zoned: address without zone -> interface index -> the zoned address.
	zoned := map[netip.Addr]map[int]netip.Addr{}
	for _, a := range want {
		a = a.Unmap()
		if a.Zone() == "" {
			wanted[a] = true
			continue
		}
		ifi, err := net.InterfaceByName(a.Zone())
		if err != nil {
			continue // no such interface: nothing to find or resolve
		}
		if zoned[a.WithZone("")] == nil {
			zoned[a.WithZone("")] = map[int]netip.Addr{}
		}
		zoned[a.WithZone("")][ifi.Index] = a
	}
	neighs, err := netlink.NeighList(0, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := map[netip.Addr][6]byte{}
	for _, n := range neighs {
		a, ok := netip.AddrFromSlice(n.IP)
		if !ok || len(n.HardwareAddr) != 6 || n.State&usableNeigh == 0 {
			continue
		}
		a = a.Unmap()
		if wanted[a] {
			out[a] = [6]byte(n.HardwareAddr)
		}
		if z, ok := zoned[a][n.LinkIndex]; ok {
			out[z] = [6]byte(n.HardwareAddr)
		}
	}
	for _, a := range want {
		a = a.Unmap()
		if _, ok := out[a]; ok {
			continue
		}
		if z := a.Zone(); z != "" {
			if _, err := net.InterfaceByName(z); err != nil {
				continue
			}
		}
		// The reply, if any, does not matter.
		if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9))); err == nil {
			_, _ = c.Write([]byte{0})
			c.Close()
		}
	}
	return out, nil
}
