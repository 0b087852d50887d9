package config

import (
	"net/netip"
	"strings"
	"time"
	"vigil/internal/inet"
)

// Validation mirrors keepalived 2.2.7's verdicts: what `keepalived -t`
// reports as a configuration error is an Error here (even where keepalived
// then carries on with a default), what it accepts stays accepted, and
// where it silently accepts something dangerous vigil adds a Warning.

func newConfig() *Config {
	g := DefaultGarp
	// -1 marks "not configured": these default to the master values.
	g.LowerPrioDelay, g.LowerPrioRepeat = -1, -1
	return &Config{idx: newIndex(), Global: Global{
		VRRPVersion:          2,
		VRRPMcastGroup4:      netip.MustParseAddr("224.0.0.18"),
		VRRPMcastGroup6:      netip.MustParseAddr("ff02::12"),
		Garp:                 g,
		SMTPConnectTimeout:   30 * time.Second,
		StartupTimeout:       10 * time.Second,
		ShutdownTimeout:      10 * time.Second,
		VRRPDownTimerAdverts: 3,
		DefaultInterface:     "eth0",
		VmacPrefix:           "vrrp",
	}}
}

func (b *builder) validate() {
	b.validateGlobal()
	b.validateScripts()
	for _, i := range b.cfg.Instances {
		b.validateInstance(i)
	}
	b.validateVRIDs()
	b.validateSyncGroups()
	b.validateVirtualServers()
	b.validateSync()
	b.validateBGP()
	b.validateStatic()
	b.validateScriptSecurity()
	b.dropUnusable()
}

// dropUnusable removes instances the daemon could not run (no VRID, no
// interface, a VRID clash, no VIP), after every check has been reported,
// so that the rest of the Config can still be used.
func (b *builder) dropUnusable() {
	kept := b.cfg.Instances[:0]
	gone := map[string]bool{}
	for _, i := range b.cfg.Instances {
		if i.dropped {
			gone[i.Name] = true
			continue
		}
		kept = append(kept, i)
	}
	b.cfg.Instances = kept
	if len(gone) == 0 {
		return
	}
	for _, g := range b.cfg.SyncGroups {
		var names []string
		var pos []Pos
		for k, m := range g.Members {
			if !gone[m] {
				names, pos = append(names, m), append(pos, g.MemberPos[k])
			}
		}
		g.Members, g.MemberPos = names, pos
	}
}

func (b *builder) validateGlobal() {
	g := &b.cfg.Global
	if g.VRRPMinGarp {
		g.Garp.MasterRepeat, g.Garp.MasterDelay = 1, 0
	}
	if g.Garp.LowerPrioDelay < 0 {
		g.Garp.LowerPrioDelay = g.Garp.MasterDelay
	}
	if g.Garp.LowerPrioRepeat < 0 {
		g.Garp.LowerPrioRepeat = g.Garp.MasterRepeat
	}
}

func (b *builder) validateScripts() {
	for _, s := range b.cfg.Scripts {
		if s.Timeout == 0 {
			s.Timeout = s.Interval
		}
		if s.User != "" && s.Script != nil && s.Script.User == "" {
			s.Script.User, s.Script.Group = s.User, s.Group
		}
	}
}

// resolveGarp fills the instance's announcement timing from the global
// defaults for every setting it did not write itself.
func (b *builder) resolveGarp(i *Instance) {
	g, own := b.cfg.Global.Garp, i.Garp
	i.Garp = g
	if i.has&fGarpMasterDelay != 0 {
		i.Garp.MasterDelay = own.MasterDelay
		orDefault(i.has, fGarpLowerPrioDelay, &i.Garp.LowerPrioDelay, own.MasterDelay)
	}
	if i.has&fGarpMasterRepeat != 0 {
		i.Garp.MasterRepeat = own.MasterRepeat
		orDefault(i.has, fGarpLowerPrioRepeat, &i.Garp.LowerPrioRepeat, own.MasterRepeat)
	}
	if i.has&fGarpLowerPrioDelay != 0 {
		i.Garp.LowerPrioDelay = own.LowerPrioDelay
	}
	if i.has&fGarpLowerPrioRepeat != 0 {
		i.Garp.LowerPrioRepeat = own.LowerPrioRepeat
	}
	if i.has&fGarpRefresh != 0 {
		i.Garp.MasterRefresh = own.MasterRefresh
	}
	if i.has&fGarpRefreshRepeat != 0 {
		i.Garp.MasterRefreshRepeat = own.MasterRefreshRepeat
	}
}

