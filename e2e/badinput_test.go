package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"vigil/control"
	"vigil/internal/labtest"
	"vigil/vrrp/wire"
)

// A hostile or broken neighbour sends thousands of malformed VRRP packets
// at a live vigil master and a live vigil backup. None may change state,
// none may crash the daemon, and each must be counted under its reason.
// The packets are built so that, were they accepted, they would matter: a
// priority 254 advert would make the master back off, a priority 0 advert
// would make the backup take over at once.
func TestBadPacketsNeverChangeState(t *testing.T) {
	requireVRRPLab(t)
	t.Parallel()
	_, hosts, _ := labtest.LAN(t, "bad", map[string][]string{
		"m": {"192.0.2.1/24"}, "b": {"192.0.2.2/24"}, "x": {"192.0.2.66/24"},
	}, "m", "b", "x")
	m, b := vigilPair(t, confV2MulticastPass, hosts["m"], hosts["b"], 2*time.Second, "192.0.2.1", "192.0.2.2")
	vip := pairVIP
	before := map[*node]control.InstanceStatus{m: instStatus(t, m), b: instStatus(t, b)}

	src, group := netip.MustParseAddr("192.0.2.66"), wire.GroupV4
	valid := func(prio uint8, vrid uint8, pass string, interval uint16) []byte {
		a := wire.Advert{Version: 2, Type: wire.TypeAdvertisement, VRID: vrid, Priority: prio, AuthType: wire.AuthPass,
			Interval: interval, Addrs: []netip.Addr{vip}, AuthData: wire.Password(pass)}
		p, err := a.Marshal(src, group, wire.ChecksumPseudoHeader)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	fixSum := func(p []byte) []byte { // recompute the v2 checksum after a change
		binary.BigEndian.PutUint16(p[6:], 0)
		var s uint32
		for i := 0; i+1 < len(p); i += 2 {
			s += uint32(binary.BigEndian.Uint16(p[i:]))
		}
		for s > 0xffff {
			s = s>>16 + s&0xffff
		}
		binary.BigEndian.PutUint16(p[6:], ^uint16(s))
		return p
	}
	type bad struct {
		name   string
		ttl    int
		pkt    func(prio uint8) []byte
		reason string // counter that must grow; "" for foreign VRID
	}
	kinds := []bad{
		{"truncated", 255, func(p uint8) []byte { return valid(p, 51, "s3cr3t", 1)[:11] }, "dropped_length"},
		{"ttl 64", 64, func(p uint8) []byte { return valid(p, 51, "s3cr3t", 1) }, "dropped_ttl"},
		{"version 4", 255, func(p uint8) []byte { q := valid(p, 51, "s3cr3t", 1); q[0] = 0x41; return fixSum(q) }, "dropped_version"},
		{"wrong password", 255, func(p uint8) []byte { return valid(p, 51, "guessed", 1) }, "dropped_auth"},
		{"no auth", 255, func(p uint8) []byte { q := valid(p, 51, "s3cr3t", 1); q[4] = wire.AuthNone; return fixSum(q) }, "dropped_auth_type"},
		{"interval 2s", 255, func(p uint8) []byte { return valid(p, 51, "s3cr3t", 2) }, "dropped_interval"},
		{"type 2", 255, func(p uint8) []byte { q := valid(p, 51, "s3cr3t", 1); q[0] = 0x22; return fixSum(q) }, "dropped_type"},
		{"bad checksum", 255, func(p uint8) []byte { q := valid(p, 51, "s3cr3t", 1); q[6] ^= 0x5a; return q }, "dropped_checksum"},
		{"count 3", 255, func(p uint8) []byte { q := valid(p, 51, "s3cr3t", 1); q[3] = 3; return fixSum(q) }, "dropped_length"},
		{"foreign vrid", 255, func(p uint8) []byte { return valid(p, 99, "s3cr3t", 1) }, ""},
	}
	const rounds = 300 // × 10 kinds × 2 priorities = 6,000 packets
	err := hosts["x"].Do(func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		defer c.Close()
		pc := ipv4.NewPacketConn(c)
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		if err := pc.SetMulticastInterface(ifi); err != nil {
			return err
		}
		dst := &net.IPAddr{IP: group.AsSlice()}
		for r := 0; r < rounds; r++ {
			for _, k := range kinds {
				if err := pc.SetMulticastTTL(k.ttl); err != nil {
					return err
				}
				for _, prio := range []uint8{254, 0} {
					if _, err := pc.WriteTo(k.pkt(prio), nil, dst); err != nil {
						return fmt.Errorf("%s: %w", k.name, err)
					}
				}
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	soleOwner(t, vip, m, time.Second, time.Second, m, b)
	for _, n := range []*node{m, b} {
		now := instStatus(t, n)
		was := before[n]
		if now.State != was.State || !now.Since.Equal(was.Since) {
			t.Errorf("%s: state %s since %v became %s since %v (%s)", n.Host.Name, was.State, was.Since, now.State, now.Since, now.Reason)
		}
		for _, k := range kinds {
			if k.reason == "" {
				continue
			}
			if got := now.Counters[k.reason] - was.Counters[k.reason]; got < 2*rounds {
				t.Errorf("%s: %s: counter %s grew by %d, want at least %d", n.Host.Name, k.name, k.reason, got, 2*rounds)
			}
		}
		if got := now.ForeignVRIDs[99]; got < 2*rounds {
			t.Errorf("%s: foreign VRID adverts counted %d, want at least %d", n.Host.Name, got, 2*rounds)
		}
		t.Logf("%s (%s): counters after the flood: %v", n.Host.Name, now.State, now.Counters)
		// The operator hears of it: one line per reason at once, the rest
		// counted into one line per reason per 10 s (the flood is shorter),
		// not a line per packet.
		logged := map[string]int{}
		for _, l := range strings.Split(n.Out.String(), "\n") {
			if strings.Contains(l, `msg="VRRP advert`) {
				if i := strings.Index(l, " reason="); i >= 0 {
					logged[strings.Fields(l[i+len(" reason="):])[0]]++
				}
			}
		}
		for _, r := range []string{"length", "ttl", "version", "auth", "auth-type", "interval", "type", "checksum"} {
			if logged[r] < 1 || logged[r] > 2 {
				t.Errorf("%s: %d log lines for dropped adverts with reason %s, want 1 (or 2 across a 10 s boundary): %v", n.Host.Name, logged[r], r, logged)
			}
		}
	}
}

func instStatus(t *testing.T, n *node) control.InstanceStatus {
	t.Helper()
	s, err := n.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Instances) != 1 {
		t.Fatalf("%s: %d instances, want 1", n.Host.Name, len(s.Instances))
	}
	return s.Instances[0]
}
