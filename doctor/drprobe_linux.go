package doctor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"vigil/config"
	"vigil/internal/drpath"
	"vigil/netio"
)

// DRProbeWait is how long the DR probe listens for answers after its last
// SYN; DRProbeTries how many SYNs of each kind it sends, 100 ms apart.
const (
	DRProbeWait  = time.Second
	DRProbeTries = 3
)

// drTarget is one real server to probe, before the probe.
type drTarget struct {
	vip     netip.Addr
	port    uint16
	real    netip.Addr
	ifi     *net.Interface
	own     netip.Prefix
	mac     net.HardwareAddr
	p       *DRProbe
	sport   [2]uint16 // control, spoofed
	spoofed netip.Addr
}

// probeDR probes the DR path to every real server of every IPv4 DR
// virtual server whose VIP this host holds (it is the active director),
// real servers on one interface at once. It returns one DRProbe per real
// server; none when this host directs no DR service.
func probeDR(ctx context.Context, cfg *config.Config, facts Facts) []DRProbe {
	if cfg == nil {
		return nil
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	// Every local address, with its interface and prefix.
	type local struct {
		ifi *net.Interface
		p   netip.Prefix
	}
	var locals []local
	for i := range ifaces {
		as, err := ifaces[i].Addrs()
		if err != nil {
			continue
		}
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				ip, _ := netip.AddrFromSlice(n.IP)
				ones, _ := n.Mask.Size()
				locals = append(locals, local{&ifaces[i], netip.PrefixFrom(ip.Unmap(), ones)})
			}
		}
	}
	arp := drpath.Neighbours()
	var targets []*drTarget
	var out []*DRProbe
	for _, vs := range cfg.VirtualServers {
		if vs.Kind != config.VSAddr || !vs.Addr.Is4() {
			continue
		}
		var vipIf *net.Interface
		for _, l := range locals {
			if l.p.Addr() == vs.Addr && l.ifi.Flags&net.FlagLoopback == 0 {
				vipIf = l.ifi
			}
		}
		if vipIf == nil {
			continue // not the active director of this service
		}
		for _, rs := range vs.RealServers {
			m := rs.Method
			if m == config.MethodUnset {
				m = vs.Method
			}
			if m != config.DR || !rs.Addr.Is4() {
				continue
			}
			svc := netip.AddrPortFrom(vs.Addr, vs.Port).String()
			p := &DRProbe{Service: svc, Real: rs.Addr, Interface: vipIf.Name}
			out = append(out, p)
			t := &drTarget{vip: vs.Addr, port: vs.Port, real: rs.Addr, ifi: vipIf, p: p}
			if t.port == 0 {
				t.port = rs.Port
			}
			if t.port == 0 {
				t.port = 80
			}
			// This host's address on the VIP's link that has the real
			// server on-link: DR frames never cross a router.
			for _, l := range locals {
				if l.ifi.Index == vipIf.Index && l.p.Addr().Is4() && l.p.Addr() != vs.Addr && l.p.Masked().Contains(rs.Addr) {
					t.own = l.p
					break
				}
			}
			if !t.own.IsValid() {
				p.Err = fmt.Sprintf("%s has no IPv4 address on the subnet of %s (lb_kind DR needs the real servers on the director's link)", vipIf.Name, rs.Addr)
				continue
			}
			p.Own = t.own.Addr()
			if len(vipIf.HardwareAddr) != 6 {
				p.Err = vipIf.Name + " has no Ethernet address"
				continue
			}
			targets = append(targets, t)
		}
	}
	byIf := map[int][]*drTarget{}
	for _, t := range targets {
		byIf[t.ifi.Index] = append(byIf[t.ifi.Index], t)
	}
	own := map[netip.Addr]bool{}
	for _, l := range locals {
		own[l.p.Addr()] = true
	}
	for _, ts := range byIf {
		probeLink(ctx, ts, own, arp, facts)
	}
	res := make([]DRProbe, len(out))
	for i, p := range out {
		res[i] = *p
	}
	return res
}

