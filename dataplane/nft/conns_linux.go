package nft

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

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
// sorted by service, client.
func (d *Dataplane) Conns(ctx context.Context) ([]Conn, error) {
	// On the dump handle, outside mu: an Apply does not wait for it.
	d.dumpMu.Lock()
	defer d.dumpMu.Unlock()
	d.mu.Lock()
	closed, services := d.closed, d.services // Apply replaces services, never edits them
	d.mu.Unlock()
	if closed {
		return nil, errClosed
	}
	if dumpHook != nil {
		dumpHook()
	}
	var out []Conn
	for _, f := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		flows, err := d.dump.ConntrackTableList(netlink.ConntrackTable, f)
		if err != nil {
			return nil, fmt.Errorf("nft: conntrack: %w", err)
		}
		for _, fl := range flows {
			if c, ok := connOf(services, fl); ok {
				out = append(out, c)
			}
		}
	}
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

func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}

// connOf matches a conntrack flow to the service it went through: its
// original destination is the VIP (and port), or, for fwmark services, its
// reply comes from one of the service's real servers; and it was DNATed.
func connOf(services []lb.Service, fl *netlink.ConntrackFlow) (Conn, bool) {
	client := addrPort(fl.Forward.SrcIP, fl.Forward.SrcPort)
	vip := addrPort(fl.Forward.DstIP, fl.Forward.DstPort)
	real := addrPort(fl.Reverse.SrcIP, fl.Reverse.SrcPort)
	local := addrPort(fl.Reverse.DstIP, fl.Reverse.DstPort)
	if real == vip {
		return Conn{}, false // not DNATed
	}
	for i := range services {
		s := &services[i]
		if s.Method == lb.DR || protoNum[s.Proto] != fl.Forward.Protocol {
			continue
		}
		if s.FwMark != 0 {
			if !hasBackend(s, real) {
				continue
			}
		} else if vip.Addr() != s.VIP || (s.Port != 0 && vip.Port() != s.Port) {
			continue
		}
		c := Conn{Service: s.Name, Proto: s.Proto.String(), Expires: time.Duration(fl.TimeOut) * time.Second,
			Client: client, VIP: vip, Real: real}
		if s.Method == lb.FNAT && local != client {
			c.Local = local
		}
		if p, ok := fl.ProtoInfo.(*netlink.ProtoInfoTCP); ok && int(p.State) < len(tcpStates) {
			c.State = tcpStates[p.State]
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
