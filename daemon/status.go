package daemon

import (
	"net/netip"
	"os"
	"slices"
	"time"

	"vigil/control"
	"vigil/dataplane/nft"
	"vigil/internal/inet"
	"vigil/track"
	"vigil/vrrp"
)

func (d *Daemon) snapshot() control.Status {
	s := control.Status{
		Version:      d.opts.Version,
		PID:          os.Getpid(),
		Started:      d.started,
		ConfigFile:   d.opts.ConfigFile,
		LastReload:   d.lastReload,
		ConfigLoaded: d.configLoaded,
		LoopLag:      d.loopLag.status(d.now()),
	}
	for _, in := range d.insts {
		st := d.instStatus(in)
		is := control.InstanceStatus{
			Name:           st.Name,
			Interface:      in.spec.ifname,
			VRID:           int(st.VRID),
			Version:        st.Version,
			Family:         "ipv4",
			State:          st.State.String(),
			Priority:       int(st.Priority),
			BasePriority:   int(st.BasePriority),
			AdvertInterval: control.Duration(st.AdvertInterval),
			MasterPriority: int(st.MasterPriority),
			Since:          in.since(),
			Reason:         in.reason,
			Cause:          causeName(in.cause),
			Counters:       counters(st.Counters),
			AdvertThread:   st.Paced,
		}
		if in.e.Config().Family == inet.IPv6 {
			is.Family = "ipv6"
		}
		is.GARPSent, is.NASent, is.AnnounceErrors = in.garps.Load(), in.nas.Load(), in.announceErrs.Load()
		is.Counters[control.CounterLoopLagMaxMs] = uint64(time.Duration(s.LoopLag.Max).Milliseconds())
		is.Counters[control.CounterFirstAdvertUs] = uint64(in.firstAdvert)
		is.Counters[control.CounterVIPsClaimedUs] = uint64(in.claimed.Load())
		if st.MasterAddr.IsValid() {
			is.MasterAddr = st.MasterAddr.String()
		}
		for v := range in.vips() {
			is.VIPs = append(is.VIPs, v.Prefix.String())
		}
		slices.Sort(is.VIPs)
		if in.sock != nil && len(in.sock.foreign) > 0 {
			is.ForeignVRIDs = map[int]uint64{}
			for vrid, n := range in.sock.foreign {
				is.ForeignVRIDs[int(vrid)] = n
			}
		}
		s.Instances = append(s.Instances, is)
	}
	s.Services = d.serviceStatus()
	s.Sync = d.syncStatus(d.now())
	s.BGPInstances = d.bgpStatus()
	for _, b := range s.BGPInstances {
		s.BGP = append(s.BGP, b.Sessions...)
	}
	for _, g := range d.groups {
		gs := control.GroupStatus{Name: g.Name(), State: g.State().String()}
		for _, m := range g.Members() {
			gs.Members = append(gs.Members, m.Config().Name)
		}
		s.Groups = append(s.Groups, gs)
	}
	s.Trackers = d.trackerStatus()
	return s
}

// trackerStatus lists every tracker of the running configuration with its
// current result.
func (d *Daemon) trackerStatus() []control.TrackerStatus {
	if d.cfg == nil {
		return nil
	}
	var keys []track.Key
	seen := map[track.Key]bool{}
	add := func(k track.Key) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for _, sc := range d.cfg.Scripts {
		add(track.Key{Kind: track.KindScript, Name: sc.Name})
	}
	for _, f := range d.cfg.TrackFiles {
		add(track.Key{Kind: track.KindFile, Name: f.Name})
	}
	for _, p := range d.cfg.TrackProcesses {
		add(track.Key{Kind: track.KindProcess, Name: p.Name})
	}
	for _, name := range d.trackIfaces {
		add(track.Key{Kind: track.KindInterface, Name: name})
	}
	for _, g := range d.cfg.SyncGroups {
		for _, r := range g.TrackInterfaces {
			add(track.Key{Kind: track.KindInterface, Name: r.Name})
		}
	}
	out := make([]control.TrackerStatus, 0, len(keys))
	for _, k := range keys {
		ts := control.TrackerStatus{Kind: k.Kind.String(), Name: k.Name}
		if r, ok := d.tracking.results[k]; ok {
			ts.Known, ts.OK, ts.Value = true, r.OK, r.Value
		}
		out = append(out, ts)
	}
	return out
}

func counters(c vrrp.Counters) map[string]uint64 {
	m := map[string]uint64{
		control.CounterAdvertsReceived:   c.Received,
		control.CounterAdvertsSent:       c.Sent,
		control.CounterPriority0Received: c.PriorityZeroRcvd,
		control.CounterPriority0Sent:     c.PriorityZeroSent,
		control.CounterBecameMaster:      c.BecameMaster,
		control.CounterReleasedMaster:    c.ReleasedMaster,
	}
	for _, r := range vrrp.DropReasons() {
		m[control.DropCounter(r)] = c.Drops(r)
	}
	return m
}

// addTraffic fills the services' traffic counts from the data plane's
// counters (per service name, per real server address).
func addTraffic(services []control.ServiceStatus, st map[string]map[netip.AddrPort]nft.Stats) {
	conv := func(s nft.Stats) *control.Traffic {
		return &control.Traffic{Conns: s.Conns, InPackets: s.InPackets, InBytes: s.InBytes, OutPackets: s.OutPackets, OutBytes: s.OutBytes}
	}
	for i := range services {
		vs := &services[i]
		counts, ok := st[vs.Name]
		if !ok {
			continue
		}
		var sum nft.Stats
		for _, c := range counts {
			sum.Add(c)
		}
		vs.Stats = conv(sum)
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			ap, err := netip.ParseAddrPort(rs.Addr)
			if err != nil {
				continue
			}
			// A real server out of the pool has no counters: zero.
			rs.Stats = conv(counts[ap])
		}
	}
}

// causeName is the status spelling of a transition's cause: empty before
// the first transition.
func causeName(c vrrp.Cause) string {
	if c == 0 {
		return ""
	}
	return c.String()
}
