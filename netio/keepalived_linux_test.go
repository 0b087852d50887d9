package netio

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"vigil/internal/inet"
	"vigil/internal/labtest"
	"vigil/vrrp/wire"
)

// keepalivedConf makes keepalived master of three virtual routers at once:
// VRRPv2 with a password, VRRPv3 over IPv4 (checksummed with the
// pseudo-header, keepalived's default) and over IPv6, announcing each VIP
// as soon as it becomes master.
const keepalivedConf = `
global_defs {
  router_id niokv
  vrrp_garp_master_delay 0
  vrrp_garp_master_repeat 1
}
vrrp_instance V2 {
  interface eth0
  virtual_router_id 61
  priority 200
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass secret
  }
  virtual_ipaddress {
    192.0.2.161/32
  }
}
vrrp_instance V3 {
  interface eth0
  version 3
  virtual_router_id 62
  priority 150
  advert_int 0.1
  virtual_ipaddress {
    192.0.2.162/32
  }
}
vrrp_instance V6 {
  interface eth0
  virtual_router_id 63
  priority 100
  advert_int 0.1
  virtual_ipaddress {
    2001:db8::163/128
  }
}
`

// TestKeepalivedInterop: what the real keepalived 2.2.7 sends is what
// netio and wire read: its adverts arrive at a Conn with TTL 255 from the
// interface's address (link-local for IPv6) to the group, parse, carry
// the password and a checksum wire verifies; its gratuitous ARP and
// unsolicited NA parse with ParseARP and ParseNA into the announcements
// GratuitousARP and UnsolicitedNA build.
func TestKeepalivedInterop(t *testing.T) {
	t.Parallel()
	a, b := twoHosts(t, "niokv", "keepalived")
	ifA, llA := ifaceIn(t, a, "eth0")
	ifB, _ := ifaceIn(t, b, "eth0")

	// Listen before keepalived starts, so that nothing is missed.
	b4 := listenIn(t, b, "eth0", inet.IPv4, Options{Multicast: true})
	b6 := listenIn(t, b, "eth0", inet.IPv6, Options{Multicast: true})
	frames := openInHost(t, b, func() (*packet.Conn, error) { return packet.Listen(&ifB, packet.Raw, unix.ETH_P_ALL, nil) })

	labtest.StartKeepalived(t, a, keepalivedConf, "--log-console", "--vrrp")

	adverts := map[uint8]received{}
	var garp *ARP
	var na *NA
	buf := make([]byte, 65536)
	readOne := func(c *Conn) {
		check(t, c.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
		p, err := c.ReadPacket(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		check(t, err)
		adv := parseChecked(t, c, p)
		if _, dup := adverts[adv.VRID]; !dup {
			t.Logf("received %v from %v to %v TTL %d", adv, p.Src, p.Dst, p.TTL)
			p.Data = nil
			adverts[adv.VRID] = received{p, adv}
		}
	}
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); {
		readOne(b4)
		readOne(b6)
		check(t, frames.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
		for {
			n, _, err := frames.ReadFrom(buf)
			if err != nil {
				break
			}
			if f, err := ParseARP(buf[:n]); err == nil && f.Gratuitous() && f.SenderIP == netip.MustParseAddr("192.0.2.161") {
				garp = &f
			}
			if f, err := ParseNA(buf[:n]); err == nil && f.Target == netip.MustParseAddr("2001:db8::163") {
				na = &f
			}
		}
		if len(adverts) == 3 && garp != nil && na != nil {
			break
		}
	}

	src4, group4, group6 := netip.MustParseAddr("192.0.2.1"), wire.GroupV4, wire.GroupV6
	for _, w := range []struct {
		vrid, version, prio uint8
		src, dst            netip.Addr
	}{
		{61, 2, 200, src4, group4},
		{62, 3, 150, src4, group4},
		{63, 3, 100, llA, group6},
	} {
		r, ok := adverts[w.vrid]
		if !ok {
			t.Errorf("no advert for VRID %d from keepalived", w.vrid)
			continue
		}
		if r.Advert.Version != w.version || r.Advert.Priority != w.prio || r.TTL != 255 || r.Src != w.src || r.Dst != w.dst || r.IfIndex != ifB.Index {
			t.Errorf("VRID %d: %v from %v to %v TTL %d ifindex %d; want version %d priority %d from %v to %v TTL 255 ifindex %d",
				w.vrid, r.Advert, r.Src, r.Dst, r.TTL, r.IfIndex, w.version, w.prio, w.src, w.dst, ifB.Index)
		}
	}
	if r, ok := adverts[61]; ok && (r.Advert.AuthType != wire.AuthPass || r.Advert.AuthData != wire.Password("secret")) {
		t.Errorf("VRID 61 auth type %d data %q, want PASS \"secret\"", r.Advert.AuthType, r.Advert.AuthData[:])
	}

	if garp == nil {
		t.Error("no gratuitous ARP for 192.0.2.161 from keepalived")
	} else {
		want, err := GratuitousARP(ifA.HardwareAddr, netip.MustParseAddr("192.0.2.161"), garp.Op == ARPReply)
		check(t, err)
		w, _ := ParseARP(want)
		if garp.Op != ARPRequest || garp.SenderMAC.String() != w.SenderMAC.String() || garp.EthDst.String() != w.EthDst.String() {
			t.Errorf("keepalived's gratuitous ARP %+v, ours %+v", *garp, w)
		}
	}
	if na == nil {
		t.Error("no Neighbor Advertisement for 2001:db8::163 from keepalived")
	} else if !na.Override || na.Solicited || na.HopLimit != 255 || na.Dst != allNodes() || na.TargetLL.String() != ifA.HardwareAddr.String() || na.Src != na.Target {
		// keepalived sends its NA from the VIP itself; the Announcer
		// defaults to the link-local address. RFC 4861 section 7.2.6 allows
		// any address of the interface, and receivers do not look at it.
		t.Errorf("keepalived's NA %+v, want from the target to ff02::1, hop limit 255, O set, S clear, target LL %v", *na, ifA.HardwareAddr)
	}
}

// TestKeepalivedAcceptsVigilAdverts: keepalived 2.2.7 as a backup of three
// virtual routers (VRRPv2 with a password, VRRPv3 over IPv4 and IPv6)
// accepts vigil's adverts from a higher priority master and never takes
// over; had it rejected them (TTL, checksum, authentication, addresses),
// it would become master within its Master_Down_Interval.
func TestKeepalivedAcceptsVigilAdverts(t *testing.T) {
	t.Parallel()
	a, b := twoHosts(t, "niokb", "keepalived")
	_, llA := ifaceIn(t, a, "eth0")
	ifaceIn(t, b, "eth0")
	a4, a6 := listenIn(t, a, "eth0", inet.IPv4, Options{}), listenIn(t, a, "eth0", inet.IPv6, Options{})

	src4 := netip.MustParseAddr("192.0.2.1")
	marshal := func(adv wire.Advert, src, dst netip.Addr) []byte {
		msg, err := adv.Marshal(src, dst, wire.ChecksumPseudoHeader)
		check(t, err)
		return msg
	}
	v2 := marshal(wire.Advert{Version: 2, Type: wire.TypeAdvertisement, VRID: 61, Priority: 250, AuthType: wire.AuthPass,
		AuthData: wire.Password("secret"), Interval: 1, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.161")}}, src4, wire.GroupV4)
	v3 := marshal(wire.Advert{Version: 3, Type: wire.TypeAdvertisement, VRID: 62, Priority: 250, Interval: 10,
		Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.162")}}, src4, wire.GroupV4)
	v6 := marshal(wire.Advert{Version: 3, Type: wire.TypeAdvertisement, VRID: 63, Priority: 250, Interval: 10,
		Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::163")}}, llA, wire.GroupV6)
	send := func(v2too bool) {
		if v2too {
			check(t, a4.Send(v2, src4, wire.GroupV4))
		}
		check(t, a4.Send(v3, src4, wire.GroupV4))
		check(t, a6.Send(v6, llA, wire.GroupV6))
	}

	conf := strings.ReplaceAll(keepalivedConf, "  priority ", "  state BACKUP\n  priority 100 # ")

	// The master is there first, as in a running cluster, and keeps
	// advertising at its intervals (1 s for v2, 100 ms for v3) for longer
	// than the backups' Master_Down_Interval (about 3.6 s and 0.36 s).
	send(true)
	ka := labtest.StartKeepalived(t, b, conf, "--log-console", "--vrrp")
	start := time.Now()
	for i := 1; time.Since(start) < 5*time.Second; i++ {
		time.Sleep(100 * time.Millisecond)
		send(i%10 == 0)
	}
	ka.Stop()
	out := ka.Out.String()
	for _, inst := range []string{"V2", "V3", "V6"} {
		if !strings.Contains(out, "("+inst+") Entering BACKUP STATE") {
			t.Errorf("keepalived instance %s never entered BACKUP", inst)
		}
		if strings.Contains(out, "("+inst+") Entering MASTER STATE") {
			t.Errorf("keepalived instance %s took over: it did not accept vigil's adverts", inst)
		}
	}
}
