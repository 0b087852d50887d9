package netio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AnnouncerConfig tunes OpenAnnouncer. The zero value announces the
// interface's own MAC with request-form gratuitous ARP and NAs without the
// Router flag, from the interface's link-local address.
type AnnouncerConfig struct {
	// MAC is the link-layer address announced and used as the frames'
	// source; nil means the interface's (set the VMAC 00:00:5e:00:01:VRID
	// with use_vmac).
	MAC net.HardwareAddr
	// ARPReply sends the reply form of gratuitous ARP instead of the
	// request form.
	ARPReply bool
	// Router sets the Router flag of Neighbor Advertisements (RFC 4861
	// section 4.4), for a virtual router that routes.
	Router bool
	// LinkLocal is the IPv6 source of Neighbor Advertisements; the zero
	// Addr means the interface's first link-local address, as found at
	// open time or, on an interface that had none yet, at the first
	// Announce of an IPv6 address that finds one.
	LinkLocal netip.Addr
}

// AnnouncerStats are an Announcer's counters.
type AnnouncerStats struct {
	ARPs   uint64 // gratuitous ARP frames sent
	NAs    uint64 // Neighbor Advertisements sent
	Errors uint64 // Announce calls that failed
}

// Announcer sends gratuitous ARP and unsolicited Neighbor Advertisements on
// one interface through an AF_PACKET socket. It is safe for concurrent use.
//
// A send allocates nothing: the frame is built in the Announcer's buffer
// and goes out by a raw sendto to a socket address made at open, as the
// advert Socket's do. Through mdlayher/packet's Conn.WriteTo, each frame
// cost about 590 bytes of garbage (the socket address, the poller's
// closures), 6 MB for the takeover of 1,000 masters (issue #7,
// docs/benchmarks.md; TestAnnouncerSendsWithoutAllocating).
type Announcer struct {
	ifi net.Interface
	// mu guards cfg.LinkLocal (found late on a link that was down), buf
	// and fd: a send holds it, so Close does not close a socket under one.
	mu  sync.Mutex
	cfg AnnouncerConfig
	// fd is an AF_PACKET socket of protocol 0, not bound: it receives
	// nothing (no filter to run on every ARP and IPv6 frame of the link,
	// as the two bound sockets with a drop-all filter it replaces did),
	// and each frame's EtherType, interface and destination are in its
	// socket address. -1 once closed.
	fd          int
	arpTo, ndTo unix.RawSockaddrLinklayer
	buf         []byte // the frame being sent
	arps, nas   atomic.Uint64
	errs        atomic.Uint64
}

// sendTimeout bounds a send that waits for room in the socket's buffer (a
// link whose queue does not drain): an announcement is then dropped and
// counted rather than the caller held.
const sendTimeout = time.Second

// OpenAnnouncer opens an Announcer on interface ifname in the network
// namespace of the calling thread, resolving the interface's MAC and
// link-local address there, so that later calls work from any thread.
func OpenAnnouncer(ifname string, cfg AnnouncerConfig) (*Announcer, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netio: announcer on %s: %w", ifname, err)
	}
	if cfg.MAC == nil {
		cfg.MAC = ifi.HardwareAddr
	}
	if len(cfg.MAC) != 6 {
		return nil, fmt.Errorf("netio: announcer on %s: MAC %q, want an Ethernet address", ifname, cfg.MAC)
	}
	cfg.MAC = cloneMAC(cfg.MAC)
	if !cfg.LinkLocal.IsValid() {
		// Not there yet on an interface that is down: Announce looks again.
		cfg.LinkLocal, _ = linkLocal(ifi)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netio: announcer on %s: socket: %w", ifname, err)
	}
	tv := unix.NsecToTimeval(int64(sendTimeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("netio: announcer on %s: SO_SNDTIMEO: %w", ifname, err)
	}
	a := &Announcer{ifi: *ifi, cfg: cfg, fd: fd, buf: make([]byte, 0, 128)}
	// The address's protocol is the EtherType the kernel gives the frame
	// (skb->protocol), which local taps and qdiscs rely on.
	a.arpTo = linkAddr(ifi.Index, EtherTypeARP, broadcast)
	a.ndTo = linkAddr(ifi.Index, EtherTypeIPv6, allNodesEth)
	return a, nil
}

