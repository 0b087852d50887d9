package netio

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
	"vigil/internal/inet"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// RouterKey identifies a virtual router as the wire shows it: one sender of
// adverts for one VRID in one VRRP version. Two keys with the same VRID and
// different sources on one link are either a master and its backups taking
// turns, or two virtual routers clashing.
type RouterKey struct {
	Version uint8
	VRID    uint8
	Src     netip.Addr
}

// Sighting is what a Sniffer saw of one RouterKey.
type Sighting struct {
	Adverts  uint64 // adverts seen
	Priority uint8  // of the last advert
	Interval uint16 // of the last advert, raw: seconds (v2) or centiseconds (v3)
	Addrs    int    // address count of the last advert
	MAC      string // Ethernet source of the last advert (a VMAC shows use_vmac)
}

// Sniffer passively counts the VRRP adverts on one link, sent by this host
// or any other, whatever their group or destination, for `vigil doctor`'s
// VRID clash check. It sees what a packet capture would: an AF_PACKET
// socket with a kernel filter that keeps only IP protocol 112.
type Sniffer struct {
	conn *packet.Conn

	mu        sync.Mutex
	seen      map[RouterKey]Sighting
	malformed uint64
}

// vrrpFilter is a classic BPF program on Ethernet frames that accepts IPv4
// and IPv6 packets whose protocol / next header is VRRP, and nothing else,
// so that the kernel copies no other traffic to the socket.
func vrrpFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 12, Size: 2},                                // EtherType
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: EtherTypeIPv4, SkipFalse: 3}, // to IPv6 check
		bpf.LoadAbsolute{Off: ethHeaderLen + 9, Size: 1},                  // IPv4 protocol
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: Protocol, SkipTrue: 5},       // accept
		bpf.RetConstant{Val: 0},                                           // drop
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: EtherTypeIPv6, SkipFalse: 2}, // to drop
		bpf.LoadAbsolute{Off: ethHeaderLen + 6, Size: 1},                  // IPv6 next header
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: Protocol, SkipTrue: 1},       // accept
		bpf.RetConstant{Val: 0},                                           // drop
		bpf.RetConstant{Val: 1 << 16},                                     // accept, whole frame
	})
}

// OpenSniffer opens a Sniffer on interface ifname in the network namespace
// of the calling thread. It counts nothing until Run.
func OpenSniffer(ifname string) (*Sniffer, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netio: sniffer on %s: %w", ifname, err)
	}
	filter, err := vrrpFilter()
	if err != nil {
		return nil, fmt.Errorf("netio: sniffer on %s: %w", ifname, err)
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("netio: sniffer on %s: %w", ifname, err)
	}
	return &Sniffer{conn: c, seen: map[RouterKey]Sighting{}}, nil
}

// Run counts adverts until ctx ends or the Sniffer is closed, and then
// returns nil; it returns an error only if reading fails otherwise.
func (s *Sniffer) Run(ctx context.Context) error {
	// The AfterFunc goroutine only expires the read deadline, which ends
	// the loop below; stop unregisters it when Run returns first.
	stop := context.AfterFunc(ctx, func() { _ = s.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 1<<16)
	for {
		n, _, err := s.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("netio: sniffer: %w", err)
		}
		s.count(buf[:n])
	}
}

// count records one captured frame.
func (s *Sniffer) count(f []byte) {
	key, sig, ok := decodeAdvert(f)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.malformed++
		return
	}
	sig.Adverts = s.seen[key].Adverts + 1
	s.seen[key] = sig
}

// decodeAdvert extracts the sender and header fields of the VRRP advert in
// Ethernet frame f. It reports false for anything else, including a
// fragment and a message shorter than the VRRP header.
func decodeAdvert(f []byte) (RouterKey, Sighting, bool) {
	if len(f) < ethHeaderLen {
		return RouterKey{}, Sighting{}, false
	}
	var key RouterKey
	var m []byte
	ip := f[ethHeaderLen:]
	switch binary.BigEndian.Uint16(f[12:14]) {
	case EtherTypeIPv4:
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != Protocol {
			return RouterKey{}, Sighting{}, false
		}
		ihl, tot := int(ip[0]&0x0f)*4, int(binary.BigEndian.Uint16(ip[2:4]))
		if frag := binary.BigEndian.Uint16(ip[6:8]); frag&0x3fff != 0 { // MF or an offset
			return RouterKey{}, Sighting{}, false
		}
		if ihl < 20 || tot < ihl || tot > len(ip) {
			return RouterKey{}, Sighting{}, false
		}
		key.Src = netip.AddrFrom4([4]byte(ip[12:16]))
		m = ip[ihl:tot]
	case EtherTypeIPv6:
		if len(ip) < ipv6HdrLen || ip[0]>>4 != 6 || ip[6] != Protocol {
			return RouterKey{}, Sighting{}, false
		}
		plen := int(binary.BigEndian.Uint16(ip[4:6]))
		if plen > len(ip)-ipv6HdrLen {
			return RouterKey{}, Sighting{}, false
		}
		key.Src = netip.AddrFrom16([16]byte(ip[8:24]))
		m = ip[ipv6HdrLen : ipv6HdrLen+plen]
	default:
		return RouterKey{}, Sighting{}, false
	}
	if len(m) < 8 {
		return RouterKey{}, Sighting{}, false
	}
	key.Version, key.VRID = m[0]>>4, m[1]
	sig := Sighting{Priority: m[2], Addrs: int(m[3]), MAC: net.HardwareAddr(f[6:12]).String()}
	if key.Version == 2 {
		sig.Interval = uint16(m[5])
	} else {
		sig.Interval = binary.BigEndian.Uint16(m[4:6]) & 0x0fff
	}
	return key, sig, true
}

// Seen returns a copy of the counts so far.
func (s *Sniffer) Seen() map[RouterKey]Sighting {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.seen)
}

// Malformed returns how many captured protocol 112 frames were not
// decodable adverts.
func (s *Sniffer) Malformed() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.malformed
}

// Clash is one VRID advertised by more than one source.
type Clash struct {
	Family        inet.Family // IPv4 and IPv6 routers may share a VRID: their virtual MACs differ (RFC 5798 section 7.3)
	Version, VRID uint8
	Sources       []netip.Addr // sorted
}

// Clashes returns, sorted by family, version and VRID, the VRIDs advertised
// by more than one source in what was seen so far. On a healthy link a VRID
// has one source at a time, though a failover shows two in succession; two
// that keep advertising are a split brain or two virtual routers sharing a
// VRID.
func (s *Sniffer) Clashes() []Clash {
	s.mu.Lock()
	defer s.mu.Unlock()
	type id struct {
		fam           inet.Family
		version, vrid uint8
	}
	by := map[id][]netip.Addr{}
	for k := range s.seen {
		i := id{inet.IPv6, k.Version, k.VRID}
		if k.Src.Is4() {
			i.fam = inet.IPv4
		}
		by[i] = append(by[i], k.Src)
	}
	var out []Clash
	for i, srcs := range by {
		if len(srcs) > 1 {
			slices.SortFunc(srcs, netip.Addr.Compare)
			out = append(out, Clash{Family: i.fam, Version: i.version, VRID: i.vrid, Sources: srcs})
		}
	}
	slices.SortFunc(out, func(a, b Clash) int {
		return cmp.Or(cmp.Compare(a.Family, b.Family), cmp.Compare(a.Version, b.Version), cmp.Compare(a.VRID, b.VRID))
	})
	return out
}

// Close closes the socket; a Run in progress returns.
func (s *Sniffer) Close() error { return s.conn.Close() }
