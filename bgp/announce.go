// Package bgp decides what a director announces to its routers over BGP
// (RFC 4271, with RFC 4760 multiprotocol extensions for IPv6 and RFC 1997
// communities): the addresses of the virtual servers it can serve and of
// the VRRP instances it is master of, as host routes (/32, /128). It is a
// vigil extension of keepalived.conf (bgp_instance, bgp_announce) for
// active-active directors behind a router's ECMP.
//
// Like lb, it is pure: Decide maps the state the daemon already holds
// (quorum, what the data plane has in place, VRRP states) onto the routes
// each bgp_instance announces and the reason for each, and Diff says what
// a speaker must send. The BGP sessions themselves live in bgp/speaker.
package bgp

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"vigil/config"
)

// Service is one load-balanced address (one lb service) and what makes it
// worth announcing.
type Service struct {
	// Source names the virtual_server block, for reasons ("[192.0.2.100]:tcp:80").
	Source string
	VIP    netip.Addr
	// Quorum is the model's verdict now: losing it withdraws at once.
	Quorum bool
	// Ready is true when the rules in the kernel serve the address: the
	// last applied state had the service active, with its quorum and a
	// real server it can forward to. An announcement waits for it, so the
	// router never sends traffic that finds no rule.
	Ready bool
	// Since is when the service last became ready or its applied real
	// servers (and so its table) last changed: an announcement held by
	// a bgp_instance's announce_delay waits until that long after it.
	Since    time.Time
	Announce []*config.BGPAnnounce
}

// Instance is a vrrp_instance whose VIPs are announced while it is master.
type Instance struct {
	Name     string
	Master   bool
	VIPs     []netip.Addr
	Announce []*config.BGPAnnounce
}

// Input is everything Decide looks at.
type Input struct {
	Services  []Service
	Instances []Instance
	// Stopping withdraws everything (shutdown drains before the rules go).
	Stopping bool
	// Now, Hold and Previous make announce_delay: a virtual server's
	// prefix that was not announced (in Previous, the last decisions) is
	// announced only once its table has been unchanged for Hold[the
	// bgp_instance] (Service.Since). A prefix already announced stays.
	Now      time.Time
	Hold     map[string]time.Duration
	Previous []Decision
}

// Route is one announced host route of one bgp_instance.
type Route struct {
	Instance    string
	Prefix      netip.Prefix
	Communities []uint32 // sorted, unique
	MED         uint32
	HasMED      bool
}

func (r Route) String() string {
	s := r.Instance + " " + r.Prefix.String()
	for _, c := range r.Communities {
		s += fmt.Sprintf(" community %d:%d", c>>16, c&0xffff)
	}
	if r.HasMED {
		s += fmt.Sprintf(" med %d", r.MED)
	}
	return s
}

func sameAttrs(a, b Route) bool {
	return slices.Equal(a.Communities, b.Communities) && a.MED == b.MED && a.HasMED == b.HasMED
}

// Decision is one prefix of one bgp_instance: announced or not, and why.
type Decision struct {
	Route
	Announced bool
	// Reasons lists, per source that names the prefix, why it does or
	// does not count ("virtual_server [192.0.2.100]:tcp:80: quorum, rules in place").
	Reasons []string
	// HoldUntil is, for a prefix held back by announce_delay, when the
	// decision changes if nothing else does (the caller decides again
	// then); zero otherwise.
	HoldUntil time.Time
}

type key struct {
	inst   string
	prefix netip.Prefix
}

