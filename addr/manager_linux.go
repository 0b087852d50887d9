package addr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"vigil/internal/nsthread"
)

// ErrNoInterface is wrapped by errors about an interface that does not exist.
var ErrNoInterface = errors.New("no such interface")

// Manager adds and removes VIPs, routes, rules and VMACs in one network
// namespace. It is safe for concurrent use (the kernel serialises the
// changes; the Manager only guards its own record of changed sysctls).
type Manager struct {
	h   *netlink.Handle
	ns  netns.NsHandle // for sysctls; closed (-1) means the caller's namespace
	own bool           // h and ns were opened by NewAt and are closed by Close

	mu    sync.Mutex
	saved []sysctlValue // original values of sysctls changed for VMACs

	// index caches interface indexes by name for Add and Remove. A full
	// LinkByName parses every attribute of the link (stats, driver info):
	// BenchmarkAddRemove went from 18,256 B and 122 allocations to 1,841 B
	// and 40 per Add+Remove (fewer GC cycles when 1,000 instances become
	// master at once; RSS did not move, see docs/benchmarks.md). Linux
	// does not hand a deleted interface's index to a new one soon
	// (indexes grow), so a stale entry shows up as ENODEV: the entry is
	// dropped and the lookup redone once.
	imu   sync.Mutex
	index map[string]int
}

// New returns a Manager that works through h, in h's namespace; sysctls (for
// VMACs) are written in the caller's namespace, so h should belong to it. A
// nil h sends each request on a fresh socket in the calling thread's
// namespace. The caller keeps ownership of h.
func New(h *netlink.Handle) *Manager {
	if h == nil {
		h = &netlink.Handle{}
	}
	return &Manager{h: h, ns: netns.None()}
}

// NewAt returns a Manager for network namespace ns, whatever namespace the
// caller runs in: it opens its own netlink handle there and writes sysctls
// from a thread that has entered ns. ns is duplicated, so the caller may close
// its copy. Close releases both.
func NewAt(ns netns.NsHandle) (*Manager, error) {
	fd, err := unix.FcntlInt(uintptr(ns), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("addr: duplicate namespace handle %s: %w", ns, err)
	}
	dup := netns.NsHandle(fd)
	h, err := netlink.NewHandleAt(dup)
	if err != nil {
		dup.Close()
		return nil, fmt.Errorf("addr: netlink handle in namespace %s: %w", ns, err)
	}
	return &Manager{h: h, ns: dup, own: true}, nil
}

// Close releases what NewAt opened. It does not undo any change.
func (m *Manager) Close() error {
	if !m.own {
		return nil
	}
	m.h.Close()
	err := m.ns.Close()
	m.ns = netns.None()
	return err
}

// link finds an interface by name; the error wraps ErrNoInterface when it does
// not exist.
func (m *Manager) link(name string) (netlink.Link, error) {
	l, err := m.h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("interface %s: %w", name, ErrNoInterface)
		}
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	return l, nil
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func toPrefix(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	bits, _ := n.Mask.Size()
	if a.Is4In6() && bits > 32 {
		bits -= 96
	}
	return netip.PrefixFrom(a.Unmap(), bits)
}

func toAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// nlAddr is the netlink form of v.
func (v VIP) nlAddr(index int) *netlink.Addr {
	a := &netlink.Addr{
		IPNet:     ipnet(v.Prefix),
		Label:     v.Label,
		Scope:     int(v.Scope),
		LinkIndex: index,
	}
	if v.Peer.IsValid() {
		a.Peer = ipnet(v.Peer)
	}
	if v.Prefix.Addr().Is4() {
		// The netlink library computes a broadcast address when none is
		// given; keepalived (like `ip addr add`) sets one only for brd.
		a.Broadcast = net.IPv4zero
		if v.Brd.IsValid() {
			a.Broadcast = v.Brd.AsSlice()
		}
	} else {
		a.Flags |= unix.IFA_F_NODAD
		a.ValidLft = Forever
		a.PreferedLft = int(v.preferredLft())
	}
	for _, f := range []struct {
		on   bool
		flag int
	}{
		{v.Home, unix.IFA_F_HOMEADDRESS},
		{v.MngTmpAddr, unix.IFA_F_MANAGETEMPADDR},
		{v.NoPrefixRoute, unix.IFA_F_NOPREFIXROUTE},
		{v.AutoJoin, unix.IFA_F_MCAUTOJOIN},
	} {
		if f.on {
			a.Flags |= f.flag
		}
	}
	return a
}

// linkIndex is the index of interface name, from the cache when it is there
// (cached says so) and else from the kernel; the error wraps ErrNoInterface
// when the interface does not exist.
func (m *Manager) linkIndex(name string) (index int, cached bool, err error) {
	m.imu.Lock()
	index, cached = m.index[name]
	m.imu.Unlock()
	if cached {
		return index, true, nil
	}
	l, err := m.link(name)
	if err != nil {
		return 0, false, err
	}
	index = l.Attrs().Index
	m.imu.Lock()
	if m.index == nil {
		m.index = make(map[string]int)
	}
	m.index[name] = index
	m.imu.Unlock()
	return index, false, nil
}

// forgetLink drops name's cached index: the interface was deleted or
// recreated, or a request with the cached index failed.
func (m *Manager) forgetLink(name string) {
	m.imu.Lock()
	delete(m.index, name)
	m.imu.Unlock()
}

