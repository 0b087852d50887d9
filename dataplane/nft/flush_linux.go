package nft

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"vigil/internal/ctflow"
	"vigil/internal/ctnl"
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
// has not (in Backends or Draining). DR keeps no conntrack state: a
// remembered flow of a departed real server is no longer followed
// (drFlows) and expires from its map.
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

// stale reports whether e is in a state staleTo deletes: any UDP flow,
// an unanswered or reset TCP flow.
func stale(e *ctflow.Entry) bool {
	if e.Proto != unix.IPPROTO_TCP {
		return true
	}
	return e.TCPState == ctSynSent || e.TCPState == ctSynSent2 || e.TCPState == ctClose
}

// of is the index in f.gone of the backend e is bound to, or -1. A real
// server of a fwmark or all-ports service has port 0: any port is its.
func (f staleTo) of(e *ctflow.Entry) int {
	for k, g := range f.gone {
		if c, ok := connOf([]lb.Service{g.svc}, e); ok && (c.Real == g.rs || g.rs.Port() == 0 && c.Real.Addr() == g.rs.Addr()) {
			return k
		}
	}
	return -1
}

// filters are the kernel-side filters (ctnl.DumpFilter) that find the
// flows of f's backends: one per real server and protocol, since in a
// NAT or FNAT flow the reply comes from the real server.
func (f staleTo) filters() []ctnl.Filter {
	var out []ctnl.Filter
	for _, g := range f.gone {
		c := ctnl.Filter{Proto: protoNum[g.svc.Proto], ReplySrc: g.rs.Addr(), ReplySrcPort: g.rs.Port()}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// find lists the stale flows of f's backends, read through c one real
// server at a time, and calls live with the index of each backend that
// has a flow that stays.
func (f staleTo) find(c *ctnl.Conn, live func(k int)) ([]ctflow.Entry, error) {
	var out []ctflow.Entry
	each := func(e *ctflow.Entry) {
		k := f.of(e)
		switch {
		case k < 0:
		case stale(e):
			out = append(out, *e)
		case live != nil:
			live(k)
		}
	}
	flts := f.filters()
	if len(flts) > maxFilteredDumps {
		return out, c.Dump(each)
	}
	var errs error
	for _, flt := range flts {
		errs = errors.Join(errs, c.DumpFilter(flt, each))
	}
	return out, errs
}

// maxFilteredDumps is how many real servers find reads one kernel-filtered
// dump each for; past it, one dump of the whole table is cheaper (the
// kernel walks the table for every filtered dump, at about 0.2 µs a flow,
// and the whole dump costs about 1 µs a flow: docs/benchmarks.md).
var maxFilteredDumps = 4 // a variable for TestFlushWholeTable

// lingerMax bounds how long Sweep watches a real server after it left:
// established connections can outlive the server's removal by hours, and
// the kernel walks its whole conntrack table for each sweep. Ten minutes
// covers a server that fails its checks and then dies or is restarted.
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
// left. The daemon calls it every 2 s (with its MAC refresh): while a
// server lingers, a conntrack dump of that server's flows only (filtered
// in the kernel, ctnl.DumpFilter: about 0.2 µs of CPU for each flow of
// the table, where reading the whole table cost 4-5 µs), paced to a
// twentieth of a core (package pace: every 2 s up to about 500,000 flows),
// nothing otherwise.
//
// It returns how many servers it still watches.
func (d *Dataplane) Sweep(ctx context.Context) (int, error) {
	// On the dump socket, outside mu (Conns): an Apply does not wait for
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
	live := make([]bool, len(watch))
	err := ctx.Err()
	if err == nil {
		var n int
		if n, err = deleteStale(ctx, d.ct, staleTo{gone: watch}, func(k int) { live[k] = true }); n > 0 {
			d.log.Info("nft: flushed reset flows of removed real servers", "flows", n)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		// A dump that failed proves no server flowless.
		return len(d.lingering), fmt.Errorf("nft: sweep flows of removed real servers: %w", err)
	}
	// Forget what this sweep watched and found without flows, or past
	// lingerMax; what an Apply added or brought back meanwhile is its own.
	now := time.Now()
	d.lingering = slices.DeleteFunc(d.lingering, func(g goneBackend) bool {
		k := slices.IndexFunc(watch, func(w goneBackend) bool { return w.same(g) && w.left.Equal(g.left) })
		switch {
		case k < 0:
			return false
		case !live[k]:
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
	n, err := deleteStale(context.Background(), d.ctApply, staleTo{gone: gone}, nil)
	if n > 0 {
		d.log.Info("nft: flushed flows of removed real servers", "flows", n)
	}
	if err != nil {
		d.log.Warn("nft: flush flows of removed real servers", "err", err)
	}
}

// deleteStale deletes f's stale flows, read and deleted through c (live
// as for find), and says how many went; a flow gone meanwhile (ENOENT: it
// ended, or another sweep took it) is no error.
func deleteStale(ctx context.Context, c *ctnl.Conn, f staleTo, live func(k int)) (int, error) {
	dead, err := f.find(c, live)
	if err != nil || len(dead) == 0 {
		return 0, err
	}
	res, err := c.Do(ctx, dead, (*ctnl.Msg).AppendDelete)
	if err != nil {
		return 0, err // the answers past the failed batch are not known
	}
	n := 0
	for _, e := range res {
		switch e {
		case 0:
			n++
		case unix.ENOENT:
		default:
			err = errors.Join(err, e)
		}
	}
	return n, err
}