// ifExists reports whether an interface exists; with dynamic_interfaces a
// missing one is only remembered for a warning, as keepalived accepts it.
func (b *builder) ifExists(name string) bool {
	if b.env.InterfaceExists == nil || b.env.InterfaceExists(name) {
		return true
	}
	if b.cfg.Global.DynamicInterfaces {
		if b.dynMissing == nil {
			b.dynMissing = map[string]bool{}
		}
		if !b.dynMissing[name] {
			b.dynMissing[name] = true
			b.warnf(b.cfg.Global.Pos, "interface %s does not exist yet (allowed by dynamic_interfaces)", name)
		}
		return true
	}
	return false
}

func (b *builder) validateInstance(i *Instance) {
	g := &b.cfg.Global
	b.resolveGarp(i)
	orDefault(i.has, fStrict, &i.StrictMode, g.VRRPStrict)
	orDefault(i.has, fCheckUnicastSrc, &i.CheckUnicastSrc, g.VRRPCheckUnicastSrc)
	orDefault(i.has, fSkipCheckAdv, &i.SkipCheckAdvAddr, g.VRRPSkipCheckAdvAddr)
	orDefault(i.has, fDownTimerAdverts, &i.DownTimerAdverts, g.VRRPDownTimerAdverts)
	orDefault(i.has, fLowerPrioNoAdvert, &i.LowerPrioNoAdvert, g.VRRPLowerPrioNoAdvert.Or(i.StrictMode))
	orDefault(i.has, fHigherPrioSendAdvert, &i.HigherPrioSendAdvert, g.VRRPHigherPrioSendAdv.Or(false))

	if i.State == StateMaster && i.has&fPriority == 0 {
		// keepalived makes an instance configured MASTER without a
		// priority the address owner.
		i.Priority = 255
	}
	if i.VRID == 0 {
		if p := i.kw.at(Pos{}, "virtual_router_id"); posValid(p) {
			// The bad value was reported where it was written.
			b.infof(p, "vrrp_instance %s: no valid virtual_router_id: the instance cannot run", i.Name)
		} else {
			b.errorf(i.Pos, "vrrp_instance %s: virtual_router_id is missing: expected an integer 1..255", i.Name)
		}
		i.dropped = true
	}
	switch {
	case i.Interface == "lo":
		b.errorf(i.kw.at(i.Pos, "interface"), "vrrp_instance %s: VRRP cannot run on the loopback interface lo", i.Name)
		i.dropped = true
	case i.Interface == "":
		// The man page allows unicast instances without interface, but
		// keepalived 2.2.7 -t refuses them ("Unknown interface!").
		b.errorf(i.Pos, "vrrp_instance %s: interface is missing", i.Name)
		i.dropped = true
	case i.Interface != "" && !b.ifExists(i.Interface):
		b.errorf(i.kw.at(i.Pos, "interface"), "vrrp_instance %s: interface %s does not exist", i.Name, i.Interface)
	}

	// The first VIP decides the family; keepalived drops VIPs of the other
	// family with an error (they belong in virtual_ipaddress_excluded).
	if len(i.VIPs) > 0 {
		i.Family = inet.Of(i.VIPs[0].Addr())
	} else if i.UnicastSrcIP.IsValid() {
		i.Family = inet.Of(i.UnicastSrcIP)
	} else if i.McastSrcIP.IsValid() {
		i.Family = inet.Of(i.McastSrcIP)
	}
	kept := i.VIPs[:0]
	for _, v := range i.VIPs {
		if inet.Of(v.Addr()) != i.Family {
			b.errorf(v.Pos, "vrrp_instance %s: VIP %s is %s but the instance is %s: move it to virtual_ipaddress_excluded", i.Name, v.Prefix, inet.Of(v.Addr()), i.Family)
			continue
		}
		kept = append(kept, v)
	}
	i.VIPs = kept
	if len(i.VIPs) == 0 {
		b.errorf(i.kw.at(i.Pos, "virtual_ipaddress"), "vrrp_instance %s: no virtual_ipaddress: at least one VIP is needed", i.Name)
		i.dropped = true
	}
	for _, list := range [][]*VIP{i.VIPs, i.ExcludedVIPs} {
		for _, v := range list {
			if v.Dev != "" && !b.ifExists(v.Dev) {
				b.errorf(v.Pos, "vrrp_instance %s: interface %s of address %s does not exist", i.Name, v.Dev, v.Prefix)
			}
		}
	}
	for _, r := range i.Routes {
		b.checkRoute("vrrp_instance "+i.Name, r)
	}
	for _, r := range i.Rules {
		b.checkRule(r)
	}

	// Version and advert interval.
	orDefault(i.has, fVersion, &i.Version, g.VRRPVersion)
	if i.Family == inet.IPv6 {
		if i.StrictMode && i.has&fVersion != 0 && i.Version == 2 {
			b.errorf(i.kw.at(i.Pos, "version"), "vrrp_instance %s: strict mode: IPv6 cannot use VRRP version 2: using version 3", i.Name)
		}
		i.Version = 3
		if i.StrictMode && len(i.VIPs) > 0 && !i.VIPs[0].Addr().IsLinkLocalUnicast() {
			b.errorf(i.VIPs[0].Pos, "vrrp_instance %s: strict mode: the first IPv6 VIP must be link-local", i.Name)
		}
	}
	switch i.Version {
	case 2:
		if i.AdvertInt%time.Second != 0 {
			r := (i.AdvertInt + time.Second/2) / time.Second * time.Second
			if r == 0 {
				r = time.Second
			}
			b.errorf(i.kw.at(i.Pos, "advert_int"), "vrrp_instance %s: advert_int %s must be whole seconds with VRRPv2: rounded to %s", i.Name, fmtSeconds(i.AdvertInt), fmtSeconds(r))
			i.AdvertInt = r
		}
	case 3:
		if i.AdvertInt > 4095*10*time.Millisecond {
			b.errorf(i.kw.at(i.Pos, "advert_int"), "vrrp_instance %s: advert_int %s is above the VRRPv3 maximum 40.95: using 40.95", i.Name, fmtSeconds(i.AdvertInt))
			i.AdvertInt = 4095 * 10 * time.Millisecond
		}
		if i.AdvertInt%(10*time.Millisecond) != 0 {
			r := (i.AdvertInt + 5*time.Millisecond) / (10 * time.Millisecond) * (10 * time.Millisecond)
			b.errorf(i.kw.at(i.Pos, "advert_int"), "vrrp_instance %s: advert_int %s is not a multiple of 0.01 s: rounded to %s", i.Name, fmtSeconds(i.AdvertInt), fmtSeconds(r))
			i.AdvertInt = r
		}
	}

	if i.Auth != nil {
		switch {
		case i.Version == 3:
			b.errorf(i.Auth.Pos, "vrrp_instance %s: VRRPv3 has no authentication: ignored", i.Name)
			i.Auth = nil
		case i.StrictMode:
			b.errorf(i.Auth.Pos, "vrrp_instance %s: strict mode does not allow authentication: ignored", i.Name)
			i.Auth = nil
		}
	}

	// Preemption.
	if i.Nopreempt && (i.State == StateMaster || i.Priority == 255) {
		b.coded(CodeNopreemptIgnored, i.kw.at(i.Pos, "nopreempt"), Error, "vrrp_instance %s: nopreempt is meaningless for the address owner (priority 255, or state MASTER without priority) and needs state BACKUP: nopreempt cleared", i.Name)
		i.Nopreempt = false
	}
	if i.Nopreempt && i.PreemptDelay > 0 {
		b.coded(CodePreemptDelayIgnored, i.kw.at(i.Pos, "preempt_delay"), Error, "vrrp_instance %s: preempt_delay is incompatible with nopreempt: delay cleared", i.Name)
		i.PreemptDelay = 0
	}
	if i.StrictMode {
		if i.PreemptDelay > 0 {
			b.errorf(i.kw.at(i.Pos, "preempt_delay"), "vrrp_instance %s: strict mode does not allow preempt_delay: delay cleared", i.Name)
			i.PreemptDelay = 0
		}
		if i.State == StateMaster && i.Priority != 255 {
			b.errorf(i.kw.at(i.Pos, "state"), "vrrp_instance %s: strict mode allows state MASTER only with priority 255: using BACKUP", i.Name)
			i.State = StateBackup
		}
		if i.Accept.Set && i.Accept.Value && i.Version == 2 {
			b.errorf(i.kw.at(i.Pos, "accept"), "vrrp_instance %s: accept mode with VRRPv2 breaks RFC 3768 in strict mode: accept cleared", i.Name)
			i.Accept = OptBool{Set: true}
		}
		if !i.Accept.Set {
			i.Accept = OptBool{Set: true, Value: i.Priority == 255}
		}
		if i.VMACXmitBase {
			b.errorf(i.kw.at(i.Pos, "vmac_xmit_base"), "vrrp_instance %s: strict mode does not allow vmac_xmit_base: cleared", i.Name)
			i.VMACXmitBase = false
		}
		if !i.Accept.Value {
			// A classic surprise: keepalived accepts this silently and the
			// VIPs then drop everything addressed to them.
			b.warnf(i.Pos, "vrrp_instance %s: strict mode implies no_accept: packets to the VIPs are dropped unless this is the address owner (priority 255); add accept (VRRPv3) if services listen on the VIPs", i.Name)
		}
	} else if !i.Accept.Set {
		i.Accept = OptBool{Set: true, Value: true}
	}
	if i.State == StateMaster && i.Priority != 255 {
		b.infof(i.kw.at(i.Pos, "state"), "vrrp_instance %s: state MASTER with priority %d only matters with priority 255: it starts as BACKUP and waits for the election", i.Name, i.Priority)
	}

	// Source addresses and unicast.
	if i.UnicastSrcIP.IsValid() && inet.Of(i.UnicastSrcIP) != i.Family {
		b.errorf(i.kw.at(i.Pos, "unicast_src_ip"), "vrrp_instance %s: unicast_src_ip %s is not %s like the instance: ignored", i.Name, i.UnicastSrcIP, i.Family)
		i.UnicastSrcIP = netip.Addr{}
	}
	if i.McastSrcIP.IsValid() && inet.Of(i.McastSrcIP) != i.Family {
		b.errorf(i.kw.at(i.Pos, "mcast_src_ip"), "vrrp_instance %s: mcast_src_ip %s is not %s like the instance: ignored", i.Name, i.McastSrcIP, i.Family)
		i.McastSrcIP = netip.Addr{}
	}
	if i.McastDstIP.IsValid() && inet.Of(i.McastDstIP) != i.Family {
		b.errorf(i.kw.at(i.Pos, "mcast_dst_ip"), "vrrp_instance %s: mcast_dst_ip %s is not %s like the instance: ignored", i.Name, i.McastDstIP, i.Family)
		i.McastDstIP = netip.Addr{}
	}
	peers := i.UnicastPeers[:0]
	seen := map[netip.Addr]bool{}
	for _, p := range i.UnicastPeers {
		if inet.Of(p.Addr) != i.Family {
			b.errorf(p.Pos, "vrrp_instance %s: unicast peer %s is not %s like the instance: ignored", i.Name, p.Addr, i.Family)
			continue
		}
		if seen[p.Addr] {
			b.warnf(p.Pos, "vrrp_instance %s: unicast peer %s is listed twice", i.Name, p.Addr)
			continue
		}
		seen[p.Addr] = true
		if p.MinTTL >= 0 || p.MaxTTL >= 0 {
			i.CheckUnicastSrc = true
		}
		peers = append(peers, p)
	}
	i.UnicastPeers = peers
	if i.has&fUnicastKeyword != 0 && len(i.UnicastPeers) == 0 && !i.UnicastFaultNoPeer {
		b.coded(CodeUnicastNoPeers, i.kw.at(i.Pos, "unicast_src_ip", "unicast_peer", "unicast_ttl"), Error, "vrrp_instance %s: a unicast keyword is set but there are no unicast peers: keepalived falls back to multicast", i.Name)
	}
	if i.ipvlan && !i.ipvlanAddr && i.Family == inet.IPv4 {
		b.errorf(i.kw.at(i.Pos, "use_ipvlan"), "vrrp_instance %s: use_ipvlan with IPv4 needs an address for the ipvlan interface", i.Name)
	}
	if i.VMACXmitBase && !i.UseVMAC {
		b.errorf(i.kw.at(i.Pos, "vmac_xmit_base"), "vrrp_instance %s: vmac_xmit_base is only valid with use_vmac", i.Name)
		i.VMACXmitBase = false
	}
	if !i.McastDstIP.IsValid() {
		i.McastDstIP = g.VRRPMcastGroup4
		if i.Family == inet.IPv6 {
			i.McastDstIP = g.VRRPMcastGroup6
		}
	}
	if i.UnicastTTL < 0 {
		i.UnicastTTL = 255
	}
	if i.UseVMAC && i.Unicast() && !i.VMACXmitBase {
		b.errorf(i.kw.at(i.Pos, "use_vmac"), "vrrp_instance %s: use_vmac with unicast peers needs vmac_xmit_base: set", i.Name)
		i.VMACXmitBase = true
	}
	if i.StrictMode && i.Unicast() {
		b.warnf(i.kw.at(i.Pos, "unicast_peer"), "vrrp_instance %s: strict mode with unicast peers is not RFC compliant", i.Name)
	}

	// Tracking.
	for _, list := range []*[]*TrackRef{&i.TrackInterfaces, &i.TrackScripts, &i.TrackFiles, &i.TrackProcesses, &i.TrackBFD} {
		*list = b.dedupRefs("vrrp_instance "+i.Name, *list)
	}
	owner := i.Priority == 255
	tifs := i.TrackInterfaces[:0]
	for _, t := range i.TrackInterfaces {
		switch {
		case t.Name == i.Interface:
			b.errorf(t.Pos, "vrrp_instance %s: track_interface %s is the instance's own interface, which is always tracked: ignored", i.Name, t.Name)
			continue
		case !b.ifExists(t.Name):
			b.errorf(t.Pos, "vrrp_instance %s: tracked interface %s does not exist", i.Name, t.Name)
		}
		tifs = append(tifs, t)
	}
	i.TrackInterfaces = tifs
	i.TrackScripts = b.resolveRefs("vrrp_instance "+i.Name, "track script", i.TrackScripts, func(name string) (int, bool) {
		s := b.cfg.idx.scripts[name]
		if s == nil {
			return 0, false
		}
		return s.Weight, true
	})
	i.TrackFiles = b.resolveRefs("vrrp_instance "+i.Name, "track file", i.TrackFiles, func(name string) (int, bool) {
		f := b.cfg.idx.trackFiles[name]
		if f == nil {
			return 0, false
		}
		return f.Weight, true
	})
	i.TrackProcesses = b.resolveRefs("vrrp_instance "+i.Name, "track process", i.TrackProcesses, func(name string) (int, bool) {
		p := b.cfg.idx.trackProcs[name]
		if p == nil {
			return 0, false
		}
		return p.Weight, true
	})
	b.resolveBFD(i.TrackBFD)
	if owner {
		// The address owner's priority never moves: weighted tracking is
		// refused (unweighted tracking still means FAULT).
		for _, list := range []*[]*TrackRef{&i.TrackInterfaces, &i.TrackScripts, &i.TrackFiles, &i.TrackProcesses, &i.TrackBFD} {
			kept := (*list)[:0]
			for _, t := range *list {
				if t.Weight != 0 {
					b.errorf(t.Pos, "vrrp_instance %s: weighted tracking of %s is not allowed with priority 255 (address owner): ignored", i.Name, t.Name)
					continue
				}
				kept = append(kept, t)
			}
			*list = kept
		}
	}
}

