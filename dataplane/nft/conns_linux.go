package nft

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"vigil/internal/ctflow"
	"vigil/lb"
)

// Conntrack's TCP states (enum tcp_conntrack) that flushGone matches, and
// the names of all of them (Conns): the keys make the compiler check that
// the names and the constants agree on the numbering.
const (
	ctSynSent  = 1
	ctClose    = 8
	ctSynSent2 = 9
)

var tcpStates = [...]string{"NONE", ctSynSent: "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", ctClose: "CLOSE", ctSynSent2: "SYN_SENT2"}

// dumpHook, when set (tests), runs in Conns and Sweep before their dump,
// with dumpMu held and mu not.
var dumpHook func()

var protoNum = map[lb.Proto]uint8{lb.TCP: unix.IPPROTO_TCP, lb.UDP: unix.IPPROTO_UDP, lb.SCTP: unix.IPPROTO_SCTP}

// Conns lists the connections of the NAT and FNAT services last applied,
// and the flows their IPv4 DR services remember (drConns), sorted by
// service, client.
func (d *Dataplane) Conns(ctx context.Context) ([]Conn, error) {
	var out []Conn
	if err := d.eachConn(ctx, func(c *Conn) { out = append(out, *c) }); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, errClosed
	}
	services := d.services // Apply replaces services, never edits them
	d.nsMu.RLock()         // the nft processes start in the namespace (Stats)
	d.mu.Unlock()
	defer d.nsMu.RUnlock()
	dr, err := d.drConns(ctx, services)
	if err != nil {
		return nil, err
	}
	out = append(out, dr...)
	slices.SortFunc(out, func(a, b Conn) int {
		if a.Service != b.Service {
			if a.Service < b.Service {
				return -1
			}
			return 1
		}
		return a.Client.Compare(b.Client)
	})
	return out, nil
}

// CountConns counts the active connections of Conns per service and real
// server (countConn) as the table is read: the lc/wlc count (every 2 s,
// paced) allocates nothing per connection.
func (d *Dataplane) CountConns(ctx context.Context) (map[string]map[netip.AddrPort]int, error) {
	out := map[string]map[netip.AddrPort]int{}
	err := d.eachConn(ctx, func(c *Conn) { countConn(out, c) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachConn calls fn with each connection of the NAT and FNAT services
// last applied, in the kernel's order; fn must copy what it keeps.
func (d *Dataplane) eachConn(ctx context.Context, fn func(*Conn)) error {
	// On the dump socket, outside mu: an Apply does not wait for it.
	d.dumpMu.Lock()
	defer d.dumpMu.Unlock()
	d.mu.Lock()
	closed, services := d.closed, d.services // Apply replaces services, never edits them
	d.mu.Unlock()
	if closed {
		return errClosed
	}
	if dumpHook != nil {
		dumpHook()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var c Conn
	err := d.ct.Dump(func(e *ctflow.Entry) {
		var ok bool
		if c, ok = connOf(services, e); ok {
			fn(&c)
		}
	})
	if err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	return nil
}

func connOf(services []lb.Service, e *ctflow.Entry) (Conn, bool) {
	client := netip.AddrPortFrom(e.Orig.Src, e.Orig.SrcPort)
	vip := netip.AddrPortFrom(e.Orig.Dst, e.Orig.DstPort)
	real := netip.AddrPortFrom(e.Reply.Src, e.Reply.SrcPort)
	local := netip.AddrPortFrom(e.Reply.Dst, e.Reply.DstPort)
	if real == vip {
		return Conn{}, false // not DNATed
	}
	for i := range services {
		s := &services[i]
		if s.Method == lb.DR || protoNum[s.Proto] != e.Proto {
			continue
		}
		if s.FwMark != 0 {
			if !hasBackend(s, real) {
				continue
			}
		} else if vip.Addr() != s.VIP || (s.Port != 0 && vip.Port() != s.Port) {
			continue
		}
		c := Conn{Service: s.Name, Proto: s.Proto.String(), Expires: time.Duration(e.Timeout) * time.Second,
			Client: client, VIP: vip, Real: real}
		if s.Method == lb.FNAT && local != client {
			c.Local = local
		}
		if e.Proto == unix.IPPROTO_TCP && int(e.TCPState) < len(tcpStates) {
			c.State = tcpStates[e.TCPState]
		}
		return c, true
	}
	return Conn{}, false
}

func hasBackend(s *lb.Service, ap netip.AddrPort) bool {
	for _, list := range [][]lb.Backend{s.Backends, s.Draining} {
		for _, b := range list {
			if b.Addr == ap.Addr() && (b.Port == 0 || b.Port == ap.Port()) {
				return true
			}
		}
	}
	return false
}
