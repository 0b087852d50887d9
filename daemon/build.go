package daemon

import (
	"fmt"
	"net/netip"
	"slices"

	"vigil/addr"
	"vigil/config"
	"vigil/internal/inet"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

// instanceSpec is everything the daemon derives from one vrrp_instance
// block: the engine's configuration and what the I/O edges need.
type instanceSpec struct {
	cfg    *config.Instance
	engine vrrp.Config
	// ifname is where adverts are sent and received. The family is
	// engine.Family: a copy here put the spec in the 416-byte size class
	// instead of 384 (issue #7).
	ifname string
	vips   vipSet // every VIP and excluded VIP, with its options
	// retired are VIPs a reload removed from the config, kept so that
	// their removal from the interface finds their options.
	retired vipSet
	// routes and rules are virtual_routes and virtual_rules: installed
	// while MASTER, like the VIPs.
	routes []addr.Route
	rules  []addr.Rule
	// vmac is the use_vmac interface to create on parent; empty without
	// use_vmac.
	vmac, parent string
}

// vipSet is an instance's VIPs with their options, sorted by prefix, one
// entry a prefix. A sorted slice rather than a map because nearly every
// instance has one VIP or a few: a one-entry map[netip.Prefix]addr.VIP
// took 480 bytes of heap and the one-entry slice takes 144 (0.34 MB
// less live heap at 1,000 instances, issue #7); lookups are a binary
// search, for instances with hundreds of VIPs.
type vipSet []addr.VIP

func (s vipSet) search(p netip.Prefix) (int, bool) {
	return slices.BinarySearchFunc(s, p, func(v addr.VIP, p netip.Prefix) int { return v.Prefix.Compare(p) })
}

// get returns the VIP of prefix p.
func (s vipSet) get(p netip.Prefix) (addr.VIP, bool) {
	if i, ok := s.search(p); ok {
		return s[i], true
	}
	return addr.VIP{}, false
}

// put adds v, or replaces the VIP of the same prefix (the config's last
// mention wins, as it did in the map).
func (s *vipSet) put(v addr.VIP) {
	i, ok := s.search(v.Prefix)
	if ok {
		(*s)[i] = v
		return
	}
	*s = slices.Insert(*s, i, v)
}

// sourceAddr picks the address adverts are sent from, as keepalived does:
// unicast_src_ip or mcast_src_ip when set, else the interface's primary
// IPv4 address, or its IPv6 link-local address.
type addrLookup func(ifname string) ([]netip.Prefix, error)

func sourceAddr(in *config.Instance, fam inet.Family, lookup addrLookup, vips vipSet) (netip.Addr, error) {
	if in.Unicast() && in.UnicastSrcIP.IsValid() {
		return in.UnicastSrcIP, nil
	}
	if !in.Unicast() && in.McastSrcIP.IsValid() {
		return in.McastSrcIP, nil
	}
	as, err := lookup(in.Interface)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", in.Interface, err)
	}
	isVIP := func(a netip.Addr) bool {
		for _, v := range vips {
			if v.Addr() == a {
				return true
			}
		}
		return false
	}
	for _, p := range as {
		a := p.Addr()
		if isVIP(a) {
			continue
		}
		if fam == inet.IPv4 && a.Is4() {
			return a, nil
		}
		if fam == inet.IPv6 && a.Is6() && a.IsLinkLocalUnicast() {
			return a, nil
		}
	}
	what := "IPv4 address"
	if fam == inet.IPv6 {
		what = "IPv6 link-local address"
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no %s to send adverts from (set unicast_src_ip or mcast_src_ip)", in.Interface, what)
}

func toVIP(v *config.VIP, defDev string) (addr.VIP, error) {
	out := addr.VIP{
		Prefix:        v.Prefix,
		Dev:           v.Dev,
		Label:         v.Label,
		Peer:          v.Peer,
		Home:          v.Home,
		MngTmpAddr:    v.MngTmpAddr,
		NoPrefixRoute: v.NoPrefixRt,
		AutoJoin:      v.AutoJoin,
	}
	if out.Dev == "" {
		out.Dev = defDev
	}
	if v.Brd.IsValid() {
		out.Brd = v.Brd
	}
	if v.Scope != "" {
		s, err := addr.ParseScope(v.Scope)
		if err != nil {
			return out, err
		}
		out.Scope = s
	}
	switch v.PreferredLft {
	case "":
	case "forever":
		out.PreferredLft, out.PreferredLftSet = addr.Forever, true
	default:
		var n uint32
		if _, err := fmt.Sscan(v.PreferredLft, &n); err != nil {
			return out, fmt.Errorf("preferred_lft %q: expected seconds or forever", v.PreferredLft)
		}
		out.PreferredLft, out.PreferredLftSet = n, true
	}
	return out, out.Validate()
}

// buildSpec maps one vrrp_instance onto the engine's configuration.
func buildSpec(c *config.Config, in *config.Instance, lookup addrLookup) (*instanceSpec, error) {
	fam := in.Family
	s := &instanceSpec{cfg: in, ifname: in.Interface}
	vipDev := in.Interface
	if in.UseVMAC {
		// keepalived's use_vmac: the VIPs live on a macvlan with the
		// virtual MAC 00:00:5e:00:01:VRID, and adverts leave through it
		// (so their source MAC is the virtual one) unless vmac_xmit_base.
		s.parent, s.vmac = in.Interface, in.VMACIfname()
		vipDev = s.vmac
		if !in.VMACXmitBase {
			s.ifname = s.vmac
		}
	}
	for _, r := range in.Routes {
		rt, err := addr.ParseRoute(r.Words)
		if err != nil {
			return nil, fmt.Errorf("%s: virtual_routes: %w", r.Pos, err)
		}
		s.routes = append(s.routes, rt)
	}
	for _, r := range in.Rules {
		ru, err := addr.ParseRule(r.Words)
		if err != nil {
			return nil, fmt.Errorf("%s: virtual_rules: %w", r.Pos, err)
		}
		s.rules = append(s.rules, ru)
	}
	var vips, excluded []netip.Prefix
	for _, list := range []struct {
		in  []*config.VIP
		out *[]netip.Prefix
	}{{in.VIPs, &vips}, {in.ExcludedVIPs, &excluded}} {
		for _, v := range list.in {
			av, err := toVIP(v, vipDev)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", v.Pos, err)
			}
			s.vips.put(av)
			if inet.Of(v.Prefix.Addr()) == fam {
				*list.out = append(*list.out, v.Prefix)
			} else {
				// keepalived advertises only addresses of the instance's
				// family; others are owned like excluded ones.
				excluded = append(excluded, v.Prefix)
			}
		}
	}
	src, err := sourceAddr(in, fam, lookup, s.vips)
	if err != nil {
		return nil, err
	}
	var peers []netip.Addr
	for _, p := range in.UnicastPeers {
		peers = append(peers, p.Addr)
	}
	e := vrrp.Config{
		Name:                 in.Name,
		VRID:                 uint8(in.VRID),
		Version:              in.Version,
		Family:               fam,
		Priority:             uint8(in.Priority),
		AdvertInterval:       in.AdvertInt,
		NoPreempt:            in.Nopreempt,
		PreemptDelay:         in.PreemptDelay,
		NoAccept:             in.Accept.Set && !in.Accept.Value,
		VIPs:                 vips,
		ExcludedVIPs:         excluded,
		SrcAddr:              src,
		Peers:                peers,
		CheckUnicastSrc:      in.CheckUnicastSrc || c.Global.VRRPCheckUnicastSrc,
		ChecksumMode:         wire.ChecksumPseudoHeader,
		GARP:                 in.Garp.GARP,
		LowerPrioNoAdvert:    in.LowerPrioNoAdvert,
		HigherPrioSendAdvert: in.HigherPrioSendAdvert,
	}
	if in.State == config.StateMaster {
		e.InitialState = vrrp.StateMaster
	} else {
		e.InitialState = vrrp.StateBackup
	}
	if in.Auth != nil && in.Auth.Type == config.AuthPass {
		e.AuthType, e.AuthPass = wire.AuthPass, in.Auth.Pass
	}
	s.engine = e
	return s, nil
}