// dedupRefs reports and drops a name tracked twice in one list.
func (b *builder) dedupRefs(inst string, refs []*TrackRef) []*TrackRef {
	if len(refs) < 2 {
		return refs
	}
	seen := make(map[string]bool, len(refs))
	kept := refs[:0]
	for _, t := range refs {
		if seen[t.Name] {
			b.errorf(t.Pos, "%s: %s is tracked twice: the second one is ignored", inst, t.Name)
			continue
		}
		seen[t.Name] = true
		kept = append(kept, t)
	}
	return kept
}

// resolveRefs checks that tracked names exist and fills unset weights from
// the tracked object.
func (b *builder) resolveRefs(inst, what string, refs []*TrackRef, find func(string) (int, bool)) []*TrackRef {
	kept := refs[:0]
	for _, t := range refs {
		w, ok := find(t.Name)
		if !ok {
			b.errorf(t.Pos, "%s: %s %s is not defined", inst, what, t.Name)
			continue
		}
		if t.late {
			b.errorf(t.Pos, "%s: %s %s is defined after this use: keepalived resolves it while reading and does not find it; move the definition up", inst, what, t.Name)
			continue
		}
		if !t.WeightSet {
			t.Weight = w
		}
		kept = append(kept, t)
	}
	return kept
}

