// Package drpath tests the path a DR director's forwarded frames take to a
// real server: frames whose IP source is a client's, not the director's,
// sent to the real server's MAC. A filter that lets a host send only its
// own addresses (libvirt's clean-traffic, a cloud's source/destination
// check, switch port security) drops them all while the director's own
// traffic, health checks included, passes.
//
// The test sends the real server a TCP SYN for VIP:port from an unused
// address of the link's subnet. The real server answers it (SYN-ACK, or RST
// if nothing listens), and to send that answer it must first ask by ARP
// broadcast who has the unused address: seeing that request proves the
// SYN arrived. `vigil doctor` (VD705) and the DR_PATH_CHECK checker (a
// vigil extension) use it. IPv4 only; Linux only (AF_PACKET).
package drpath

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"vigil/internal/inet"
)

// SYN builds an Ethernet frame carrying a TCP SYN from src:sport to
// dst:dport (IPv4), with valid IP and TCP checksums.
func SYN(ethDst, ethSrc net.HardwareAddr, src, dst netip.Addr, sport, dport uint16, seq uint32) ([]byte, error) {
	if !src.Is4() || !dst.Is4() || len(ethDst) != 6 || len(ethSrc) != 6 {
		return nil, errors.New("drpath: IPv4 addresses and Ethernet MACs only")
	}
	const ipLen, tcpLen = 20, 20
	b := make([]byte, 14+ipLen+tcpLen)
	copy(b[0:6], ethDst)
	copy(b[6:12], ethSrc)
	binary.BigEndian.PutUint16(b[12:14], 0x0800)
	ip := b[14 : 14+ipLen]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], ipLen+tcpLen)
	binary.BigEndian.PutUint16(ip[4:6], uint16(seq))
	ip[6] = 0x40 // don't fragment
	ip[8] = 64
	ip[9] = 6
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	binary.BigEndian.PutUint16(ip[10:12], ^inet.Fold(inet.Sum(0, ip)))
	tcp := b[14+ipLen:]
	binary.BigEndian.PutUint16(tcp[0:2], sport)
	binary.BigEndian.PutUint16(tcp[2:4], dport)
	binary.BigEndian.PutUint32(tcp[4:8], seq)
	tcp[12] = 5 << 4
	tcp[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(tcp[14:16], 64240)
	binary.BigEndian.PutUint16(tcp[16:18], ^inet.Fold(inet.Sum(inet.PseudoHeaderSum(0, src, dst, 6, tcpLen), tcp)))
	return b, nil
}

// TCP is a TCP segment seen in a captured frame.
type TCP struct {
	EthSrc        net.HardwareAddr
	Src, Dst      netip.AddrPort
	SYN, ACK, RST bool
}

// ParseTCP reads an Ethernet/IPv4/TCP frame (no VLAN tag); ok is false for
// anything else.
func ParseTCP(b []byte) (r TCP, ok bool) {
	if len(b) < 14+20+20 || binary.BigEndian.Uint16(b[12:14]) != 0x0800 {
		return r, false
	}
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ihl < 20 || ip[9] != 6 || len(ip) < ihl+20 {
		return r, false
	}
	tcp := ip[ihl:]
	flags := tcp[13]
	return TCP{
		EthSrc: net.HardwareAddr(append([]byte(nil), b[6:12]...)),
		Src:    netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(tcp[0:2])),
		Dst:    netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(tcp[2:4])),
		SYN:    flags&0x02 != 0, ACK: flags&0x10 != 0, RST: flags&0x04 != 0,
	}, true
}

func (r TCP) String() string {
	kind := "TCP"
	switch {
	case r.SYN && r.ACK:
		kind = "SYN-ACK"
	case r.RST:
		kind = "RST"
	}
	return fmt.Sprintf("%s %s -> %s from %s", kind, r.Src, r.Dst, r.EthSrc)
}

// FreeCandidates lists addresses of p's subnet to try as the foreign
// source, from the top down (the last hosts of a subnet are the ones least
// often assigned), skipping taken ones; at most n. None for a /31 or /32.
func FreeCandidates(p netip.Prefix, taken func(netip.Addr) bool, n int) []netip.Addr {
	p = p.Masked()
	if !p.Addr().Is4() || p.Bits() > 30 {
		return nil
	}
	base := binary.BigEndian.Uint32(p.Addr().AsSlice())
	size := uint32(1) << (32 - p.Bits())
	var out []netip.Addr
	for off := size - 2; off >= 1 && len(out) < n; off-- {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], base+off)
		if addr := netip.AddrFrom4(a); !taken(addr) {
			out = append(out, addr)
		}
	}
	return out
}

// Neighbours reads the IPv4 neighbour table (/proc/net/arp): "address
// interface" to MAC, complete entries only.
func Neighbours() map[string]net.HardwareAddr {
	m := map[string]net.HardwareAddr{}
	f, err := os.Open("/proc/net/arp")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[2] == "0x0" {
			continue
		}
		if mac, err := net.ParseMAC(fs[3]); err == nil && len(mac) == 6 {
			m[fs[0]+" "+fs[5]] = mac
		}
	}
	return m
}