// linkAddr is the sockaddr_ll of a frame of EtherType et to dst on
// interface index.
func linkAddr(index int, et uint16, dst [6]byte) unix.RawSockaddrLinklayer {
	sa := unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Ifindex: int32(index), Halen: 6}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Protocol))[:], et) // network order
	copy(sa.Addr[:], dst[:])
	return sa
}

// Announce tells the link that ip is at the Announcer's MAC: a gratuitous
// ARP for an IPv4 address, an unsolicited Neighbor Advertisement for an
// IPv6 one. Repetition (keepalived's garp_master_repeat and refresh) is the
// caller's: one call sends one frame.
func (a *Announcer) Announce(ip netip.Addr) error {
	if err := a.announce(ip.Unmap()); err != nil {
		a.errs.Add(1)
		return fmt.Errorf("netio: announce %v on %s: %w", ip, a.ifi.Name, err)
	}
	return nil
}

func (a *Announcer) announce(ip netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var err error
	switch {
	case ip.Is4():
		if a.buf, err = appendGratuitousARP(a.buf[:0], a.cfg.MAC, ip, a.cfg.ARPReply); err != nil {
			return err
		}
		if err := a.send(&a.arpTo); err != nil {
			return err
		}
		a.arps.Add(1)
	case ip.Is6():
		src, err := a.source()
		if err != nil {
			return err
		}
		if a.buf, err = appendUnsolicitedNA(a.buf[:0], a.cfg.MAC, ip.WithZone(""), src, a.cfg.Router); err != nil {
			return err
		}
		if err := a.send(&a.ndTo); err != nil {
			return err
		}
		a.nas.Add(1)
	default:
		return errors.New("not an IP address")
	}
	return nil
}

// send sends a.buf to the address to; a.mu is held. The socket is
// blocking: a full send buffer (a burst on a slow link) waits for room,
// at most sendTimeout, so Syscall, which lets the runtime run other
// goroutines meanwhile, not RawSyscall. The socket is not bound, so it
// keeps no pending ENETDOWN from a link flap to fail a later send with
// (a bound one did, and the send after it was retried).
func (a *Announcer) send(to *unix.RawSockaddrLinklayer) error {
	if a.fd < 0 {
		return net.ErrClosed
	}
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(a.fd), uintptr(unsafe.Pointer(unsafe.SliceData(a.buf))), uintptr(len(a.buf)),
		0, uintptr(unsafe.Pointer(to)), unix.SizeofSockaddrLinklayer)
	if e != 0 {
		return e
	}
	return nil
}

// source returns the IPv6 source of Neighbor Advertisements: the
// configured one, or the interface's link-local address, looked up again
// (in the network namespace of the calling thread) while there is none.
// a.mu is held.
func (a *Announcer) source() (netip.Addr, error) {
	if !a.cfg.LinkLocal.IsValid() {
		ll, err := linkLocal(&a.ifi)
		if err != nil {
			return netip.Addr{}, err
		}
		a.cfg.LinkLocal = ll
	}
	return a.cfg.LinkLocal.WithZone(""), nil
}

// linkLocal returns the first IPv6 link-local address of ifi.
func linkLocal(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses: %w", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errors.New("no IPv6 link-local address to send Neighbor Advertisements from")
}

// MAC returns the link-layer address the Announcer announces.
func (a *Announcer) MAC() net.HardwareAddr { return cloneMAC(a.cfg.MAC) }

// Stats returns the counters. It takes no lock.
func (a *Announcer) Stats() AnnouncerStats {
	return AnnouncerStats{ARPs: a.arps.Load(), NAs: a.nas.Load(), Errors: a.errs.Load()}
}

// Close closes the socket.
func (a *Announcer) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fd < 0 {
		return net.ErrClosed
	}
	err := unix.Close(a.fd)
	a.fd = -1
	return err
}
