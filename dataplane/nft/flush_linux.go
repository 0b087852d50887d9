package nft

import (
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"vigil/lb"
)

// goneBackend is a real server a service no longer has, neither for new
// flows nor draining.
type goneBackend struct {
	svc lb.Service // the service as it was, for matching its flows
	rs  netip.AddrPort
}

// removedBackends lists the NAT and FNAT backends that old had and next
// has not (in Backends or Draining). DR keeps no flow state.
func removedBackends(old, next []lb.Service) []goneBackend {
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
	if fl.Forward.Protocol == unix.IPPROTO_TCP {
		p, ok := fl.ProtoInfo.(*netlink.ProtoInfoTCP)
		if !ok || (p.State != ctSynSent && p.State != ctSynSent2 && p.State != ctClose) {
			return false
		}
	}
	for _, g := range f.gone {
		if c, ok := connOf([]lb.Service{g.svc}, fl); ok && c.Real == g.rs {
			return true
		}
	}
	return false
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