// validateVRIDs reports two instances with the same VRID on one
// interface and family; unicast instances whose peers do not overlap, and
// different multicast groups, may share a VRID.
func (b *builder) validateVRIDs() {
	type key struct {
		ifname string
		fam    inet.Family
		vrid   int
	}
	seen := make(map[key][]*Instance, len(b.cfg.Instances))
	for _, i := range b.cfg.Instances {
		if i.VRID == 0 {
			continue
		}
		k := key{i.Interface, i.Family, i.VRID}
		for _, o := range seen[k] {
			if conflicts(i, o) {
				b.coded(CodeDuplicateVRID, i.kw.at(i.Pos, "virtual_router_id"), Error, "vrrp_instance %s: VRID %d is already used by %s (%s) on interface %s for %s", i.Name, i.VRID, o.Name, o.Pos, i.Interface, i.Family)
				i.dropped = true
				break
			}
		}
		seen[k] = append(seen[k], i)
	}
}

func conflicts(a, b *Instance) bool {
	if a.Unicast() != b.Unicast() {
		return false
	}
	if a.Unicast() {
		for _, p := range a.UnicastPeers {
			for _, q := range b.UnicastPeers {
				if p.Addr == q.Addr {
					return true
				}
			}
		}
		return false
	}
	return a.McastDstIP == b.McastDstIP
}

