package addr

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"vigil/internal/inet"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// VMACAddr returns the VRRP virtual router MAC address of RFC 5798 section
// 7.3: 00:00:5e:00:01:VRID for IPv4, 00:00:5e:00:02:VRID for IPv6.
func VMACAddr(vrid uint8, fam inet.Family) net.HardwareAddr {
	kind := byte(1)
	if fam == inet.IPv6 {
		kind = 2
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, kind, vrid}
}

// EnsureVMAC makes sure the VMAC interface of VRID vrid exists on parent,
// configured and up, as keepalived's use_vmac does, and returns its name
// (config.Instance.VMACIfname gives keepalived's default). It is a macvlan in private mode
// (frames between sibling macvlans are not delivered, so two VMACs on one
// parent never answer for each other) with the MAC VMACAddr(vrid, fam).
// An interface of that name which is already such a VMAC is reused (after a
// crash, say); any other interface of that name is an error, never modified.
//
// Sysctls, as keepalived 2.2.7 sets them (observed in a namespace), for an
// IPv4 VMAC:
//   - VMAC arp_ignore=1: answer ARP only for addresses configured on the VMAC
//     itself, so the VMAC never hands out the virtual MAC for the parent's
//     own addresses.
//   - parent arp_ignore=1 and arp_filter=1: the parent receives the same
//     broadcast ARP requests; without these it would answer for the VIPs (on
//     the VMAC) with its own MAC, and hosts would bypass the virtual MAC,
//     breaking the point of use_vmac after a failover.
//   - parent arp_announce=2 (vigil's addition; keepalived 2.2.7 leaves it
//     alone): when the master answers a neighbour from a VIP, the reply may
//     leave through the parent, and an ARP request it sends from there
//     would by default name the VIP as sender with the parent's MAC. Every
//     neighbour that hears it caches VIP → parent MAC, and the next failover
//     breaks them, which is what use_vmac exists to prevent. With 2 the
//     parent names its own address instead.
//   - VMAC accept_local=1: frames the parent sends reach the VMAC too, with
//     a source address that is local to this host; accept them rather than
//     drop them as martians.
//   - VMAC rp_filter=0: the route back to any sender on the subnet goes
//     through the parent, so reverse path filtering would drop everything
//     that arrives on the VMAC. The kernel uses the larger of
//     conf/all/rp_filter and the interface's value, so when all.rp_filter is
//     set, every interface (and default) is first raised to it and
//     all.rp_filter is set to 0, which keeps every other interface's
//     effective value (keepalived.conf(5), use_vmac). RestoreSysctls undoes
//     that.
//
// IPv6 address generation is turned off on every VMAC (addrgenmode none):
// a link-local address derived from the shared virtual MAC would be the
// same on every router of the VRID. An IPv6 VMAC instead gets the parent's
// link-local address(es), without DAD and deprecated, so that adverts can
// be sent from the VMAC with the router's real link-local source.
func (m *Manager) EnsureVMAC(parent string, vrid uint8, fam inet.Family, name string) (ifname string, err error) {
	return m.EnsureVMACWithMAC(parent, vrid, fam, name, nil)
}

