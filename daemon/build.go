package daemon

import (
	"fmt"
	"iter"
	"net/netip"
	"slices"

	"vigil/addr"
	"vigil/config"
	"vigil/internal/inet"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

// instanceSpec is what the daemon keeps of one vrrp_instance block while
// the instance runs, beside its engine: what the I/O edges, status, the
// dumps and a reload read. It is not the block itself, nor the engine's
// configuration:
//
//   - The engine's Config (in.e.Config(), normalized) is the one copy of
//     the VRRP settings. A reload compares the new block's against it
//     (sameSpec), the connection sync reads its peers and source from it,
//     and only the configured nopreempt is kept here, since the sync's
//     hold changes the engine's. The spec held a second, unnormalized
//     copy: 232 bytes an instance (issue #7).
//   - The block (config.Instance, 768 bytes with its index entry, and its
//     VIPs' 224 each) is read while an instance is built (built) and then
//     dropped with the rest of the running Config's instances
//     (Config.DropInstances). What the daemon reads of it later is here.
//
// Settings most instances do not have live in more, allocated only for an
// instance that has one: the spec of an instance with one VIP and none of
// them is 48 bytes (80 while it kept its VIPs) where it was 384 plus the
// 992 of its block (measured: TestHeapPerInstance).
type instanceSpec struct {
	name string
	// ifname is where adverts are sent and received (a use_vmac
	// interface unless vmac_xmit_base).
	ifname string
	// The VIPs are the engine's prefixes (vrrp.Config's VIPs and
	// ExcludedVIPs): a VIP with no option but its interface, which is
	// the instance's (vipDev), is not kept here at all, and one with
	// options has them in more.vipOpts (vips, vip). Kept whole beside the
	// engine's prefixes, every instance's VIPs took a second, 144-byte
	// addr.VIP each (issue #7: 1,000 one-VIP instances, 140 KB of heap).
	more *specMore
	// noPreempt is the configured nopreempt: the engine runs with
	// NoPreempt while the connection sync holds it (ctsync.go).
	noPreempt bool
	// What only the data dumps print (keepalived's fields).
	dontTrackPrimary, strict, promoteSecondaries, smtpAlert bool
}

// specMore is the part of a spec that most instances leave empty.
type specMore struct {
	syncGroup string
	notify    config.Notify
	// bfdTakeover and bgpAnnounce are the vigil extensions of those
	// names.
	bfdTakeover []string
	bgpAnnounce []*config.BGPAnnounce
	// retired are VIPs a reload removed from the config, kept so that
	// their removal from the interface finds their options.
	retired vipSet
	// vipOpts are the VIPs (and excluded VIPs) that have an option other
	// than their prefix and the instance's VIP interface (label, scope,
	// peer, brd, dev, flags, preferred_lft): the few that need more than
	// the engine's prefix to be added (see instanceSpec).
	vipOpts vipSet
	// routes and rules are virtual_routes and virtual_rules: installed
	// while MASTER, like the VIPs.
	routes []addr.Route
	rules  []addr.Rule
	// vmac is the use_vmac interface to create on parent; empty without
	// use_vmac.
	vmac, parent string
	// excluded are virtual_ipaddress_excluded as configured (the engine
	// also excludes VIPs of the other family); the dumps list them.
	excluded []netip.Prefix
	// mcastDst is mcast_dst_ip when it is not the family's VRRP group,
	// which the dumps print otherwise (mcastDstSet).
	mcastDst    netip.Addr
	mcastDstSet bool
}

// noMore is what an instance without any of specMore's settings reads.
var noMore specMore

// m is the spec's specMore, shared and empty when it has none: read only.
func (s *instanceSpec) m() *specMore { return readPart(s.more, &noMore) }

// setMore gives the spec its own specMore to write.
func (s *instanceSpec) setMore() *specMore { return ownPart(&s.more) }

// readPart and ownPart are how an instance's rarely set parts (specMore,
// instTracking) are kept: a pointer that stays nil while the part is
// empty, so that the common instance pays 8 bytes for it. readPart reads
// p, or the shared empty value when p is nil (never written through);
// ownPart allocates the part on the first write.
func readPart[T any](p, empty *T) *T {
	if p == nil {
		return empty
	}
	return p
}

func ownPart[T any](p **T) *T {
	if *p == nil {
		*p = new(T)
	}
	return *p
}

// vipDev is the interface a VIP goes on unless it names another: the
// use_vmac interface, else the instance's own.
func (s *instanceSpec) vipDev() string {
	if v := s.m().vmac; v != "" {
		return v
	}
	return s.ifname
}

// putVIP records v, a VIP or excluded VIP of the block: its options if it
// has any (the block's last mention of a prefix wins).
func (s *instanceSpec) putVIP(v addr.VIP) {
	if v == (addr.VIP{Prefix: v.Prefix, Dev: s.vipDev()}) {
		if s.more != nil {
			s.more.vipOpts.remove(v.Prefix)
		}
		return
	}
	s.setMore().vipOpts.put(v)
}

// vip is the VIP of prefix p, a prefix of the engine's configuration or
// one a reload retired, with its options.
func (s *instanceSpec) vip(p netip.Prefix) addr.VIP {
	m := s.m()
	if v, ok := m.vipOpts.get(p); ok {
		return v
	}
	if v, ok := m.retired.get(p); ok {
		return v
	}
	return addr.VIP{Prefix: p, Dev: s.vipDev()}
}

// vipsOf yields the VIPs of an instance whose engine has vips and
// excluded (its vrrp.Config's VIPs and ExcludedVIPs): every VIP and
// excluded VIP of the block, each prefix once, with its options.
func (s *instanceSpec) vipsOf(vips, excluded []netip.Prefix) iter.Seq[addr.VIP] {
	return func(yield func(addr.VIP) bool) {
		// A prefix the block named twice is yielded once: at its first.
		n := len(vips) + len(excluded)
		at := func(k int) netip.Prefix {
			if k < len(vips) {
				return vips[k]
			}
			return excluded[k-len(vips)]
		}
		var seen map[netip.Prefix]bool
		if n > seenScan {
			seen = make(map[netip.Prefix]bool, n)
		}
		for k := range n {
			p := at(k)
			if seen != nil {
				if seen[p] {
					continue
				}
				seen[p] = true
			} else if repeats(k, p, at) {
				continue
			}
			if !yield(s.vip(p)) {
				return
			}
		}
	}
}

// repeats says whether p, the k-th prefix, is one of the k before it.
func repeats(k int, p netip.Prefix, at func(int) netip.Prefix) bool {
	for j := range k {
		if at(j) == p {
			return true
		}
	}
	return false
}

// seenScan is the most prefixes vipsOf checks for repeats by scanning
// the ones before: a block with hundreds of VIPs (configurations with
// 1,000 exist) made that quadratic, a map for every call is garbage for
// the usual few.
const seenScan = 16

// vips yields the instance's VIPs and excluded VIPs with their options:
// on the loop, which owns the engine.
func (in *instance) vips() iter.Seq[addr.VIP] {
	c := in.e.Config()
	return in.spec.vipsOf(c.VIPs, c.ExcludedVIPs)
}

// vipDevOf is the interface of the VIP with address a.
func (s *instanceSpec) vipDevOf(a netip.Addr) string {
	for _, v := range s.m().vipOpts {
		if v.Addr() == a {
			return v.Dev
		}
	}
	return s.vipDev()
}

func (s *instanceSpec) vmac() string   { return s.m().vmac }
func (s *instanceSpec) parent() string { return s.m().parent }

// iface is the block's interface: the use_vmac interface's parent.
func (s *instanceSpec) iface() string {
	if p := s.m().parent; p != "" {
		return p
	}
	return s.ifname
}

// mcastDst is the multicast group the dumps print for the instance.
func (s *instanceSpec) mcastDst(fam inet.Family) netip.Addr {
	if m := s.m(); m.mcastDstSet {
		return m.mcastDst
	}
	if fam == inet.IPv6 {
		return wire.GroupV6
	}
	return wire.GroupV4
}

// setRetired replaces the VIPs a reload removed.
func (s *instanceSpec) setRetired(r vipSet) {
	if len(r) > 0 || s.more != nil {
		s.setMore().retired = r
	}
}

// built is one vrrp_instance as a start or a reload uses it: the spec
// the daemon keeps, and the block and the engine's configuration, which
// it does not keep once the instance runs (see instanceSpec).
type built struct {
	spec   *instanceSpec
	cfg    *config.Instance // for errors (its position) and its trackers
	engine vrrp.Config      // normalized: what New or Reload takes
}

// vipSet is VIPs with their options, sorted by prefix, one
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

// remove drops the VIP of prefix p.
func (s *vipSet) remove(p netip.Prefix) {
	if i, ok := s.search(p); ok {
		*s = slices.Delete(*s, i, i+1)
	}
}

// sourceAddr picks the address adverts are sent from, as keepalived does:
// unicast_src_ip or mcast_src_ip when set, else the interface's primary
// IPv4 address, or its IPv6 link-local address.
type addrLookup func(ifname string) ([]netip.Prefix, error)

// memoLookup asks lookup once per interface name. A load or reload builds
// every instance in one go: asked per instance, the kernel's whole
// interface table was dumped twice per instance (net.InterfaceByName, then
// its addresses), 43 MB of garbage for 1,000 instances on four interfaces
// and most of the collections of their start (docs/benchmarks.md, issue #7).
func memoLookup(lookup addrLookup) addrLookup {
	type answer struct {
		as  []netip.Prefix
		err error
	}
	seen := map[string]answer{}
	return func(ifname string) ([]netip.Prefix, error) {
		a, ok := seen[ifname]
		if !ok {
			a.as, a.err = lookup(ifname)
			seen[ifname] = a
		}
		return a.as, a.err
	}
}

func sourceAddr(in *config.Instance, fam inet.Family, lookup addrLookup) (netip.Addr, error) {
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
		for _, list := range [][]*config.VIP{in.VIPs, in.ExcludedVIPs} {
			for _, v := range list {
				if v.Prefix.Addr() == a {
					return true
				}
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

// buildSpec maps one vrrp_instance onto the engine's configuration and
// the spec the daemon keeps.
func buildSpec(c *config.Config, in *config.Instance, lookup addrLookup) (built, error) {
	fam := in.Family
	s := &instanceSpec{
		name: in.Name, ifname: in.Interface, noPreempt: in.Nopreempt,
		dontTrackPrimary: in.DontTrackPrimary, strict: in.StrictMode,
		promoteSecondaries: in.PromoteSecondaries, smtpAlert: in.SMTPAlert.Or(false),
	}
	b := built{spec: s, cfg: in}
	if in.UseVMAC {
		// keepalived's use_vmac: the VIPs live on a macvlan with the
		// virtual MAC 00:00:5e:00:01:VRID, and adverts leave through it
		// (so their source MAC is the virtual one) unless vmac_xmit_base.
		m := s.setMore()
		m.parent, m.vmac = in.Interface, in.VMACIfname()
		if !in.VMACXmitBase {
			s.ifname = m.vmac
		}
	}
	for _, r := range in.Routes {
		rt, err := addr.ParseRoute(r.Words)
		if err != nil {
			return b, fmt.Errorf("%s: virtual_routes: %w", r.Pos, err)
		}
		s.setMore().routes = append(s.setMore().routes, rt)
	}
	for _, r := range in.Rules {
		ru, err := addr.ParseRule(r.Words)
		if err != nil {
			return b, fmt.Errorf("%s: virtual_rules: %w", r.Pos, err)
		}
		s.setMore().rules = append(s.setMore().rules, ru)
	}
	if in.SyncGroup != "" {
		s.setMore().syncGroup = in.SyncGroup
	}
	if in.Notify != (config.Notify{}) {
		s.setMore().notify = in.Notify
	}
	if len(in.BFDTakeover) > 0 {
		s.setMore().bfdTakeover = in.BFDTakeover
	}
	if len(in.BGPAnnounce) > 0 {
		s.setMore().bgpAnnounce = in.BGPAnnounce
	}
	for _, v := range in.ExcludedVIPs {
		s.setMore().excluded = append(s.setMore().excluded, v.Prefix)
	}
	if in.McastDstIP != s.mcastDst(fam) {
		m := s.setMore()
		m.mcastDst, m.mcastDstSet = in.McastDstIP, true
	}
	var vips, excluded []netip.Prefix
	for _, list := range []struct {
		in  []*config.VIP
		out *[]netip.Prefix
	}{{in.VIPs, &vips}, {in.ExcludedVIPs, &excluded}} {
		for _, v := range list.in {
			av, err := toVIP(v, s.vipDev()) // the default putVIP and vip take: a VIP on it keeps no options
			if err != nil {
				return b, fmt.Errorf("%s: %w", v.Pos, err)
			}
			s.putVIP(av)
			if inet.Of(v.Prefix.Addr()) == fam {
				*list.out = append(*list.out, v.Prefix)
			} else {
				// keepalived advertises only addresses of the instance's
				// family; others are owned like excluded ones.
				excluded = append(excluded, v.Prefix)
			}
		}
	}
	src, err := sourceAddr(in, fam, lookup)
	if err != nil {
		return b, err
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
	// Normalized here, where the block's position is at hand for an
	// error, and so that a reload compares like with like (sameSpec).
	if b.engine, err = e.Normalized(); err != nil {
		return b, err
	}
	return b, nil
}
