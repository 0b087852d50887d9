package addr

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkState is an interface and whether it is up and running (IFF_UP and
// IFF_RUNNING: administratively up with a carrier), which is what VRRP
// follows; an interface that went away is down.
type LinkState struct {
	Name string
	Up   bool
}

func linkAttrsUp(a *netlink.LinkAttrs) bool {
	return a.RawFlags&unix.IFF_UP != 0 && a.RawFlags&unix.IFF_RUNNING != 0
}

// LinkUp tells whether the interface is up and running.
func LinkUp(ifname string) (bool, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return false, err
	}
	return linkAttrsUp(l.Attrs()), nil
}

// WatchLinks reports every change of an interface's flags (and its
// removal) until ctx ends; onErr gets the subscription's errors.
func WatchLinks(ctx context.Context, onErr func(error)) (<-chan LinkState, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(updates, ctx.Done(), netlink.LinkSubscribeOptions{ErrorCallback: onErr}); err != nil {
		return nil, err
	}
	out := make(chan LinkState, 64)
	go func() {
		for {
			select {
			case u, ok := <-updates:
				if !ok {
					return
				}
				st := LinkState{Name: u.Attrs().Name, Up: linkAttrsUp(u.Attrs()) && u.Header.Type != unix.RTM_DELLINK}
				select {
				case out <- st:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// InterfaceAddrs lists the addresses of an interface, or of every
// interface when ifname is empty.
func InterfaceAddrs(ifname string) ([]netip.Prefix, error) {
	var as []net.Addr
	var err error
	if ifname == "" {
		as, err = net.InterfaceAddrs()
	} else {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName(ifname); err == nil {
			as, err = ifi.Addrs()
		}
	}
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range as {
		if ipn, ok := a.(*net.IPNet); ok {
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
		}
	}
	return out, nil
}

// route is the kernel's route to dst.
func route(dst netip.Addr) (netlink.Route, error) {
	rs, err := netlink.RouteGet(dst.AsSlice())
	if err != nil {
		return netlink.Route{}, err
	}
	if len(rs) == 0 {
		return netlink.Route{}, fmt.Errorf("no route to %v", dst)
	}
	return rs[0], nil
}

// RouteDevice is the interface the kernel's route to dst leaves by.
func RouteDevice(dst netip.Addr) (string, error) {
	r, err := route(dst)
	if err != nil {
		return "", err
	}
	l, err := netlink.LinkByIndex(r.LinkIndex)
	if err != nil {
		return "", err
	}
	return l.Attrs().Name, nil
}

// RouteSource is the source address the kernel picks for dst.
func RouteSource(dst netip.Addr) (netip.Addr, error) {
	r, err := route(dst)
	if err != nil {
		return netip.Addr{}, err
	}
	a, ok := netip.AddrFromSlice(r.Src)
	if !ok {
		return netip.Addr{}, fmt.Errorf("no source address towards %v", dst)
	}
	return a.Unmap(), nil
}