// probeLink probes the real servers ts, all reached through one interface.
func probeLink(ctx context.Context, ts []*drTarget, locals map[netip.Addr]bool, arp map[string]net.HardwareAddr, facts Facts) {
	ifi := ts[0].ifi
	fail := func(t *drTarget, format string, args ...any) { t.p.Err = fmt.Sprintf(format, args...) }
	conn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
	if err != nil {
		for _, t := range ts {
			fail(t, "AF_PACKET socket on %s: %v (the probe needs root)", ifi.Name, err)
		}
		return
	}
	defer conn.Close()

	// The real servers' MACs: the neighbour table, else ask by ARP from
	// this host's own address, as the kernel would.
	var ask []*drTarget
	for _, t := range ts {
		if mac := arp[t.real.String()+" "+ifi.Name]; mac != nil {
			t.mac = mac
		} else {
			ask = append(ask, t)
		}
	}
	if len(ask) > 0 {
		for _, t := range ask {
			_ = drpath.Link{Ifi: ifi, Own: t.own}.SendARP(conn, t.own.Addr(), t.real)
		}
		drpath.ReadFrames(ctx, conn, time.Now().Add(500*time.Millisecond), func(b []byte) bool {
			a, err := netio.ParseARP(b)
			if err != nil || a.Op != netio.ARPReply {
				return false
			}
			done := true
			for _, t := range ask {
				if t.mac == nil && a.SenderIP == t.real {
					t.mac = a.SenderMAC
				}
				done = done && t.mac != nil
			}
			return done
		})
	}
	// One unused address of the subnet as the spoofed source, checked
	// free with RFC 5227 probes (from 0.0.0.0: no cache changes anywhere).
	taken := func(a netip.Addr) bool {
		if locals[a] {
			return true
		}
		if _, ok := arp[a.String()+" "+ifi.Name]; ok {
			return true
		}
		return slices.ContainsFunc(ts, func(t *drTarget) bool { return t.real == a || t.vip == a })
	}
	var spoofed netip.Addr
	for _, c := range drpath.FreeCandidates(ts[0].own, taken, 4) {
		if holders, err := facts.Holders(ifi.Name, c); err == nil && len(holders) == 0 {
			spoofed = c
			break
		}
	}
	var live []*drTarget
	for _, t := range ts {
		switch {
		case t.mac == nil:
			fail(t, "%s did not answer ARP on %s", t.real, ifi.Name)
		case !spoofed.IsValid() || !ts[0].own.Masked().Contains(spoofed):
			fail(t, "no free address in %s to send the probe from", ts[0].own.Masked())
		default:
			t.spoofed = spoofed
			t.p.Spoofed, t.p.RealMAC = spoofed, t.mac.String()
			t.sport = [2]uint16{uint16(32768 + rand.N(28000)), uint16(32768 + rand.N(28000))}
			live = append(live, t)
		}
	}
	if len(live) == 0 {
		return
	}
	for try := 0; try < DRProbeTries; try++ {
		for _, t := range live {
			for k, src := range []netip.Addr{t.own.Addr(), t.spoofed} {
				b, err := drpath.SYN(t.mac, ifi.HardwareAddr, src, t.vip, t.sport[k], t.port, rand.Uint32())
				if err == nil {
					_, err = conn.WriteTo(b, &packet.Addr{HardwareAddr: t.mac})
				}
				if err != nil {
					fail(t, "send on %s: %v", ifi.Name, err)
				}
			}
			t.p.Sent++
		}
		if try < DRProbeTries-1 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, t := range live {
		t.p.Wait = DRProbeWait.String()
	}
	drpath.ReadFrames(ctx, conn, time.Now().Add(DRProbeWait), func(b []byte) bool {
		if a, err := netio.ParseARP(b); err == nil {
			for _, t := range live {
				if a.Op == netio.ARPRequest && a.TargetIP == t.spoofed && slices.Equal(a.SenderMAC, t.mac) && !t.p.SpoofAnswered {
					t.p.SpoofAnswered = true
					t.p.SpoofSeen = fmt.Sprintf("%s asked by ARP who has %s, to answer it", a.SenderIP, t.spoofed)
				}
			}
		} else if r, ok := drpath.ParseTCP(b); ok {
			for _, t := range live {
				if !slices.Equal(r.EthSrc, t.mac) || r.Src != netip.AddrPortFrom(t.vip, t.port) {
					continue
				}
				switch r.Dst {
				case netip.AddrPortFrom(t.own.Addr(), t.sport[0]):
					if !t.p.ControlAnswered {
						t.p.ControlAnswered, t.p.ControlSeen = true, r.String()
					}
				case netip.AddrPortFrom(t.spoofed, t.sport[1]):
					if !t.p.SpoofAnswered {
						t.p.SpoofAnswered, t.p.SpoofSeen = true, r.String()
					}
				}
			}
		}
		return !slices.ContainsFunc(live, func(t *drTarget) bool { return !t.p.ControlAnswered || !t.p.SpoofAnswered })
	})
}