// ForgetLinks empties the cache of interface indexes. The daemon calls it on
// every link event, so that a renamed interface is looked up again by name.
func (m *Manager) ForgetLinks() {
	m.imu.Lock()
	clear(m.index)
	m.imu.Unlock()
}

// withIndex runs op with name's index, once more with a fresh lookup when a
// cached index turns out stale (ENODEV: the interface was recreated).
func (m *Manager) withIndex(name string, op func(index int) error) error {
	index, cached, err := m.linkIndex(name)
	if err != nil {
		return err
	}
	err = op(index)
	if cached && errors.Is(err, unix.ENODEV) {
		m.forgetLink(name)
		if index, _, err = m.linkIndex(name); err != nil {
			return err
		}
		err = op(index)
	}
	if errors.Is(err, unix.ENODEV) {
		m.forgetLink(name)
	}
	return err
}

// Add puts vip on its interface. An address already present is success.
func (m *Manager) Add(vip VIP) error {
	if err := vip.Validate(); err != nil {
		return fmt.Errorf("addr: add: %w", err)
	}
	err := m.withIndex(vip.Dev, func(index int) error {
		// A nil link makes the library use the address's LinkIndex.
		return m.h.AddrAdd(nil, vip.nlAddr(index))
	})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("addr: add %s to %s: %w", vip.Prefix, vip.Dev, err)
	}
	return nil
}

// Remove takes vip off its interface. An address (or interface) already gone
// is success.
func (m *Manager) Remove(vip VIP) error {
	if err := vip.Validate(); err != nil {
		return fmt.Errorf("addr: remove: %w", err)
	}
	err := m.withIndex(vip.Dev, func(index int) error {
		return m.h.AddrDel(nil, vip.nlAddr(index))
	})
	if errors.Is(err, ErrNoInterface) {
		return nil
	}
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("addr: remove %s from %s: %w", vip.Prefix, vip.Dev, err)
	}
	return nil
}

// Has reports whether vip is on its interface. It matches the way the kernel
// identifies addresses: an IPv4 address by address, prefix length and peer,
// an IPv6 address by address alone. A missing interface means false.
func (m *Manager) Has(vip VIP) (bool, error) {
	if err := vip.Validate(); err != nil {
		return false, fmt.Errorf("addr: has: %w", err)
	}
	as, err := m.addrsOf(vip)
	if err != nil {
		return false, err
	}
	return holds(as, vip), nil
}

// addrsOf lists the addresses of vip's family on vip's interface; nil for
// a missing interface.
func (m *Manager) addrsOf(vip VIP) ([]netlink.Addr, error) {
	l, err := m.link(vip.Dev)
	if errors.Is(err, ErrNoInterface) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("addr: look for %s on %s: %w", vip.Prefix, vip.Dev, err)
	}
	fam := netlink.FAMILY_V4
	if vip.Prefix.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	as, err := m.h.AddrList(l, fam)
	if err != nil {
		return nil, fmt.Errorf("addr: list addresses of %s: %w", vip.Dev, err)
	}
	return as, nil
}

// holds tells whether as, an interface's addresses, include vip.
func holds(as []netlink.Addr, vip VIP) bool {
	for _, a := range as {
		p := toPrefix(a.IPNet)
		if p.Addr() != vip.Prefix.Addr() {
			continue
		}
		// An IPv4 address with a peer takes its prefix length from the peer.
		bits := vip.Prefix.Bits()
		if vip.Peer.IsValid() {
			bits = vip.Peer.Bits()
		}
		if vip.Prefix.Addr().Is6() || p.Bits() == bits {
			return true
		}
	}
	return false
}

// RemoveStale removes those of vips that are present: at startup, the VIPs a
// previous run left behind when it crashed. It never touches an address that
// is not in vips. It carries on past failures and returns every VIP it
// removed with the joined errors.
func (m *Manager) RemoveStale(vips []VIP) (removed []VIP, err error) {
	// One listing per interface and family, not per VIP: a start with
	// 1,000 VIPs listed their interfaces 1,000 times (12 MB of garbage,
	// docs/benchmarks.md, issue #7). A removal can take others with it
	// (the kernel drops an interface's secondary addresses with its
	// primary unless promote_secondaries is set): the listing may then
	// hold a VIP already gone, whose removal Remove tolerates.
	type key struct {
		dev string
		v6  bool
	}
	listed := map[key][]netlink.Addr{}
	var errs []error
	for _, v := range vips {
		if err := v.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("addr: has: %w", err))
			continue
		}
		k := key{v.Dev, v.Prefix.Addr().Is6()}
		as, ok := listed[k]
		if !ok {
			var err error
			if as, err = m.addrsOf(v); err != nil {
				errs = append(errs, err)
				continue
			}
			listed[k] = as
		}
		if !holds(as, v) {
			continue
		}
		if err := m.Remove(v); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, v)
	}
	return removed, errors.Join(errs...)
}

// inNS runs fn in the Manager's namespace: on the caller's thread when the
// Manager works in the caller's namespace, else on a locked thread that has
// entered it (sysctls under /proc/sys/net belong to the namespace of the
// thread that opens them).
func (m *Manager) inNS(fn func() error) error {
	if !m.ns.IsOpen() {
		return fn()
	}
	return nsthread.Run(m.ns, m.ns.String(), fn)
}