func (b *builder) validateSyncGroups() {
	member := map[string]*SyncGroup{}
	kept := b.cfg.SyncGroups[:0]
	for _, g := range b.cfg.SyncGroups {
		var names []string
		var pos []Pos
		for k, name := range g.Members {
			i := b.cfg.idx.instances[name]
			switch {
			case i == nil:
				b.errorf(g.MemberPos[k], "vrrp_sync_group %s: vrrp_instance %s does not exist", g.Name, name)
				continue
			case member[name] != nil:
				b.errorf(g.MemberPos[k], "vrrp_sync_group %s: vrrp_instance %s is already in sync group %s", g.Name, name, member[name].Name)
				continue
			}
			member[name] = g
			names, pos = append(names, name), append(pos, g.MemberPos[k])
		}
		g.Members, g.MemberPos = names, pos
		switch len(g.Members) {
		case 0:
			b.errorf(g.Pos, "vrrp_sync_group %s has no existing member: removed", g.Name)
			continue
		case 1:
			b.errorf(g.Pos, "vrrp_sync_group %s has only one member: a sync group needs two or more", g.Name)
		}
		for _, list := range []*[]*TrackRef{&g.TrackInterfaces, &g.TrackScripts, &g.TrackFiles, &g.TrackProcesses, &g.TrackBFD} {
			*list = b.dedupRefs("vrrp_sync_group "+g.Name, *list)
		}
		b.resolveBFD(g.TrackBFD)
		for _, t := range g.TrackInterfaces {
			if !b.ifExists(t.Name) {
				b.errorf(t.Pos, "vrrp_sync_group %s: tracked interface %s does not exist", g.Name, t.Name)
			}
			for _, name := range g.Members {
				if b.cfg.idx.instances[name].Interface == t.Name {
					b.errorf(t.Pos, "vrrp_sync_group %s: tracked interface %s is the own interface of member %s: remove one of them", g.Name, t.Name, name)
				}
			}
		}
		lookup := func(what string, find func(string) (int, bool)) func([]*TrackRef) []*TrackRef {
			return func(r []*TrackRef) []*TrackRef { return b.resolveRefs("vrrp_sync_group "+g.Name, what, r, find) }
		}
		g.TrackScripts = lookup("track script", func(n string) (int, bool) {
			if s := b.cfg.idx.scripts[n]; s != nil {
				return s.Weight, true
			}
			return 0, false
		})(g.TrackScripts)
		g.TrackFiles = lookup("track file", func(n string) (int, bool) {
			if s := b.cfg.idx.trackFiles[n]; s != nil {
				return s.Weight, true
			}
			return 0, false
		})(g.TrackFiles)
		g.TrackProcesses = lookup("track process", func(n string) (int, bool) {
			if s := b.cfg.idx.trackProcs[n]; s != nil {
				return s.Weight, true
			}
			return 0, false
		})(g.TrackProcesses)
		for _, name := range g.Members {
			i := b.cfg.idx.instances[name]
			i.SyncGroup = g.Name
			if g.TrackingWeight {
				continue
			}
			// Members' priorities must move together: keepalived refuses
			// weighted tracking on members.
			for _, list := range []*[]*TrackRef{&i.TrackScripts, &i.TrackFiles, &i.TrackProcesses, &i.TrackInterfaces} {
				for _, t := range *list {
					if t.Weight != 0 {
						b.errorf(t.Pos, "vrrp_instance %s: weighted tracking of %s in sync group %s: weight set to 0 (use sync_group_tracking_weight to allow it)", i.Name, t.Name, g.Name)
						t.Weight = 0
					}
				}
			}
		}
		kept = append(kept, g)
	}
	b.cfg.SyncGroups = kept
}