// Decide computes, for every bgp_instance and prefix some block asks to
// announce, whether it is announced. A prefix named by several sources
// (the same VIP on ports 80 and 443, or a virtual server and a VRRP
// instance) is announced while any of them qualifies, with the union of
// their communities and the lowest MED: withdrawing port 80's address
// because port 443 lost its quorum would take both down.
func Decide(in Input) []Decision {
	m := map[key]*Decision{}
	get := func(a *config.BGPAnnounce, addr netip.Addr) *Decision {
		k := key{a.Instance, netip.PrefixFrom(addr, addr.BitLen())}
		d := m[k]
		if d == nil {
			d = &Decision{Route: Route{Instance: k.inst, Prefix: k.prefix}}
			m[k] = d
		}
		return d
	}
	add := func(d *Decision, a *config.BGPAnnounce, ok bool, reason string) {
		d.Reasons = append(d.Reasons, reason)
		if !ok {
			return
		}
		if !d.Announced {
			d.Announced = true
			d.Communities, d.MED, d.HasMED = nil, 0, false
		}
		d.Communities = append(d.Communities, a.Communities...)
		if a.HasMED && (!d.HasMED || a.MED < d.MED) {
			d.MED, d.HasMED = a.MED, true
		}
	}
	was := map[key]bool{}
	for _, d := range in.Previous {
		if d.Announced {
			was[key{d.Instance, d.Prefix}] = true
		}
	}
	for _, s := range in.Services {
		if !s.VIP.IsValid() {
			continue
		}
		ok, why := s.Quorum && s.Ready, "quorum, rules in place"
		switch {
		case in.Stopping:
			ok, why = false, "shutting down"
		case !s.Quorum:
			why = "quorum lost"
		case !s.Ready:
			why = "waiting for the forwarding rules"
		}
		for _, a := range s.Announce {
			d := get(a, s.VIP.Unmap())
			ok, why := ok, why
			if hold := in.Hold[a.Instance]; ok && hold > 0 && !was[key{d.Instance, d.Prefix}] {
				if until := s.Since.Add(hold); in.Now.Before(until) {
					ok, why = false, fmt.Sprintf("quorum, rules in place; holding until the real servers have not changed for announce_delay %v", hold)
					if d.HoldUntil.IsZero() || until.Before(d.HoldUntil) {
						d.HoldUntil = until
					}
				}
			}
			add(d, a, ok, "virtual_server "+s.Source+": "+why)
		}
	}
	for _, i := range in.Instances {
		ok, why := i.Master, "MASTER"
		switch {
		case in.Stopping:
			ok, why = false, "shutting down"
		case !i.Master:
			why = "not MASTER"
		}
		for _, a := range i.Announce {
			for _, v := range i.VIPs {
				add(get(a, v.Unmap()), a, ok, "vrrp_instance "+i.Name+": "+why)
			}
		}
	}
	out := make([]Decision, 0, len(m))
	for _, d := range m {
		if d.Announced {
			d.HoldUntil = time.Time{}
			slices.Sort(d.Communities)
			d.Communities = slices.Compact(d.Communities)
		} else {
			d.Communities = nil
		}
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b Decision) int { return compareRoute(a.Route, b.Route) })
	return out
}

func compareRoute(a, b Route) int {
	if c := cmp.Compare(a.Instance, b.Instance); c != 0 {
		return c
	}
	if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits())
}

// Routes are the announced routes of ds, per bgp_instance.
func Routes(ds []Decision) map[string][]Route {
	out := map[string][]Route{}
	for _, d := range ds {
		if d.Announced {
			out[d.Instance] = append(out[d.Instance], d.Route)
		}
	}
	return out
}

// Diff says how to go from the routes announced (old) to want: routes to
// announce (new ones, and ones whose attributes changed: an UPDATE
// replaces them) and prefixes to withdraw.
func Diff(old, want []Route) (announce, withdraw []Route) {
	had := make(map[netip.Prefix]Route, len(old))
	for _, r := range old {
		had[r.Prefix] = r
	}
	keep := make(map[netip.Prefix]bool, len(want))
	for _, r := range want {
		keep[r.Prefix] = true
		if o, ok := had[r.Prefix]; !ok || !sameAttrs(o, r) {
			announce = append(announce, r)
		}
	}
	for _, r := range old {
		if !keep[r.Prefix] {
			withdraw = append(withdraw, r)
		}
	}
	return announce, withdraw
}