// EnsureVMACWithMAC is EnsureVMAC with the MAC address of `use_vmac NAME MAC`
// (see ParseVMACAddr); a nil mac means VMACAddr(vrid, fam).
func (m *Manager) EnsureVMACWithMAC(parent string, vrid uint8, fam inet.Family, name string, mac net.HardwareAddr) (ifname string, err error) {
	if vrid == 0 {
		return "", fmt.Errorf("addr: vmac on %s: VRID 0 is invalid: expected 1..255", parent)
	}
	if fam != inet.IPv4 && fam != inet.IPv6 {
		return "", fmt.Errorf("addr: vmac on %s for VRID %d: unknown family %s", parent, vrid, fam)
	}
	if name == "" {
		return "", fmt.Errorf("addr: vmac on %s for VRID %d: no interface name", parent, vrid)
	}
	if len(name) > 15 {
		return "", fmt.Errorf("addr: vmac %s on %s: interface names are at most 15 characters", name, parent)
	}
	if mac == nil {
		mac = VMACAddr(vrid, fam)
	}
	if len(mac) != 6 || mac[0]&1 != 0 {
		return "", fmt.Errorf("addr: vmac %s on %s: MAC %s is not a unicast Ethernet address", name, parent, mac)
	}
	fail := func(what string, err error) (string, error) {
		return "", fmt.Errorf("addr: vmac %s (%s) on %s: %s: %w", name, mac, parent, what, err)
	}
	pl, err := m.link(parent)
	if err != nil {
		return fail("parent", err)
	}
	l, err := m.link(name)
	switch {
	case errors.Is(err, ErrNoInterface):
		mv := &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: pl.Attrs().Index, HardwareAddr: mac},
			Mode:      netlink.MACVLAN_MODE_PRIVATE,
		}
		m.forgetLink(name)
		if err := m.h.LinkAdd(mv); err != nil {
			return fail("create macvlan", err)
		}
		if l, err = m.link(name); err != nil {
			return fail("find created macvlan", err)
		}
	case err != nil:
		return fail("look up", err)
	default:
		if err := isOurVMAC(l, pl, mac); err != nil {
			return fail("refusing to reuse an existing interface", fmt.Errorf("%w; give this instance's VMAC another name (use_vmac NAME)", err))
		}
	}
	// Before the link comes up, or the kernel generates the shared
	// link-local address at once. An IPv4 VMAC on a host without IPv6
	// cannot set it and does not need to.
	if err := m.h.LinkSetIP6AddrGenMode(l, 1 /* IN6_ADDR_GEN_MODE_NONE */); err != nil && fam == inet.IPv6 {
		return fail("disable IPv6 address generation", err)
	}
	if fam == inet.IPv4 {
		if err := m.vmacSysctls(name, parent); err != nil {
			return fail("sysctl", err)
		}
	}
	if err := m.h.LinkSetUp(l); err != nil {
		return fail("set up", err)
	}
	if fam == inet.IPv6 {
		if err := m.copyLinkLocal(pl, l); err != nil {
			return fail("link-local address", err)
		}
	}
	return name, nil
}

func isOurVMAC(l, parent netlink.Link, mac net.HardwareAddr) error {
	mv, ok := l.(*netlink.Macvlan)
	switch {
	case !ok:
		return fmt.Errorf("it is a %s, not a macvlan", l.Type())
	case mv.ParentIndex != parent.Attrs().Index:
		return fmt.Errorf("it is a macvlan on another interface (index %d)", mv.ParentIndex)
	case !bytes.Equal(mv.HardwareAddr, mac):
		return fmt.Errorf("it has MAC %s", mv.HardwareAddr)
	case mv.Mode != netlink.MACVLAN_MODE_PRIVATE:
		return fmt.Errorf("it is a macvlan in mode %d, not private", mv.Mode)
	}
	return nil
}

// copyLinkLocal adds the parent's IPv6 link-local addresses to the VMAC.
func (m *Manager) copyLinkLocal(parent, vmac netlink.Link) error {
	as, err := m.h.AddrList(parent, netlink.FAMILY_V6)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", parent.Attrs().Name, err)
	}
	n := 0
	for _, a := range as {
		if !a.IP.IsLinkLocalUnicast() {
			continue
		}
		n++
		ll := &netlink.Addr{
			IPNet:     &net.IPNet{IP: a.IP, Mask: a.Mask},
			Flags:     unix.IFA_F_NODAD,
			ValidLft:  Forever,
			LinkIndex: vmac.Attrs().Index,
			// PreferedLft 0 (deprecated): the parent stays the
			// interface the host uses this address on.
		}
		if err := m.h.AddrAdd(vmac, ll); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add %s to %s: %w", a.IP, vmac.Attrs().Name, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("%s has no IPv6 link-local address to send adverts from", parent.Attrs().Name)
	}
	return nil
}

