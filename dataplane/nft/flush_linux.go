package nft

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vigil/lb"
)

// goneBackend is a real server a service no longer has, neither for new
// flows nor draining.
type goneBackend struct {
	svc  lb.Service // the service as it was, for matching its flows
	rs   netip.AddrPort
	left time.Time // when it left (lingering backends)
}

// same reports whether g and o are the same real server of the same
// service.
func (g goneBackend) same(o goneBackend) bool { return g.svc.Name == o.svc.Name && g.rs == o.rs }

// keptIn is, by service name, the backends next has (in Backends or
// Draining).
func keptIn(next []lb.Service) map[string]map[netip.AddrPort]bool {
	keep := map[string]map[netip.AddrPort]bool{}
	for _, s := range next {
		m := map[netip.AddrPort]bool{}
		for _, list := range [][]lb.Backend{s.Backends, s.Draining} {
			for _, b := range list {
				m[b.AddrPort()] = true
			}
		}
		keep[s.Name] = m
	}
	return keep
}

// removedBackends lists the NAT and FNAT backends that old had and next
// has not (in Backends or Draining). DR keeps no flow state.
func removedBackends(old, next []lb.Service) []goneBackend {
	keep := keptIn(next)
	var out []goneBackend
	for _, s := range old {
		if s.Method == lb.DR {
			continue
		}
		for _, list := range [][]lb.Backend{s.Backends, s.Draining} {
			for _, b := range list {
				if !keep[s.Name][b.AddrPort()] {
					out = append(out, goneBackend{svc: s, rs: b.AddrPort()})
				}
			}
		}
	}
	return out
}

// staleTo matches the conntrack entries of a removed backend that
// would otherwise keep steering a client's new connection from the same
// address and port to it: UDP flows, TCP flows the backend never answered
// (SYN_SENT, SYN_SENT2), and TCP flows the backend reset (CLOSE: it died, or aborted
// them, with requests in flight). The kernel reopens a CLOSE entry on a new
// SYN only when the client sent the reset or a FIN was seen; otherwise the
// SYN follows the entry's NAT binding to the removed backend for
// nf_conntrack_tcp_timeout_close (10 s after its last packet).
// TIME_WAIT and FIN-closed entries need nothing: a new SYN reopens them.
// Established TCP connections are left alone, as IPVS leaves them
// (expire_nodest_conn 0): a backend removed by a failed check may still be
// serving them.
type staleTo struct{ gone []goneBackend }

func (f staleTo) MatchConntrackFlow(fl *netlink.ConntrackFlow) bool {
	return stale(fl) && f.of(fl) >= 0
}

// stale reports whether fl is in a state staleTo deletes: any UDP flow,
// an unanswered or reset TCP flow.
func stale(fl *netlink.ConntrackFlow) bool {
	if fl.Forward.Protocol != unix.IPPROTO_TCP {
		return true
	}
	p, ok := fl.ProtoInfo.(*netlink.ProtoInfoTCP)
	return ok && (p.State == ctSynSent || p.State == ctSynSent2 || p.State == ctClose)
}

// of is the index in f.gone of the backend fl is bound to, or -1.
func (f staleTo) of(fl *netlink.ConntrackFlow) int {
	for k, g := range f.gone {
		if c, ok := connOf([]lb.Service{g.svc}, fl); ok && c.Real == g.rs {
			return k
		}
	}
	return -1
}

// sweepFilter is staleTo for the lingering backends (Sweep), and notes
// which of them still have a flow that stays.
type sweepFilter struct {
	staleTo
	live []bool
}

func (f *sweepFilter) MatchConntrackFlow(fl *netlink.ConntrackFlow) bool {
	k := f.of(fl)
	if k < 0 {
		return false
	}
	if stale(fl) {
		return true
	}
	f.live[k] = true
	return false
}

// lingerMax bounds how long Sweep watches a real server after it left:
// established connections can outlive the server's removal by hours, and
// each sweep reads the whole conntrack table. Ten minutes covers a server
// that fails its checks and then dies or is restarted.
const lingerMax = 10 * time.Minute