// checkRoute applies keepalived's checks of a virtual or static route.
func (b *builder) checkRoute(where string, r *Route) {
	switch {
	case r.Dev != "" && !b.ifExists(r.Dev):
		b.errorf(r.Pos, "%s: interface %s of route %s does not exist", where, r.Dev, r.Dest)
	case r.Via.IsValid() && r.Via.Is4() != r.Dest.Addr().Is4(), r.Src.IsValid() && r.Src.Is4() != r.Dest.Addr().Is4():
		b.errorf(r.Pos, "%s: route %s mixes IPv4 and IPv6 addresses", where, r.Dest)
	case r.Dev == "" && !r.NoTrack:
		b.errorf(r.Pos, "%s: route %s has no dev so it cannot be tracked: add dev IFNAME or no_track", where, r.Dest)
	}
}

// checkRule applies keepalived's checks of a virtual or static rule. A
// rule needs a preference: otherwise the order of rules added and removed
// at transitions would be arbitrary.
func (b *builder) checkRule(r *Rule) {
	if r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is4() != r.To.Addr().Is4() {
		b.errorf(r.Pos, "rule %s mixes IPv4 and IPv6", strings.Join(r.Words, " "))
	}
	for _, ifn := range []string{r.IIf, r.OIf} {
		if ifn != "" && !b.ifExists(ifn) {
			b.errorf(r.Pos, "rule %s: interface %s does not exist", strings.Join(r.Words, " "), ifn)
		}
	}
	for _, w := range r.Words {
		if w == "preference" || w == "priority" || w == "pref" {
			return
		}
	}
	b.errorf(r.Pos, "rule %s has no preference: keepalived assigns 16384, which is probably not what you want", strings.Join(r.Words, " "))
}

func (b *builder) validateStatic() {
	for _, v := range b.cfg.StaticAddresses {
		if v.TrackGroup != "" && !b.trackGroups[v.TrackGroup] {
			b.errorf(v.Pos, "static_ipaddress %s: track_group %s is not defined", v.Prefix, v.TrackGroup)
		}
	}
	for _, r := range b.cfg.StaticRoutes {
		b.checkRoute("static_routes", r)
	}
	for _, r := range b.cfg.StaticRules {
		b.checkRule(r)
	}
	for _, v := range b.cfg.StaticAddresses {
		dev := v.Dev
		if dev == "" {
			dev = b.cfg.Global.DefaultInterface
		}
		if !b.ifExists(dev) {
			b.errorf(v.Pos, "static_ipaddress %s: interface %s does not exist", v.Prefix, dev)
		}
	}
}

// resolveBFD gives track_bfd lines without a weight their bfd_instance's
// weight and reverse, as keepalived does.
func (b *builder) resolveBFD(refs []*TrackRef) {
	for _, r := range refs {
		if bi := b.cfg.BFDInstance(r.Name); bi != nil && !r.WeightSet {
			r.Weight, r.Reverse = bi.Weight, bi.Reverse
		}
	}
}
