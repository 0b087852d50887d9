package netio

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
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
	// Addr means the interface's first link-local address at open time.
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
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("netio: announcer on %s: addresses: %w", ifname, err)
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
					cfg.LinkLocal = ip
					break
				}
			}
		}
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
		if _, err := a.arp.WriteTo(f, &packet.Addr{HardwareAddr: broadcastMAC()}); err != nil {
			return err
		}
		a.arps.Add(1)
	case ip.Is6():
		if !a.cfg.LinkLocal.IsValid() {
			return errors.New("no IPv6 link-local source address on the interface")
		}
		f, err := UnsolicitedNA(a.cfg.MAC, ip.WithZone(""), a.cfg.LinkLocal.WithZone(""), a.cfg.Router)
		if err != nil {
			return err
		}
		if _, err := a.nd.WriteTo(f, &packet.Addr{HardwareAddr: allNodesMAC()}); err != nil {
			return err
		}
		a.nas.Add(1)
	default:
		return errors.New("not an IP address")
	}
	return nil
}

// MAC returns the link-layer address the Announcer announces.
func (a *Announcer) MAC() net.HardwareAddr { return cloneMAC(a.cfg.MAC) }

// Stats returns the counters. It takes no lock.
func (a *Announcer) Stats() AnnouncerStats {
	return AnnouncerStats{ARPs: a.arps.Load(), NAs: a.nas.Load(), Errors: a.errs.Load()}
}

// Close closes the sockets.
func (a *Announcer) Close() error { return errors.Join(a.arp.Close(), a.nd.Close()) }