// linger is the backends Sweep watches after an Apply at now that removed
// gone: those it watched and those that left now, but not one that is back
// in its service (next), each once. flushGone leaves a removed backend's
// established flows alone; until they are gone, the backend may still
// reset them.
func linger(cur, gone []goneBackend, next []lb.Service, now time.Time) []goneBackend {
	keep := keptIn(next)
	back := func(g goneBackend) bool { return keep[g.svc.Name][g.rs] }
	var out []goneBackend
	for _, g := range cur {
		if !back(g) {
			out = append(out, g)
		}
	}
	for _, g := range gone {
		if !slices.ContainsFunc(out, g.same) && !back(g) {
			g.left = now
			out = append(out, g)
		}
	}
	return out
}

// Sweep deletes the reset and unanswered flows of real servers that left
// their service while connections to them were established. flushGone
// keeps those connections, as IPVS keeps them (expire_nodest_conn 0): the
// server, removed by a failed check, may still be serving them. If it
// dies later, or aborts them, each becomes a CLOSE entry bound to it for
// nf_conntrack_tcp_timeout_close (10 s), and a client that reuses one of
// those ports in that time follows the binding to the dead server instead
// of being scheduled afresh (staleTo). A server is forgotten once no flow
// to it is left, when it is back in its service, or lingerMax after it
// left. The daemon calls it every 2 s (with its MAC refresh): a conntrack
// dump while a server lingers, at most every 2 s and paced to a twentieth
// of a core (package pace: a table of 100,000 flows is swept about every
// 8 s, and a client reusing a reset flow's port within that time may
// still meet it there), nothing otherwise.
//
// It returns how many servers it still watches.
func (d *Dataplane) Sweep(ctx context.Context) (int, error) {
	// On the dump handle, outside mu (Conns): an Apply does not wait for
	// the dump, and may change the watched servers meanwhile.
	d.dumpMu.Lock()
	defer d.dumpMu.Unlock()
	d.mu.Lock()
	if d.closed || len(d.lingering) == 0 || !d.sweepPace.Due(time.Now()) {
		n := len(d.lingering)
		d.mu.Unlock()
		return n, nil
	}
	watch := slices.Clone(d.lingering)
	d.mu.Unlock()
	if dumpHook != nil {
		dumpHook()
	}
	d.sweepPace.Begin(time.Now())
	defer func() { d.sweepPace.End(time.Now()) }() // under dumpMu, as it is read
	f := &sweepFilter{staleTo: staleTo{gone: watch}, live: make([]bool, len(watch))}
	var errs error
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		if err := ctx.Err(); err != nil {
			errs = err
			break
		}
		n, err := d.dump.ConntrackDeleteFilters(netlink.ConntrackTable, fam, f)
		if err != nil {
			errs = errors.Join(errs, fmt.Errorf("nft: sweep flows of removed real servers: %w", err))
			continue
		}
		if n > 0 {
			d.log.Info("nft: flushed reset flows of removed real servers", "flows", n)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if errs != nil {
		return len(d.lingering), errs // a dump that failed proves no server flowless
	}
	// Forget what this sweep watched and found without flows, or past
	// lingerMax; what an Apply added or brought back meanwhile is its own.
	now := time.Now()
	d.lingering = slices.DeleteFunc(d.lingering, func(g goneBackend) bool {
		k := slices.IndexFunc(watch, func(w goneBackend) bool { return w.same(g) && w.left.Equal(g.left) })
		switch {
		case k < 0:
			return false
		case !f.live[k]:
			return true
		case now.Sub(g.left) >= lingerMax:
			d.log.Info("nft: no longer watching the flows of a removed real server for resets", "service", g.svc.Name, "real_server", g.rs.String(), "left", g.left)
			return true
		}
		return false
	})
	return len(d.lingering), nil
}

// Lingering is how many removed real servers Sweep watches: the daemon
// runs its tick while there are any.
func (d *Dataplane) Lingering() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.lingering)
}

// flushGone deletes the unanswered and reset flows to backends that left,
// so that a client retrying, or reusing a port, from the same address and
// port is scheduled afresh instead of following a stale translation to a
// dead server. Called with d.mu held.
func (d *Dataplane) flushGone(gone []goneBackend) {
	if len(gone) == 0 {
		return
	}
	f := staleTo{gone: gone}
	for _, fam := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		n, err := d.nl.ConntrackDeleteFilters(netlink.ConntrackTable, fam, f)
		if err != nil {
			d.log.Warn("nft: flush flows of removed real servers", "err", err)
			continue
		}
		if n > 0 {
			d.log.Info("nft: flushed flows of removed real servers", "flows", n)
		}
	}
}
