package lb

import (
	"cmp"
	"fmt"
	"maps"
	"math/bits"
	"net/netip"
	"slices"
)

// schedKind is how a scheduler's weights are derived.
type schedKind int

const (
	kindRR       schedKind = iota // every live backend weight 1
	kindWeighted                  // configured weights (wrr, sh, dh, mh)
	kindLC                        // 1/(conns+1), weights ignored (lc)
	kindWLC                       // weight/(conns+1) (wlc, sed, twos)
	kindNQ                        // idle servers first, then as wlc (nq)
	kindFO                        // highest weight only (fo)
	kindOVF                       // highest weight until its conns reach its weight (ovf)
)

// sched is a scheduler as data for the data plane.
type sched struct {
	kind schedKind
	sel  Selection
	hash Hash
}

// counted reports whether the scheduler's weights follow connection counts
// (lc, wlc, sed, nq, twos, ovf): the model needs SetConnCounts, and the
// data plane picks at random in proportion to the weights.
func (sc sched) counted() bool {
	switch sc.kind {
	case kindLC, kindWLC, kindNQ, kindOVF:
		return true
	}
	return false
}

// schedulers are the IPVS schedulers (lb_algo / lvs_sched) and what
// nftables can do for each. This table is the one place a scheduler is
// defined: the daemon and the data plane follow the Service's Selection,
// Hash and NeedsConnCounts, never the name. (config lists the names it
// accepts in config.Schedulers; a test holds the two lists together.)
var schedulers = map[string]sched{
	"rr":  {kind: kindRR},
	"wrr": {kind: kindWeighted},
	"lc":  {kind: kindLC, sel: SelectRandom},
	// With connection counts refreshed only now and then, the differences
	// between wlc, sed (+1) and twos (a random pair) are below the
	// approximation's resolution.
	"wlc":  {kind: kindWLC, sel: SelectRandom},
	"sed":  {kind: kindWLC, sel: SelectRandom},
	"twos": {kind: kindWLC, sel: SelectRandom},
	"nq":   {kind: kindNQ, sel: SelectRandom},
	"fo":   {kind: kindFO},
	"ovf":  {kind: kindOVF, sel: SelectRandom},
	"sh":   {kind: kindWeighted, sel: SelectHash, hash: HashSourceAddr},
	"dh":   {kind: kindWeighted, sel: SelectHash, hash: HashDestAddr},
	// lblc/lblcr send a destination to the same server until it is
	// overloaded: the destination hash without the overload escape.
	"lblc":  {kind: kindWeighted, sel: SelectHash, hash: HashDestAddr},
	"lblcr": {kind: kindWeighted, sel: SelectHash, hash: HashDestAddr},
	"mh":    {kind: kindWeighted, sel: SelectMaglev, hash: HashSourceAddr},
}

// DefaultScheduler is keepalived's lvs_sched when none is given.
const DefaultScheduler = "wlc"

// Schedulers lists the scheduler names the model knows, sorted.
func Schedulers() []string { return slices.Sorted(maps.Keys(schedulers)) }

// schedFor maps an IPVS scheduler name and its flags to what nftables can
// do.
func schedFor(name string, flags []string) (sched, error) {
	sc, ok := schedulers[name]
	if !ok {
		return sched{}, fmt.Errorf("unknown scheduler %q", name)
	}
	port := slices.Contains(flags, "sh-port") || slices.Contains(flags, "mh-port") || slices.Contains(flags, "flag-2")
	if port && sc.hash == HashSourceAddr {
		sc.hash = HashSourceAddrPort
	}
	return sc, nil
}

// NeedsConnCounts reports whether the service's weights or thresholds
// follow connection counts (a counted scheduler, or a real server with
// uthreshold), so that its caller must feed SetConnCounts. Never for DR,
// which keeps no flow state to count; an unknown scheduler needs none
// (New rejects it).
func (c *ServiceConfig) NeedsConnCounts() bool {
	if c.Method == DR {
		return false
	}
	if sc, err := schedFor(cmp.Or(c.Scheduler, DefaultScheduler), c.SchedFlags); err == nil && sc.counted() {
		return true
	}
	return slices.ContainsFunc(c.RealServers, func(r RealServerConfig) bool { return r.UThreshold > 0 })
}

// connWeights re-derives the weights of live backends from their
// connection counts c and weights w (lc: w = 1). Least-connection schedulers
// send each new flow to the lowest load x = c/w; with counts refreshed only
// every few seconds, doing that literally would send every flow in between
// to one server. Instead each backend gets a share of new flows
// proportional to
//
//	w·1/(x+1) = w²/(c+w)
//
// scaled so the largest is connScale, and at least 1: at equal loads that
// is the configured weights (wrr), an idle server gets far more than a busy
// one, and in steady state (flows ending at a constant rate) the load
// settles where c is proportional to w, which is what wlc aims at. (A share
// proportional to w/(c+1) instead would settle at c proportional to √w.)
// nq additionally gives busy servers the minimum while any server is idle.
//
// The arithmetic is exact integers, so that every director derives the same
// weights (floating point may fuse operations differently per
// architecture): weights are scaled down to 16 bits and counts capped at
// maxConns, and the products kept in 128 bits.
func connWeights(live []Backend, counts map[netip.AddrPort]int, kind schedKind) {
	maxW := 1
	for _, b := range live {
		maxW = max(maxW, b.Weight)
	}
	shift := max(0, bits.Len(uint(maxW))-16)
	w := make([]uint64, len(live))
	c := make([]uint64, len(live))
	idle := false
	for i, b := range live {
		w[i] = 1
		if kind != kindLC {
			w[i] = max(1, uint64(b.Weight)>>shift)
		}
		c[i] = uint64(min(counts[b.AddrPort()], maxConns))
		idle = idle || c[i] == 0
	}
	// score i is w[i]²/(c[i]+w[i]); a > b compares cross products.
	best := 0
	for i := range live {
		ahi, alo := bits.Mul64(w[i]*w[i], c[best]+w[best])
		bhi, blo := bits.Mul64(w[best]*w[best], c[i]+w[i])
		if ahi > bhi || ahi == bhi && alo > blo {
			best = i
		}
	}
	for i := range live {
		if kind == kindNQ && idle && c[i] > 0 {
			// nq: never queue behind a busy server while one idles.
			live[i].Weight = 1
			continue
		}
		// round(connScale · score_i / score_best); the quotient is at
		// most connScale, so Div64 cannot overflow.
		hi, lo := bits.Mul64(connScale*w[i]*w[i], c[best]+w[best])
		den := w[best] * w[best] * (c[i] + w[i])
		lo, carry := bits.Add64(lo, den/2, 0)
		q, _ := bits.Div64(hi+carry, lo, den)
		live[i].Weight = max(1, int(q))
	}
}

