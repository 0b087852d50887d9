package daemon

import (
	"fmt"
	"reflect"
	"slices"
	"time"

	"vigil/config"
	"vigil/control"
	"vigil/vrrp"
)

// reload applies a new configuration. Instances whose configuration did
// not change keep running untouched (state, timers, VIPs); removed ones are
// shut down; added ones start. A changed instance keeps its state: the
// engine applies the new parameters in place (vrrp.Instance.Reload) and a
// master adds and removes only the VIPs that changed. Only a change of
// interface, family, VRID or version restarts an instance, as keepalived
// does.
func (d *Daemon) reload(now time.Time) control.ReloadResult {
	res := control.ReloadResult{At: now}
	defer func() { d.lastReload = &res }()
	defer d.setPeriodic() // the new configuration may give the tick work, or take it away
	// A reload touches what queued work reads (specs, the data plane):
	// finish that work and do this reload's own at once.
	d.work.setInline(true)
	defer d.work.setInline(false)
	cfg, diags := config.Load(d.opts.ConfigFile, d.opts.Env())
	if diags.HasErrors() {
		for _, dg := range diags {
			if dg.Severity >= config.Error {
				res.Errors = append(res.Errors, dg.String())
			}
		}
		d.log.Error("reload rejected: the configuration has errors; the running configuration is kept",
			"config", d.opts.ConfigFile, "errors", len(res.Errors), "first", res.Errors[0])
		return res
	}
	// As at start: warnings name what will not work as written (a NAT
	// service on a host that does not forward, say), so a reload says them
	// again rather than only `vigil check`.
	for _, dg := range diags {
		if dg.Severity == config.Warning {
			d.log.Warn("config", "diagnostic", dg.String())
		}
	}
	bs, err := d.buildSpecs(cfg)
	if err != nil {
		res.Errors = []string{err.Error()}
		d.log.Error("reload rejected; the running configuration is kept", "err", err)
		return res
	}
	groupsChanged := !reflect.DeepEqual(groupShape(d.cfg), groupShape(cfg))
	old := map[string]*instance{}
	for _, in := range d.insts {
		old[in.spec.name] = in
	}
	var kept []*instance
	var toStart []built
	blocks := map[*instance]*config.Instance{} // the new block of each kept instance, for its trackers
	for _, b := range bs {
		s := b.spec
		o := old[s.name]
		var was vrrp.Config // o's engine configuration before a Reload
		if o != nil {
			was = o.e.Config()
		}
		switch {
		case o == nil:
			res.Changes = append(res.Changes, "added "+s.name)
			toStart = append(toStart, b)
			continue
		case sameSpec(o, b) && !(groupsChanged && (o.group != nil || s.m().syncGroup != "")):
			// Keep the engine; the new block may differ in positions or in
			// things the engine does not see (notify scripts), which the
			// new spec carries. VIPs an earlier reload retired stay known.
			s.setRetired(o.spec.m().retired)
			o.spec = s
			kept = append(kept, o)
			blocks[o] = b.cfg
		case o.spec.ifname == s.ifname && o.e.Config().Family == b.engine.Family && o.spec.vmac() == s.vmac() && o.e.Reload(b.engine, now) == nil:
			if o.e.State() == vrrp.StateMaster {
				// Swap the routes and rules the master holds.
				d.setRoutes(o.spec, false)
				defer d.setRoutes(o.spec, true)
			}
			// The engine keeps its state and timers and diffs a master's
			// VIPs; addresses that left the config are still looked up
			// for their removal.
			res.Changes = append(res.Changes, "updated "+s.name)
			var retired vipSet
			for v := range o.spec.vipsOf(was.VIPs, was.ExcludedVIPs) {
				if !slices.Contains(b.engine.VIPs, v.Prefix) && !slices.Contains(b.engine.ExcludedVIPs, v.Prefix) {
					retired.put(v)
				}
			}
			s.setRetired(retired)
			o.spec = s
			kept = append(kept, o)
			blocks[o] = b.cfg
		default:
			res.Changes = append(res.Changes, "restarted "+s.name+": its interface, family, VRID or version changed")
			d.shutdown(now, o)
			toStart = append(toStart, b)
		}
		delete(old, s.name)
	}
	for name, o := range old {
		res.Changes = append(res.Changes, "removed "+name)
		d.shutdown(now, o)
	}
	d.insts = kept
	d.cfg, d.pacing = cfg, newGarpPacing(cfg)
	byName := map[string]*instance{}
	for _, in := range kept {
		byName[in.spec.name] = in
	}
	var errs []string
	ups := map[string]bool{}
	for _, b := range toStart {
		in, err := d.startInstance(now, b, ups)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		byName[b.spec.name] = in
	}
	if groupsChanged {
		if err := d.buildGroups(byName); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if nb, err := d.balancerFor(cfg); err != nil {
		errs = append(errs, err.Error())
	} else if !sameLB(d.lbRunning(), nb) {
		res.Changes = append(res.Changes, "virtual servers reconfigured")
		if err := d.reconfigure(d.runCtx, nb); err != nil {
			errs = append(errs, err.Error())
		}
	} else if d.bal != nil {
		d.adopt(nb)
	}
	bc, be := d.reloadBGP(cfg)
	res.Changes, errs = append(res.Changes, bc...), append(errs, be...)
	res.Changes = append(res.Changes, d.reloadSync(now, cfg)...)
	// Trackers may have changed: restart the watchers (their results are
	// kept, so priorities do not flap) and re-evaluate every instance.
	d.stopTracking()
	d.startTracking(d.runCtx, cfg)
	d.startBFD(d.runCtx, cfg)
	for _, in := range d.insts {
		if blk := blocks[in]; blk != nil { // started ones have theirs already
			refs, _ := refsFor(cfg, blk)
			in.setRefs(refs)
		}
		d.retrack(now, in)
	}
	d.keepConfig(cfg)
	d.syncNoAccept() // accept or no_accept may have changed
	res.OK = len(errs) == 0
	if res.OK {
		d.configLoaded = now
	}
	res.Errors = errs
	slices.Sort(res.Changes)
	d.log.Info("reloaded", "config", d.opts.ConfigFile, "changes", fmt.Sprint(res.Changes), "errors", len(errs))
	return res
}

// shutdown stops one instance as on exit: priority 0 advert, VIPs released.
func (d *Daemon) shutdown(now time.Time, in *instance) {
	_ = in.e.Step(now, vrrp.Shutdown{})
	rd := in.e.Ready()
	d.sendAdverts(in, &rd)
	d.apply(in, &rd)
	d.detach(in)
	d.removeVMAC(in)
}

// sameSpec reports whether the new block b asks nothing of the running
// instance in that its engine and its VIPs, routes and rules do not
// already do. The engine's configuration is compared with b's, both
// normalized, with the configured preemption in place of the connection
// sync's hold (the engine's is the only copy kept: instanceSpec).
func sameSpec(in *instance, b built) bool {
	a, n := in.spec, b.spec
	running := in.e.Config()
	running.NoPreempt = a.noPreempt
	return a.ifname == n.ifname && a.vmac() == n.vmac() &&
		reflect.DeepEqual(a.m().routes, n.m().routes) && reflect.DeepEqual(a.m().rules, n.m().rules) &&
		reflect.DeepEqual(running, b.engine) && slices.Equal(a.m().vipOpts, n.m().vipOpts)
}

func groupShape(c *config.Config) map[string][]string {
	m := map[string][]string{}
	if c == nil {
		return m
	}
	for _, g := range c.SyncGroups {
		m[g.Name] = g.Members
	}
	return m
}
