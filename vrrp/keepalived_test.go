package vrrp_test

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"vigil/internal/inet"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

// Adverts sent by the real keepalived 2.2.7 (captured by
// vrrp/wire/testdata/capture.sh into keepalived-2.2.7.txt, copied here so
// the engine's tests stand alone): NAME SRC DST TTL HEX, first the
// priority-150 advert of a new master, then its priority-0 resignation.
const captured = `
v2-pass 192.0.2.1 224.0.0.18 255 21339602010186b2c0000264c00002657365637265740000
v2-pass 192.0.2.1 224.0.0.18 255 2133000201011cb3c0000264c00002657365637265740000
v2-none 192.0.2.1 224.0.0.18 255 2134960100028661c00002660000000000000000
v2-none 192.0.2.1 224.0.0.18 255 2134000100021c62c00002660000000000000000
v3-ipv4 192.0.2.1 224.0.0.18 255 3135960200641105c0000264c0000265
v3-ipv4 192.0.2.1 224.0.0.18 255 313500020064a705c0000264c0000265
v3-ipv4-unicast 192.0.2.1 192.0.2.2 255 313696010064f17bc0000267
v3-ipv4-unicast 192.0.2.1 192.0.2.2 255 313600010064877cc0000267
v3-ipv4-unicast-old 192.0.2.1 192.0.2.2 255 313796010064d369c0000268
v3-ipv4-unicast-old 192.0.2.1 192.0.2.2 255 313700010064696ac0000268
v3-ipv6 fe80::ff:fe00:1 ff02::12 255 313896020032ddf020010db800000000000000000000010020010db8000000000000000000000101
v3-ipv6 fe80::ff:fe00:1 ff02::12 255 31380002003273f120010db800000000000000000000010020010db8000000000000000000000101
`

// keepalivedConfigs are the vrrp_instance blocks capture.sh ran, as
// Configs of the capturing router (192.0.2.1, priority 150).
func keepalivedConfigs() map[string]vrrp.Config {
	p := netip.MustParsePrefix
	k := netip.MustParseAddr("192.0.2.1")
	peer := []netip.Addr{netip.MustParseAddr("192.0.2.2")}
	return map[string]vrrp.Config{
		"v2-pass": {VRID: 51, Version: 2, Priority: 150, SrcAddr: k, AuthType: wire.AuthPass, AuthPass: "secret",
			VIPs: []netip.Prefix{p("192.0.2.100/24"), p("192.0.2.101/24")}},
		"v2-none": {VRID: 52, Version: 2, Priority: 150, SrcAddr: k, AdvertInterval: 2 * time.Second,
			VIPs: []netip.Prefix{p("192.0.2.102/24")}},
		"v3-ipv4": {VRID: 53, Version: 3, Priority: 150, SrcAddr: k,
			VIPs: []netip.Prefix{p("192.0.2.100/24"), p("192.0.2.101/24")}},
		"v3-ipv4-unicast": {VRID: 54, Version: 3, Priority: 150, SrcAddr: k, Peers: peer,
			VIPs: []netip.Prefix{p("192.0.2.103/24")}},
		"v3-ipv4-unicast-old": {VRID: 55, Version: 3, Priority: 150, SrcAddr: k, Peers: peer, OldUnicastChecksum: true,
			VIPs: []netip.Prefix{p("192.0.2.104/24")}},
		"v3-ipv6": {VRID: 56, Priority: 150, SrcAddr: netip.MustParseAddr("fe80::ff:fe00:1"), AdvertInterval: 500 * time.Millisecond,
			VIPs: []netip.Prefix{p("2001:db8::100/64"), p("2001:db8::101/64")}},
	}
}

type capture struct {
	name     string
	src, dst netip.Addr
	ttl      int
	data     []byte
}

func captures(t *testing.T) map[string][]capture {
	t.Helper()
	out := map[string][]capture{}
	for _, line := range strings.Split(strings.TrimSpace(captured), "\n") {
		f := strings.Fields(line)
		b, err := hex.DecodeString(f[4])
		if err != nil {
			t.Fatal(err)
		}
		out[f[0]] = append(out[f[0]], capture{f[0], netip.MustParseAddr(f[1]), netip.MustParseAddr(f[2]), 255, b})
	}
	return out
}

// An instance configured as keepalived was sends byte for byte what
// keepalived sent: the advert of a new master and the priority 0 one on
// shutdown.
func TestKeepalivedSameBytes(t *testing.T) {
	caps := captures(t)
	for name, c := range keepalivedConfigs() {
		t.Run(name, func(t *testing.T) {
			c.InitialState = vrrp.StateMaster
			in := start(t, c, t0)
			in.Advance(at(time.Minute))
			rd := in.Ready()
			if len(rd.Adverts) == 0 {
				t.Fatal("no advert")
			}
			want := caps[name]
			if got := rd.Adverts[0]; got.Dst != want[0].dst || hex.EncodeToString(got.Data) != hex.EncodeToString(want[0].data) {
				t.Errorf("master advert to %v:\n got %x\nwant %x to %v", got.Dst, got.Data, want[0].data, want[0].dst)
			}
			mustStep(t, in, at(time.Minute), vrrp.Shutdown{})
			rd = in.Ready()
			if len(rd.Adverts) != 1 || hex.EncodeToString(rd.Adverts[0].Data) != hex.EncodeToString(want[1].data) {
				t.Errorf("shutdown advert:\n got %x\nwant %x", rd.Adverts, want[1].data)
			}
		})
	}
}

// A vigil backup (192.0.2.2 or fe80::2, priority 100) accepts keepalived's
// adverts: the master's resets its down timer, the resignation sets it to
// Skew_Time.
func TestKeepalivedAdvertsAccepted(t *testing.T) {
	caps := captures(t)
	for name, c := range keepalivedConfigs() {
		t.Run(name, func(t *testing.T) {
			me := netip.MustParseAddr("192.0.2.2")
			if c.Family == inet.IPv6 || c.SrcAddr.Is6() {
				me = netip.MustParseAddr("fe80::2")
			}
			kaddr := c.SrcAddr
			c.SrcAddr, c.Priority, c.OldUnicastChecksum = me, 100, false
			if len(c.Peers) > 0 {
				c.Peers = []netip.Addr{kaddr}
				c.CheckUnicastSrc = true
			}
			in := start(t, c, t0)
			in.Ready()
			for k, cp := range caps[name] {
				now := at(time.Duration(k+1) * time.Second)
				if err := in.Step(now, vrrp.Packet{Data: cp.data, Src: cp.src, Dst: cp.dst, TTL: cp.ttl}); err != nil {
					t.Fatalf("advert %d: %v", k, err)
				}
				st := in.Status()
				wantDown := now.Add(vrrp.MasterDownInterval(c.Version, 100, st.MasterAdverInterval))
				if k == 1 {
					wantDown = now.Add(vrrp.SkewTime(c.Version, 100, st.MasterAdverInterval))
				}
				if st.State != vrrp.StateBackup || st.MasterAddr != kaddr || !st.MasterDownAt.Equal(wantDown) {
					t.Errorf("advert %d: %v, master %v, down at %v; want BACKUP, %v, %v",
						k, st.State, st.MasterAddr, st.MasterDownAt.Sub(t0), kaddr, wantDown.Sub(t0))
				}
			}
			if rd := in.Ready(); len(rd.Notes) > 0 && name != "v3-ipv4-unicast-old" {
				t.Errorf("notes: %q", rd.Notes)
			}
		})
	}
}
