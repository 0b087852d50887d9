package doctor

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/config"
	"vigil/control"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

// fakeFacts answers Facts from maps.
type fakeFacts struct {
	fw      Firewall
	fwErr   error
	proc    map[string]string
	addrs   map[string][]string // interface ("" = all) -> prefixes
	holders map[string][]string // "iface vip" -> MACs
}

func (f *fakeFacts) Firewall() (Firewall, error) { return f.fw, f.fwErr }

func (f *fakeFacts) Proc(p string) (string, error) {
	if v, ok := f.proc[p]; ok {
		return v, nil
	}
	return "", errors.New("no such file")
}

func (f *fakeFacts) Addrs(ifname string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for name, ps := range f.addrs {
		if ifname != "" && name != ifname {
			continue
		}
		for _, p := range ps {
			out = append(out, netip.MustParsePrefix(p))
		}
	}
	return out, nil
}

func (f *fakeFacts) Holders(ifname string, vip netip.Addr) ([]string, error) {
	return f.holders[ifname+" "+vip.String()], nil
}

func loadConf(t *testing.T, text string) (*config.Config, config.Diagnostics) {
	t.Helper()
	cfg, diags := config.LoadBytes("keepalived.conf", []byte(text), config.Env{})
	if cfg == nil {
		t.Fatalf("config did not load: %v", diags)
	}
	return cfg, diags
}

