package config

import (
	"net/netip"
	"strings"
)

// validateSync completes lvs_sync_daemon: the key is folded in, defaults
// applied, and what keepalived -t accepts but no director could run is
// warned about and turns the sync off (keepalived 2.2.7 accepts a missing
// or unknown instance at -t; at run time there is no master to follow).
func (b *builder) validateSync() {
	g := &b.cfg.Global
	sd, auth := g.LVSSyncDaemon, g.lvsSyncAuth
	if sd == nil {
		if auth.set {
			b.warnf(auth.pos, "lvs_sync_auth_key without lvs_sync_daemon: ignored")
		}
		return
	}
	if auth.set {
		sd.AuthKey, sd.AuthKeyFile, sd.AuthPos = auth.key, auth.file, auth.pos
	}
	if sd.Instance == "" {
		b.warnf(sd.Pos, "lvs_sync_daemon %s: no vrrp_instance named: connection sync is off (expected lvs_sync_daemon INTERFACE VRRP_INSTANCE)", sd.Interface)
		g.LVSSyncDaemon = nil
		return
	}
	in := b.cfg.Instance(sd.Instance)
	if in == nil || in.dropped {
		b.warnf(sd.Pos, "lvs_sync_daemon: vrrp_instance %s does not exist: connection sync is off", sd.Instance)
		g.LVSSyncDaemon = nil
		return
	}
	if !b.ifExists(sd.Interface) {
		b.warnf(sd.Pos, "lvs_sync_daemon: interface %s does not exist on this host: connection sync cannot start until it does", sd.Interface)
	}
	if sd.ID < 0 {
		sd.ID = in.VRID
	}
	if sd.Port == 0 {
		sd.Port = DefaultSyncPort
	}
	if sd.TTL == 0 {
		sd.TTL = DefaultSyncTTL
	}
	if in.Unicast() && in.Interface == sd.Interface && sd.Group.IsValid() {
		b.warnf(sd.Pos, "lvs_sync_daemon group %s: vrrp_instance %s has unicast peers, so the sync goes to them: group ignored", sd.Group, in.Name)
		sd.Group = netip.Addr{}
	}
	if len(sd.AuthKey) == 0 && sd.AuthKeyFile == "" {
		b.warnf(sd.Pos, "lvs_sync_daemon without lvs_sync_auth_key: sync packets are not authenticated, so any host on %s can inject connection entries (vigil extension: lvs_sync_auth_key or lvs_sync_auth_key_file)", sd.Interface)
	}
	b.checkSyncedLocalAddresses(in)
}

// checkSyncedLocalAddresses warns about FNAT services whose local
// addresses are not VIPs of the sync instance: the real servers answer to
// the local address, so after a takeover the synced entries would point
// at an address the new master does not own.
func (b *builder) checkSyncedLocalAddresses(in *Instance) {
	// The members of the sync instance's vrrp_sync_group change state
	// with it, so a local address among a sibling's VIPs moves with the
	// master too (an IPv4 and an IPv6 instance in one group is the usual
	// dual-stack shape).
	movers := []*Instance{in}
	if in.SyncGroup != "" {
		for _, g := range b.cfg.SyncGroups {
			if g.Name != in.SyncGroup {
				continue
			}
			for _, m := range g.Members {
				for _, other := range b.cfg.Instances {
					if other.Name == m && other != in {
						movers = append(movers, other)
					}
				}
			}
		}
	}
	vips := map[netip.Addr]bool{}
	for _, mv := range movers {
		for _, list := range [][]*VIP{mv.VIPs, mv.ExcludedVIPs} {
			for _, v := range list {
				vips[v.Addr()] = true
			}
		}
	}
	// owned: every address of e is a VIP (a range of more than 256 is
	// taken as not owned rather than walked).
	owned := func(e *LocalAddress) bool {
		if e.Count() > 256 {
			return false
		}
		last := e.Last
		if !last.IsValid() {
			last = e.First
		}
		for a := e.First; a.IsValid() && a.Compare(last) <= 0; a = a.Next() {
			if !vips[a] {
				return false
			}
		}
		return true
	}
	for _, vs := range b.cfg.VirtualServers {
		if vs.forwardingMethod() != FNAT || vs.LaddrGroupName == "" {
			continue
		}
		lg := b.cfg.LocalAddressGroup(vs.LaddrGroupName)
		if lg == nil {
			continue
		}
		var missing []string
		for _, e := range lg.Entries {
			if !owned(e) {
				missing = append(missing, e.First.String())
			}
		}
		if len(missing) > 0 {
			b.warnf(vs.Pos, "virtual_server %s: local_address_group %s has %s, not among the virtual_ipaddress of vrrp_instance %s (lvs_sync_daemon) or of its vrrp_sync_group: the local addresses do not move with the master, so its synced connections break at a takeover",
				vs.Key(), lg.Name, strings.Join(missing, ", "), in.Name)
		}
	}
}
