package netio

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
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
// one interface through AF_PACKET sockets. It is safe for concurrent use.
type Announcer struct {
	ifi       net.Interface
	mu        sync.Mutex // guards cfg.LinkLocal, found late on a link that was down
	cfg       AnnouncerConfig
	arp, nd   *packet.Conn // send-only: their filter drops everything inbound
	arps, nas atomic.Uint64
	errs      atomic.Uint64
}

// dropAll is a classic BPF program that accepts nothing: the Announcer
// only sends, and without it the kernel would queue every ARP or IPv6
// frame of the link on the sockets.
func dropAll() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
}

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
	filter, err := dropAll()
	if err != nil {
		return nil, fmt.Errorf("netio: announcer on %s: %w", ifname, err)
	}
	a := &Announcer{ifi: *ifi, cfg: cfg}
	// The socket protocol is the EtherType the kernel gives the frames it
	// sends (skb->protocol), which local taps and qdiscs rely on.
	if a.arp, err = packet.Listen(ifi, packet.Raw, EtherTypeARP, &packet.Config{Filter: filter}); err != nil {
		return nil, fmt.Errorf("netio: announcer on %s: ARP socket: %w", ifname, err)
	}
	if a.nd, err = packet.Listen(ifi, packet.Raw, EtherTypeIPv6, &packet.Config{Filter: filter}); err != nil {
		_ = a.arp.Close()
		return nil, fmt.Errorf("netio: announcer on %s: IPv6 socket: %w", ifname, err)
	}
	return a, nil
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
	switch {
	case ip.Is4():
		f, err := GratuitousARP(a.cfg.MAC, ip, a.cfg.ARPReply)
		if err != nil {
			return err
		}
		if err := write(a.arp, f, broadcastMAC()); err != nil {
			return err
		}
		a.arps.Add(1)
	case ip.Is6():
		src, err := a.source()
		if err != nil {
			return err
		}
		f, err := UnsolicitedNA(a.cfg.MAC, ip.WithZone(""), src, a.cfg.Router)
		if err != nil {
			return err
		}
		if err := write(a.nd, f, allNodesMAC()); err != nil {
			return err
		}
		a.nas.Add(1)
	default:
		return errors.New("not an IP address")
	}
	return nil
}

// write sends frame f to dst on c. An AF_PACKET socket keeps a pending
// ENETDOWN from the last time its interface was down (or from being opened
// while it was), and returns it, once, from the next send, which it drops;
// so ENETDOWN is retried once, and only a second one means the interface
// is down now. Without this the first gratuitous ARP after a link flap,
// the one that matters most, would be lost.
func write(c *packet.Conn, f []byte, dst net.HardwareAddr) error {
	_, err := c.WriteTo(f, &packet.Addr{HardwareAddr: dst})
	if errors.Is(err, unix.ENETDOWN) {
		_, err = c.WriteTo(f, &packet.Addr{HardwareAddr: dst})
	}
	return err
}

// source returns the IPv6 source of Neighbor Advertisements: the
// configured one, or the interface's link-local address, looked up again
// (in the network namespace of the calling thread) while there is none.
func (a *Announcer) source() (netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
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

// Close closes the sockets.
func (a *Announcer) Close() error { return errors.Join(a.arp.Close(), a.nd.Close()) }
