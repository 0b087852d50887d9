package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vigil/config"
	"vigil/control"
	"vigil/ctsync"
	"vigil/lb"
	"vigil/vrrp"
)

func TestSyncServices(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.100")
	vip6 := netip.MustParseAddr("2001:db8::100")
	got := syncServices([]lb.ServiceConfig{
		{Proto: lb.TCP, VIP: vip, Port: 80, Method: lb.NAT},
		{Proto: lb.UDP, VIP: vip, Port: 53, Method: lb.FNAT},
		{Proto: lb.SCTP, VIP: vip6, Port: 9, Method: lb.FNAT},
		{Proto: lb.TCP, VIP: vip, Port: 443, Method: lb.DR}, // stateless: not synced
		{Proto: lb.TCP, FwMark: 7, Method: lb.NAT},          // no address to match
	})
	want := []ctsync.Service{{VIP: vip, Proto: 6, Port: 80}, {VIP: vip, Proto: 17, Port: 53}, {VIP: vip6, Proto: 132, Port: 9}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("syncServices (-want +got):\n%s", diff)
	}
}

func TestSyncConfig(t *testing.T) {
	sd := &config.SyncDaemon{Interface: "eth1", Instance: "VI_1", ID: 7, Port: 9000, TTL: 2, MaxLen: 1400,
		Group: netip.MustParseAddr("239.1.1.1"), AuthKey: []byte("0123456789abcdef")}
	multicast := syncConfig(sd, "", vrrp.Config{}, nil)
	if multicast.Group != sd.Group || multicast.Peers != nil || multicast.SyncID != 7 || multicast.Port != 9000 ||
		multicast.TTL != 2 || multicast.MaxLen != 1400 || string(multicast.Key) != "0123456789abcdef" || multicast.Interface != "eth1" {
		t.Errorf("multicast: %+v", multicast)
	}
	src := netip.MustParseAddr("198.51.100.1")
	peer := netip.MustParseAddr("198.51.100.2")
	eng := vrrp.Config{Name: "VI_1", SrcAddr: src, Peers: []netip.Addr{peer}}
	uni := syncConfig(sd, "eth1", eng, nil)
	if uni.Group.IsValid() || len(uni.Peers) != 1 || uni.Peers[0] != peer || uni.Source != src {
		t.Errorf("unicast: %+v", uni)
	}
	// Unicast peers on another interface are not reached through the
	// sync interface: multicast there, as keepalived does.
	if other := syncConfig(sd, "eth0", eng, nil); other.Peers != nil || other.Group != sd.Group || other.Source.IsValid() {
		t.Errorf("unicast instance on another interface: %+v", other)
	}
}

func TestSameSync(t *testing.T) {
	a := &config.SyncDaemon{Pos: config.Pos{Line: 2}, Interface: "eth1", Instance: "VI_1", ID: 1}
	b := *a
	b.Pos.Line = 9
	if !sameSync(a, &b) {
		t.Error("a move in the file is a change")
	}
	b.AuthKey = []byte("0123456789abcdef")
	if sameSync(a, &b) || sameSync(a, nil) || !sameSync(nil, nil) {
		t.Error("a new key, or a removed sync, is not a change")
	}
}

// The sync's source is the director's own address on the interface, never
// an address an instance floats there.
func TestSyncSource(t *testing.T) {
	vip := netip.MustParsePrefix("198.51.100.254/24")
	e, err := vrrp.New(vrrp.Config{VRID: 1, SrcAddr: netip.MustParseAddr("198.51.100.1"), VIPs: []netip.Prefix{vip}}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{insts: []*instance{{spec: &instanceSpec{ifname: "eth1"}, e: e}}}
	lookup := func(string) ([]netip.Prefix, error) {
		return []netip.Prefix{vip, netip.MustParsePrefix("fe80::1/64"), netip.MustParsePrefix("2001:db8:b::1/64"), netip.MustParsePrefix("198.51.100.1/24")}, nil
	}
	if got := d.syncSource("eth1", netip.Addr{}, lookup); got != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("IPv4 source = %v, want 198.51.100.1", got)
	}
	if got := d.syncSource("eth1", netip.MustParseAddr("ff02::81"), lookup); got != netip.MustParseAddr("2001:db8:b::1") {
		t.Errorf("IPv6 source = %v, want 2001:db8:b::1", got)
	}
}

// The hold covers the sync instance and its sync group's other members,
// from the engine's first step.
func TestSyncHeld(t *testing.T) {
	cfg := &config.Config{
		Global:     config.Global{LVSSyncDaemon: &config.SyncDaemon{Instance: "VI_LB"}},
		SyncGroups: []*config.SyncGroup{{Name: "G", Members: []string{"VI_LB", "VI_LB6"}}, {Name: "H", Members: []string{"VI_X"}}},
	}
	held := syncHeld(cfg)
	if !held["VI_LB"] || !held["VI_LB6"] || held["VI_X"] || len(held) != 2 {
		t.Errorf("held = %v, want VI_LB and VI_LB6", held)
	}
	d := &Daemon{}
	d.syncPrepare(cfg)
	if c := d.syncEngineConfig(built{spec: &instanceSpec{name: "VI_LB6"}}); !c.NoPreempt {
		t.Error("a held instance starts preempting")
	}
	if c := d.syncEngineConfig(built{spec: &instanceSpec{name: "VI_X"}}); c.NoPreempt {
		t.Error("an instance the sync does not follow starts held")
	}
	if syncHeld(&config.Config{}) != nil {
		t.Error("no lvs_sync_daemon holds something")
	}
}

// TestAddSyncEnginePeers: a configured unicast peer the engine has heard
// keeps Configured (it was lost: the tuple assignment stored the peer
// before setting the flag), and a peer only the engine knows is added.
func TestAddSyncEnginePeers(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	seen := now.Add(-time.Second)
	out := control.SyncStatus{Peers: []control.SyncPeer{{Addr: "192.0.2.1", Configured: true}, {Addr: "192.0.2.3", Configured: true}}}
	addSyncEngine(&out, ctsync.Status{Peers: []ctsync.PeerStatus{
		{Addr: netip.MustParseAddr("192.0.2.1"), Master: true, LastSeen: seen, Epoch: 7},
		{Addr: netip.MustParseAddr("192.0.2.9"), LastSeen: seen},
	}}, now)
	want := []control.SyncPeer{
		{Addr: "192.0.2.1", Configured: true, Master: true, LastSeen: seen, Age: control.Duration(time.Second), Epoch: 7},
		{Addr: "192.0.2.3", Configured: true},
		{Addr: "192.0.2.9", LastSeen: seen, Age: control.Duration(time.Second)},
	}
	if diff := cmp.Diff(want, out.Peers); diff != "" {
		t.Errorf("peers (-want +got):\n%s", diff)
	}
}