const confPair = `
vrrp_instance VI_1 {
  interface eth0
  state BACKUP
  virtual_router_id 51
  priority 150
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass s3cr3t
  }
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

var (
	now   = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) // the clock of every unit test
	me    = netip.MustParseAddr("192.0.2.1")
	peer  = netip.MustParseAddr("192.0.2.2")
	alien = netip.MustParseAddr("192.0.2.66")
	vip   = netip.MustParseAddr("192.0.2.100")
)

// drOnly is a director's DR service as its real servers see it: no
// vrrp_instance.
const drOnly = `virtual_server 198.51.100.100 80 {
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server 198.51.100.11 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`

var natOnly = strings.Replace(strings.Replace(drOnly, "lb_kind DR", "lb_kind NAT", 1), "198.51.100.100", "192.0.2.100", 1)

// realServerFacts is DR real server 198.51.100.11 on eth1 (not a VRRP
// interface), with arp_ignore/arp_announce all set to arp, and the VIP on
// lo or not.
func realServerFacts(arp string, vip bool) *fakeFacts {
	f := &fakeFacts{addrs: map[string][]string{"eth1": {"198.51.100.11/24"}, "lo": {"127.0.0.1/8"}}}
	if vip {
		f.addrs["lo"] = append(f.addrs["lo"], "198.51.100.100/32")
	}
	announce := map[string]string{"0": "0", "1": "2"}[arp]
	f.proc = map[string]string{
		"net/dev":                          "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes\n    lo: 0 0 0 0 0 0 0 0 0\n  eth1: 0 0 0 0 0 0 0 0 0",
		"sys/net/ipv4/conf/all/arp_ignore": arp, "sys/net/ipv4/conf/eth1/arp_ignore": arp,
		"sys/net/ipv4/conf/all/arp_announce": announce, "sys/net/ipv4/conf/eth1/arp_announce": announce,
	}
	return f
}

func hostFacts() *fakeFacts {
	return &fakeFacts{addrs: map[string][]string{"eth0": {"192.0.2.1/24"}, "lo": {"127.0.0.1/8"}}}
}

// procFacts is hostFacts whose /proc holds proc (path below /proc ->
// content).
func procFacts(proc map[string]string) *fakeFacts {
	f := hostFacts()
	f.proc = proc
	return f
}

// inst is a status instance with counters.
func inst(state string, counters map[string]uint64) control.InstanceStatus {
	return control.InstanceStatus{Name: "VI_1", Interface: "eth0", VRID: 51, Version: 2, Family: "ipv4", State: state,
		Priority: 150, BasePriority: 150, AdvertInterval: control.Duration(time.Second), VIPs: []string{"192.0.2.100/24"},
		Since: now.Add(-time.Minute), Reason: "master down timer expired", Cause: vrrp.CauseMasterDown.String(), Counters: counters}
}

func status(is ...control.InstanceStatus) *control.Status {
	return &control.Status{Version: "test", PID: 1, Started: now.Add(-time.Hour), Instances: is}
}

func heard(src netip.Addr, vrid uint8, prio uint8, n uint64) Heard {
	return Heard{Version: 2, VRID: vrid, Src: src, Adverts: n, Priority: prio, Interval: 1, NAddrs: 1, MAC: "02:00:00:00:00:02"}
}

func decoded(h Heard, pass string, vips ...netip.Addr) Heard {
	h.Decoded, h.Addrs, h.AuthType, h.AuthData = true, vips, wire.AuthPass, wire.Password(pass)
	return h
}

func capt(wireH, delivered []Heard) map[string]*Capture {
	return map[string]*Capture{"eth0": {Interface: "eth0", Duration: 3 * time.Second, Wire: wireH, Delivered: delivered}}
}

// codes returns "CODE/severity" of every finding, sorted.
func codes(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Code+"/"+f.Severity.String())
	}
	slices.Sort(out)
	return out
}

func TestChecks(t *testing.T) {
	cfg, _ := loadConf(t, confPair)
	nftDrop := Firewall{NftJSON: []byte(nftInputDrop), NftText: []byte(nftInputDropText)}
	tests := []struct {
		name  string
		check func(*Input) []Finding
		in    func() *Input
		want  []string
		// text must appear in some finding (summary or evidence).
		text string
	}{
		{"daemon/none", checkDaemon, func() *Input { return &Input{StatusErr: "no vigil is running"} }, []string{"VD001/info"}, "no vigil is running"},
		{"daemon/stalled", checkDaemon, func() *Input { return &Input{StatusErr: "i/o timeout", StatusTimeout: true} }, []string{"VD002/crit"}, "stopped"},
		{"daemon/ok", checkDaemon, func() *Input { return &Input{Status: status()} }, nil, ""},

		{"firewall/input drop", checkFirewall, func() *Input {
			f := hostFacts()
			f.fw = nftDrop
			return &Input{Config: cfg, Facts: f}
		}, []string{"VD101/crit"}, `iifname "eth0" ip protocol vrrp drop`},
		{"firewall/none", checkFirewall, func() *Input { return &Input{Config: cfg, Facts: hostFacts()} }, []string{"VD101/ok"}, ""},
		{"firewall/iptables policy", checkFirewall, func() *Input {
			f := hostFacts()
			f.fw = Firewall{IptablesSave: []byte("*filter\n:INPUT DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")}
			return &Input{Config: cfg, Facts: f}
		}, []string{"VD101/crit"}, "policy drop"},
		{"firewall/unreadable", checkFirewall, func() *Input {
			f := hostFacts()
			f.fwErr = errors.New("nft: permission denied")
			return &Input{Config: cfg, Facts: f}
		}, []string{"VD101/info"}, "permission denied"},

		{"delivery/filtered in", checkDelivery, func() *Input {
			return &Input{Config: cfg, Facts: hostFacts(), Captures: capt([]Heard{heard(peer, 51, 100, 3)}, nil)}
		}, []string{"VD102/crit"}, "reach eth0 but this host drops them"},
		{"delivery/delivered", checkDelivery, func() *Input {
			h := heard(peer, 51, 100, 3)
			return &Input{Config: cfg, Facts: hostFacts(), Captures: capt([]Heard{h}, []Heard{h})}
		}, nil, ""},
		{"delivery/filtered out", checkDelivery, func() *Input {
			before := status(inst("MASTER", map[string]uint64{"adverts_sent": 10}))
			after := status(inst("MASTER", map[string]uint64{"adverts_sent": 13}))
			return &Input{Config: cfg, Facts: hostFacts(), Status: after, Before: before, Captures: capt(nil, nil)}
		}, []string{"VD103/crit"}, "none leaves eth0"},
		{"delivery/sent and seen", checkDelivery, func() *Input {
			before := status(inst("MASTER", map[string]uint64{"adverts_sent": 10}))
			after := status(inst("MASTER", map[string]uint64{"adverts_sent": 13}))
			return &Input{Config: cfg, Facts: hostFacts(), Status: after, Before: before, Captures: capt([]Heard{heard(me, 51, 150, 3)}, nil)}
		}, nil, ""},

		{"clash/other password and VIPs", checkClash, func() *Input {
			h := heard(alien, 51, 50, 3)
			return &Input{Config: cfg, Facts: hostFacts(), Status: status(inst("MASTER", map[string]uint64{"dropped_auth": 3})),
				Captures: capt([]Heard{h}, []Heard{decoded(h, "other", netip.MustParseAddr("192.0.2.200"))})}
		}, []string{"VD201/crit"}, "192.0.2.66"},
		{"clash/wire only, address count", checkClash, func() *Input {
			h := heard(alien, 51, 50, 3)
			h.NAddrs = 2
			return &Input{Config: cfg, Facts: hostFacts(), Captures: capt([]Heard{h}, nil)}
		}, []string{"VD201/crit"}, "2 virtual addresses, ours are 1"},
		{"clash/same config is a peer", checkClash, func() *Input {
			h := heard(peer, 51, 100, 3)
			return &Input{Config: cfg, Facts: hostFacts(), Captures: capt([]Heard{h}, []Heard{decoded(h, "s3cr3t", vip)})}
		}, []string{"VD201/ok"}, ""},
		{"clash/foreign VRID", checkClash, func() *Input {
			st := status(inst("BACKUP", nil))
			st.Instances[0].ForeignVRIDs = map[int]uint64{7: 12}
			return &Input{Config: cfg, Facts: hostFacts(), Status: st, Captures: capt([]Heard{heard(alien, 7, 100, 3)}, nil)}
		}, []string{"VD201/ok", "VD202/info"}, "VRID 7"},

		{"split brain/two masters", checkSplitBrain, func() *Input {
			h := heard(peer, 51, 100, 3)
			return &Input{Config: cfg, Facts: hostFacts(), Status: status(inst("MASTER", nil)), Captures: capt([]Heard{h}, []Heard{decoded(h, "s3cr3t", vip)})}
		}, []string{"VD301/crit"}, "does not hear this node"},
		{"split brain/without daemon, holding the VIP", checkSplitBrain, func() *Input {
			f := hostFacts()
			f.addrs["eth0"] = append(f.addrs["eth0"], "192.0.2.100/24")
			h := heard(peer, 51, 100, 3)
			return &Input{Config: cfg, Facts: f, Captures: capt([]Heard{h}, nil)}
		}, []string{"VD301/crit"}, "got past this host's firewall"},
		{"split brain/backup hears master", checkSplitBrain, func() *Input {
			h := heard(peer, 51, 200, 3)
			return &Input{Config: cfg, Facts: hostFacts(), Status: status(inst("BACKUP", nil)), Captures: capt([]Heard{h}, []Heard{decoded(h, "s3cr3t", vip)})}
		}, []string{"VD301/ok"}, ""},
		{"split brain/other host answers ARP", checkSplitBrain, func() *Input {
			f := hostFacts()
			f.holders = map[string][]string{"eth0 192.0.2.100": {"02:00:00:00:00:09"}}
			return &Input{Config: cfg, Facts: f, Status: status(inst("MASTER", nil)), Captures: capt(nil, nil)}
		}, []string{"VD302/crit"}, "02:00:00:00:00:09"},
		{"split brain/unicast peer alive", checkSplitBrain, func() *Input {
			c, _ := loadConf(t, strings.Replace(confPair, "advert_int 1", "advert_int 1\n  unicast_src_ip 192.0.2.1\n  unicast_peer {\n    192.0.2.2\n  }", 1))
			f := hostFacts()
			f.holders = map[string][]string{"eth0 192.0.2.100": {"02:00:00:00:00:02"}, "eth0 192.0.2.2": {"02:00:00:00:00:02"}}
			return &Input{Config: c, Facts: f, Status: status(inst("MASTER", nil)), Captures: capt(nil, nil)}
		}, []string{"VD302/crit"}, "unicast peer 192.0.2.2 is alive"},
		{"split brain/short capture, slow adverts", checkSplitBrain, func() *Input {
			c := capt([]Heard{heard(peer, 51, 100, 1)}, nil)
			c["eth0"].Duration = time.Second
			return &Input{Config: cfg, Facts: hostFacts(), Status: status(inst("MASTER", nil)), Captures: c}
		}, []string{"VD301/crit"}, "192.0.2.2"},
		{"split brain/healthy master", checkSplitBrain, func() *Input {
			return &Input{Config: cfg, Facts: hostFacts(), Status: status(inst("MASTER", nil)), Captures: capt(nil, nil)}
		}, []string{"VD302/ok"}, ""},
		{"split brain/priority 0 goodbye is not a master", checkSplitBrain, func() *Input {
			return &Input{Config: cfg, Facts: hostFacts(), Status: status(inst("MASTER", nil)), Captures: capt([]Heard{heard(peer, 51, 0, 1)}, nil)}
		}, []string{"VD302/ok"}, ""},

		{"multicast/lost", checkMulticast, func() *Input {
			f := hostFacts()
			f.holders = map[string][]string{"eth0 192.0.2.100": {"02:00:00:00:00:09"}}
			return &Input{Config: cfg, Facts: f, Status: status(inst("MASTER", map[string]uint64{"adverts_received": 0})), Captures: capt(nil, nil)}
		}, []string{"VD401/crit"}, "unicast_peer"},
		{"multicast/alone is fine", checkMulticast, func() *Input {
			return &Input{Config: cfg, Facts: hostFacts(), Status: status(inst("MASTER", map[string]uint64{"adverts_received": 0})), Captures: capt(nil, nil)}
		}, nil, ""},

		{"drops/still happening", checkDrops, func() *Input {
			return &Input{Config: cfg, Status: status(inst("MASTER", map[string]uint64{"dropped_auth": 9, "dropped_ttl": 2})),
				Before: status(inst("MASTER", map[string]uint64{"dropped_auth": 6, "dropped_ttl": 2}))}
		}, []string{"VD501/warn", "VD503/info"}, "still happening"},
		{"drops/checksum without history", checkDrops, func() *Input {
			return &Input{Config: cfg, Status: status(inst("BACKUP", map[string]uint64{"dropped_checksum": 4, "dropped_interval": 1, "dropped_version": 1, "dropped_vips": 1}))}
		}, []string{"VD504/warn", "VD505/warn", "VD506/warn", "VD507/warn"}, "v3_checksum_as_v2"},
		{"drops/none", checkDrops, func() *Input {
			return &Input{Config: cfg, Status: status(inst("BACKUP", map[string]uint64{"adverts_received": 40}))}
		}, []string{"VD501/ok"}, ""},

		{"stall/handed back", checkStall, func() *Input {
			is := inst("BACKUP", map[string]uint64{"became_master": 1, "released_master": 1})
			is.Reason, is.Cause = "higher priority 200 from 192.0.2.2", vrrp.CauseHigherPriority.String()
			return &Input{Now: now, Config: cfg, Status: status(is)}
		}, []string{"VD602/info"}, "handed back"},
		{"stall/startup election is not a stall", checkStall, func() *Input {
			is := inst("BACKUP", map[string]uint64{"became_master": 1, "released_master": 1})
			is.Reason, is.Cause = "higher priority 200 from 192.0.2.2", vrrp.CauseHigherPriority.String()
			st := status(is)
			st.Started = is.Since.Add(-2 * time.Second)
			return &Input{Now: now, Config: cfg, Status: st}
		}, nil, ""},
		{"stall/took over from a silent master on a starved host", checkStall, func() *Input {
			is := inst("MASTER", nil)
			is.MasterAddr = "192.0.2.2"
			return &Input{Now: now, Config: cfg, Status: status(is), Facts: procFacts(map[string]string{"pressure/cpu": "some avg10=75.00 avg60=50.00 avg300=10.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0"})}
		}, []string{"VD602/info", "VD603/warn"}, "fell silent"},
		{"stall/took over on a BFD session down", checkStall, func() *Input {
			is := inst("MASTER", nil)
			is.Reason, is.Cause = "takeover: BFD session peer to 192.0.2.2 went down (Control Detection Time Expired)", vrrp.CauseBFDTakeover.String()
			return &Input{Now: now, Config: cfg, Status: status(is)}
		}, []string{"VD602/info"}, "BFD session to the master went down"},
		{"stall/busy host alone is information", checkStall, func() *Input {
			return &Input{Now: now, Config: cfg, Status: status(inst("MASTER", nil)), Facts: procFacts(map[string]string{"pressure/cpu": "some avg10=75.00 avg60=50.00 avg300=10.00 total=1"})}
		}, []string{"VD603/info"}, "avg10=75.00"},
		{"stall/loop lag exposed", checkStall, func() *Input {
			return &Input{Now: now, Config: cfg, Status: status(inst("MASTER", map[string]uint64{LoopLagCounter: 3100}))}
		}, []string{"VD604/warn"}, "3.1s late"},

		{"sysctl/vmac rp_filter", checkSysctl, func() *Input {
			c, _ := loadConf(t, strings.Replace(confPair, "interface eth0", "interface eth0\n  use_vmac", 1))
			return &Input{Config: c, Facts: procFacts(map[string]string{
				"sys/net/ipv4/conf/all/rp_filter": "1", "sys/net/ipv4/conf/vrrp.51/rp_filter": "0",
				"sys/net/ipv4/conf/all/arp_ignore": "0", "sys/net/ipv4/conf/eth0/arp_ignore": "1",
			})}
		}, []string{"VD701/warn"}, "net.ipv4.conf.all.rp_filter = 1"},
		{"sysctl/dr real server answers ARP", checkSysctl, func() *Input {
			c, _ := loadConf(t, confPair+`
virtual_server 192.0.2.100 80 {
  lb_algo rr
  lb_kind DR
  protocol TCP
  real_server 192.0.2.1 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`)
			f := hostFacts()
			f.addrs["lo"] = append(f.addrs["lo"], "192.0.2.100/32")
			f.proc = map[string]string{
				"sys/net/ipv4/conf/all/arp_ignore": "0", "sys/net/ipv4/conf/eth0/arp_ignore": "0",
				"sys/net/ipv4/conf/all/arp_announce": "0", "sys/net/ipv4/conf/eth0/arp_announce": "0",
			}
			return &Input{Config: c, Facts: f}
		}, []string{"VD702/warn"}, "bypassing the director"},

		// A DR real server runs no vrrp_instance: the director's config is
		// all it has, and every interface must be looked at.
		{"sysctl/dr real server without vrrp answers ARP", checkSysctl, func() *Input {
			c, _ := loadConf(t, drOnly)
			return &Input{Config: c, Facts: realServerFacts("0", true)}
		}, []string{"VD702/warn"}, "as 198.51.100.11) but answers ARP"},
		{"sysctl/dr real server without vrrp, well set up", checkSysctl, func() *Input {
			c, _ := loadConf(t, drOnly)
			return &Input{Config: c, Facts: realServerFacts("1", true)}
		}, nil, ""},
		{"sysctl/dr real server without the VIP", checkSysctl, func() *Input {
			c, _ := loadConf(t, drOnly)
			return &Input{Config: c, Facts: realServerFacts("1", false)}
		}, []string{"VD704/warn"}, "does not have the VIP 198.51.100.100 on any interface"},
		{"forwarding/NAT with ip_forward 0", checkForwarding, func() *Input {
			c, _ := loadConf(t, natOnly)
			return &Input{Config: c, Facts: procFacts(map[string]string{"sys/net/ipv4/ip_forward": "0", "sys/net/ipv6/conf/all/forwarding": "0"})}
		}, []string{"VD703/warn"}, "net.ipv4.ip_forward = 0"},
		{"forwarding/NAT active with ip_forward 0", checkForwarding, func() *Input {
			c, _ := loadConf(t, natOnly)
			st := status()
			st.Services = []control.ServiceStatus{{Name: "192.0.2.100:80/tcp", Kind: "NAT", Active: true}}
			return &Input{Config: c, Facts: procFacts(map[string]string{"sys/net/ipv4/ip_forward": "0"}), Status: st}
		}, []string{"VD703/crit"}, "every connection times out"},
		{"forwarding/NAT with ip_forward 1", checkForwarding, func() *Input {
			c, _ := loadConf(t, natOnly)
			return &Input{Config: c, Facts: procFacts(map[string]string{"sys/net/ipv4/ip_forward": "1"})}
		}, nil, ""},
		{"forwarding/IPv6 NAT with v6 forwarding 0", checkForwarding, func() *Input {
			c, _ := loadConf(t, strings.NewReplacer("192.0.2.100", "2001:db8::100", "198.51.100.11", "2001:db8::11").Replace(natOnly))
			return &Input{Config: c, Facts: procFacts(map[string]string{"sys/net/ipv4/ip_forward": "0", "sys/net/ipv6/conf/all/forwarding": "0"})}
		}, []string{"VD703/warn"}, "net.ipv6.conf.all.forwarding = 0"},
		{"forwarding/not on a NAT real server", checkForwarding, func() *Input {
			c, _ := loadConf(t, natOnly)
			f := realServerFacts("1", false)
			f.proc["sys/net/ipv4/ip_forward"] = "0"
			return &Input{Config: c, Facts: f}
		}, nil, ""},
		{"forwarding/DR needs none", checkForwarding, func() *Input {
			c, _ := loadConf(t, drOnly)
			return &Input{Config: c, Facts: procFacts(map[string]string{"sys/net/ipv4/ip_forward": "0"})}
		}, nil, ""},
		{"config/unicast_src_ip without peers", checkConfig, func() *Input {
			c, d := loadConf(t, strings.Replace(confPair, "advert_int 1", "advert_int 1\n  unicast_src_ip 192.0.2.1", 1))
			return &Input{Config: c, Diags: d}
		}, []string{"VD802/warn"}, "falls back to multicast"},
		{"config/nopreempt with a peer that is the address owner", checkConfig, func() *Input {
			c, d := loadConf(t, strings.Replace(confPair, "advert_int 1", "advert_int 1\n  nopreempt", 1))
			return &Input{Config: c, Diags: d, Facts: hostFacts(), Captures: capt([]Heard{heard(peer, 51, 255, 3)}, nil)}
		}, []string{"VD801/warn"}, "priority 255"},
		{"config/nopreempt with state MASTER", checkConfig, func() *Input {
			c, d := loadConf(t, strings.Replace(strings.Replace(confPair, "state BACKUP", "state MASTER", 1), "advert_int 1", "advert_int 1\n  nopreempt", 1))
			return &Input{Config: c, Diags: d}
		}, []string{"VD801/warn"}, "nopreempt"},
		{"config/strict no accept", checkConfig, func() *Input {
			c, d := loadConf(t, "global_defs {\n  vrrp_strict\n}\n"+strings.Replace(confPair, "authentication {\n    auth_type PASS\n    auth_pass s3cr3t\n  }\n", "", 1))
			return &Input{Config: c, Diags: d}
		}, []string{"VD803/info"}, "no_accept"},
		{"config/duplicate VRID", checkConfig, func() *Input {
			c, d := loadConf(t, confPair+strings.Replace(strings.Replace(confPair, "VI_1", "VI_2", 1), "192.0.2.100", "192.0.2.101", 1))
			return &Input{Config: c, Diags: d}
		}, []string{"VD804/crit"}, "already used by"},
		{"config/clean", checkConfig, func() *Input {
			c, d := loadConf(t, confPair)
			return &Input{Config: c, Diags: d}
		}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := tc.check(tc.in())
			if got := codes(fs); !slices.Equal(got, tc.want) {
				t.Errorf("codes = %v, want %v\n%s", got, tc.want, dump(fs))
			}
			if tc.text != "" && !slices.ContainsFunc(fs, func(f Finding) bool { return strings.Contains(dumpOne(f), tc.text) }) {
				t.Errorf("no finding mentions %q\n%s", tc.text, dump(fs))
			}
			for _, f := range fs {
				if f.Summary == "" || (f.Problem() && f.Fix == "") {
					t.Errorf("%s has no summary or no fix: %+v", f.Code, f)
				}
			}
		})
	}
}

func dumpOne(f Finding) string {
	return fmt.Sprintf("%s %s %s\n  %s\n  fix: %s", f.Code, f.Severity, f.Summary, strings.Join(f.Evidence, "\n  "), f.Fix)
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(dumpOne(f) + "\n")
	}
	return b.String()
}

// TestEveryCodeIsDocumented keeps docs/doctor.md in step with the checks.
func TestEveryCodeIsDocumented(t *testing.T) {
	doc := readDoc(t)
	for _, c := range Checks() {
		for _, code := range c.Codes {
			if !strings.Contains(doc, "## "+code) {
				t.Errorf("docs/doctor.md has no section \"## %s\" (check %s)", code, c.Name)
			}
		}
	}
}

// TestEveryDropReasonIsKnown: each reason the engine drops an advert for is
// either a finding of checkDrops or deliberately none.
func TestEveryDropReasonIsKnown(t *testing.T) {
	for _, r := range vrrp.DropReasons() {
		inTable := slices.ContainsFunc(dropTable(), func(d dropInfo) bool { return d.reason == r })
		if inTable == slices.Contains(dropsWithoutFinding, r) {
			t.Errorf("drop reason %v: in dropTable %v, in dropsWithoutFinding %v; want exactly one", r, inTable, !inTable)
		}
	}
}

// TestEveryCauseIsKnown: doctor says what every transition cause means, and
// docs/operations.md lists each by the name the status carries.
func TestEveryCauseIsKnown(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range vrrp.Causes() {
		if _, ok := causeKinds[c]; !ok {
			t.Errorf("cause %v is missing from doctor's causeKinds", c)
		}
		if !strings.Contains(string(doc), "| `"+c.String()+"` |") {
			t.Errorf("docs/operations.md has no row for the transition cause %q", c)
		}
	}
}

// TestEveryConfigCodeIsKnown: doctor maps every config diagnostic code to a
// finding, and docs/doctor.md names the code under that finding.
func TestEveryConfigCodeIsKnown(t *testing.T) {
	b, err := os.ReadFile("../docs/doctor.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range config.Codes() {
		vd, ok := configCodes[c]
		if !ok {
			t.Errorf("config code %q is missing from doctor's configCodes", c)
			continue
		}
		_, sec, _ := strings.Cut(doc, "\n## "+vd+"\n")
		sec, _, _ = strings.Cut(sec, "\n## ")
		if !strings.Contains(sec, "`"+string(c)+"`") {
			t.Errorf("docs/doctor.md: section %s does not name the config code %q", vd, c)
		}
	}
}

// TestPreemptDelayIsNotNopreempt: "preempt_delay is incompatible with
// nopreempt" mentions nopreempt but is not the nopreempt finding (VD801);
// matching the text called it that.
func TestPreemptDelayIsNotNopreempt(t *testing.T) {
	cfg, diags := config.LoadBytes("k.conf", []byte(`vrrp_instance VI_1 {
	interface eth0
	state BACKUP
	virtual_router_id 51
	priority 100
	nopreempt
	preempt_delay 5
	virtual_ipaddress { 192.0.2.100/24 }
}
`), config.Env{})
	var got []string
	for _, f := range checkConfig(&Input{Config: cfg, Diags: diags}) {
		if f.Severity >= Warn {
			got = append(got, f.Code)
		}
	}
	if !slices.Equal(got, []string{"VD805"}) {
		t.Errorf("findings %v for preempt_delay with nopreempt, want [VD805]", got)
	}
}