// RemoveVMAC deletes the VMAC interface name. An interface already gone is
// success; an interface that is not a private-mode macvlan (as EnsureVMAC
// makes them) is left alone and reported, so that a typo can never delete a
// real interface.
func (m *Manager) RemoveVMAC(name string) error {
	l, err := m.link(name)
	if errors.Is(err, ErrNoInterface) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("addr: remove vmac %s: %w", name, err)
	}
	if mv, ok := l.(*netlink.Macvlan); !ok || mv.Mode != netlink.MACVLAN_MODE_PRIVATE {
		return fmt.Errorf("addr: remove vmac %s: refusing: it is a %s with MAC %s, not a VMAC (a private-mode macvlan)", name, l.Type(), l.Attrs().HardwareAddr)
	}
	m.forgetLink(name)
	if err := m.h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("addr: remove vmac %s: %w", name, err)
	}
	return nil
}

type sysctlValue struct {
	path, value string
}

const ipv4Conf = "/proc/sys/net/ipv4/conf"

func readSysctl(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return err
	}
	return nil
}

// vmacSysctls sets the IPv4 sysctls of an IPv4 VMAC and its parent (see
// EnsureVMAC for why).
func (m *Manager) vmacSysctls(vmac, parent string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inNS(func() error {
		set := []sysctlValue{
			{filepath.Join(ipv4Conf, vmac, "arp_ignore"), "1"},
			{filepath.Join(ipv4Conf, vmac, "accept_local"), "1"},
			{filepath.Join(ipv4Conf, vmac, "rp_filter"), "0"},
			{filepath.Join(ipv4Conf, parent, "arp_ignore"), "1"},
			{filepath.Join(ipv4Conf, parent, "arp_filter"), "1"},
			{filepath.Join(ipv4Conf, parent, "arp_announce"), "2"},
		}
		if err := m.lowerAllRPFilter(); err != nil {
			return err
		}
		for _, s := range set {
			if err := writeSysctl(s.path, s.value); err != nil {
				return err
			}
		}
		return nil
	})
}

// lowerAllRPFilter moves a non-zero conf/all/rp_filter down into every
// interface and default, then sets all to 0, recording what it changed.
func (m *Manager) lowerAllRPFilter() error {
	allPath := filepath.Join(ipv4Conf, "all", "rp_filter")
	v, err := readSysctl(allPath)
	if err != nil {
		return err
	}
	all, err := strconv.Atoi(v)
	if err != nil || all == 0 {
		return err
	}
	dirs, err := os.ReadDir(ipv4Conf)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if d.Name() == "all" {
			continue
		}
		p := filepath.Join(ipv4Conf, d.Name(), "rp_filter")
		cur, err := readSysctl(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) { // interface just went away
				continue
			}
			return err
		}
		if n, err := strconv.Atoi(cur); err == nil && n >= all {
			continue
		}
		if err := writeSysctl(p, strconv.Itoa(all)); err != nil {
			return err
		}
		m.saved = append(m.saved, sysctlValue{p, cur})
	}
	if err := writeSysctl(allPath, "0"); err != nil {
		return err
	}
	m.saved = append(m.saved, sysctlValue{allPath, v})
	return nil
}

// RestoreSysctls puts back the rp_filter values EnsureVMAC changed in other
// interfaces than the VMAC (see EnsureVMAC), in reverse order, as keepalived
// does on termination. Values of interfaces that no longer exist are skipped.
// Like keepalived, it leaves the parent's arp_ignore and arp_filter set: they
// are harmless without a VMAC and another instance may still rely on them.
func (m *Manager) RestoreSysctls() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inNS(func() error {
		var errs []error
		for i := len(m.saved) - 1; i >= 0; i-- {
			s := m.saved[i]
			if err := writeSysctl(s.path, s.value); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("addr: restore %s to %s: %w", s.path, s.value, err))
			}
		}
		m.saved = nil
		return errors.Join(errs...)
	})
}

// PromoteSecondaries sets promote_secondaries on dev (the instance option of
// that name): without it, removing the first (primary) address of a subnet
// from an interface makes the kernel remove every other address of that
// subnet with it, so dropping one VIP on a reload would silently drop its
// neighbours too.
func (m *Manager) PromoteSecondaries(dev string) error {
	return m.inNS(func() error {
		if err := writeSysctl(filepath.Join(ipv4Conf, dev, "promote_secondaries"), "1"); err != nil {
			return fmt.Errorf("addr: promote_secondaries on %s: %w", dev, err)
		}
		return nil
	})
}