// maxConns caps connection counts for connWeights' arithmetic; no real
// server holds that many flows.
const maxConns = 1 << 24

// connScale is the largest weight the connection-count approximations
// produce: enough resolution to steer traffic, small enough that the
// numgen ranges stay short.
const connScale = 256

// weigh turns the live backends (configured or dynamic weights, all > 0)
// into the Backends the data plane sees, moving those a scheduler never
// picks for new flows to draining. Both results are sorted.
func (sc sched) weigh(live, draining []Backend, counts map[netip.AddrPort]int) ([]Backend, []Backend) {
	conns := func(b Backend) uint64 { return uint64(counts[b.AddrPort()]) }
	switch sc.kind {
	case kindRR:
		for i := range live {
			live[i].Weight = 1
		}
	case kindLC, kindWLC, kindNQ:
		if counts == nil {
			// Nothing reported yet: lc has no weights, the others use
			// the configured ones (what the formula gives at no load).
			if sc.kind == kindLC {
				for i := range live {
					live[i].Weight = 1
				}
			}
			break
		}
		connWeights(live, counts, sc.kind)
	case kindFO, kindOVF:
		pick := -1
		for i, b := range live {
			if pick < 0 || b.Weight > live[pick].Weight {
				pick = i
			}
		}
		if sc.kind == kindOVF && counts != nil {
			// The highest weight first, then the next, each until its
			// connections reach its weight; all full: the highest.
			order := make([]int, len(live))
			for i := range order {
				order[i] = i
			}
			slices.SortStableFunc(order, func(a, b int) int { return live[b].Weight - live[a].Weight })
			for _, i := range order {
				if conns(live[i]) < uint64(live[i].Weight) {
					pick = i
					break
				}
			}
		}
		if pick < 0 {
			break
		}
		for i, b := range live {
			if i != pick {
				b.Weight = 0
				draining = append(draining, b)
			}
		}
		live = []Backend{live[pick]}
		sortBackends(draining)
	}
	return live, draining
}

// MaxTotalWeight bounds Service.TotalWeight, the numgen/jhash modulus,
// well inside the 32 bits nftables computes with.
const MaxTotalWeight = 1 << 30

// fitTotal scales weights down in proportion (each stays at least 1) when
// their sum would exceed MaxTotalWeight; configured weights go up to 2^31−1
// each, as in keepalived.
func fitTotal(bs []Backend) {
	var sum uint64
	for _, b := range bs {
		sum += uint64(b.Weight)
	}
	if sum <= MaxTotalWeight {
		return
	}
	for i := range bs {
		hi, lo := bits.Mul64(uint64(bs[i].Weight), MaxTotalWeight-uint64(len(bs)))
		q, _ := bits.Div64(hi, lo, sum)
		bs[i].Weight = max(1, int(q))
	}
}

// DRNote says where a DR service departs from what its scheduler means
// under IPVS, or "" where it does not (mh, sh, dh, lblc, lblcr, fo). DR
// directors share no state per flow (the rule runs at netdev ingress and
// forwards the frame; no conntrack; each director remembers only the flows
// it forwarded), so a flow's first packet must find its real server from
// its headers alone: every DR service picks through a Maglev table keyed
// by the scheduler's own hash when it has one, else by the client address
// when persistent, else by the whole flow (addresses, ports, protocol).
// That is also what makes DR directors interchangeable behind ECMP: the
// same configuration and health give the same table on every director,
// whatever the scheduler. What is lost is a scheduler's per-connection
// behaviour: taking turns (rr, wrr) and following connection counts (lc,
// wlc, sed, nq, twos, ovf).
func DRNote(name string, flags []string, persistent bool) string {
	sc, err := schedFor(name, flags)
	if err != nil || sc.hash != HashNone {
		return ""
	}
	key := "a hash of the whole flow (addresses, ports, protocol)"
	if persistent {
		key = "a hash of the client address (persistence)"
	}
	switch sc.kind {
	case kindRR:
		return "new flows go by a Maglev table over " + key + ", not in turn, and every real server counts with weight 1 (its weight is ignored)"
	case kindWeighted:
		return "new flows go by a Maglev table over " + key + " in proportion to the weights, not in turn"
	case kindLC:
		return "DR sees no connections to count: new flows go by a Maglev table over " + key + ", every real server with weight 1"
	case kindWLC, kindNQ, kindOVF:
		return "DR sees no connections to count: new flows go by a Maglev table over " + key + " in proportion to the configured weights"
	}
	return ""
}
