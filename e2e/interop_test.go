package e2e

import (
	"net/netip"
	"testing"
	"time"

	"vigil/internal/labtest"
)

// An interop case is one keepalived.conf used, as it is, by a vigil node
// and a keepalived node: only the priority and the unicast addresses
// differ between the two.
type interopCase struct {
	name     string
	prefix   string
	conf     string
	vip      netip.Addr
	addrs    map[string][]string // host -> eth0 addresses
	src      map[string]string   // host -> unicast_src_ip
	interval time.Duration
	version  int
}

const confV2MulticastPass = `
global_defs {
  router_id @SRC@
}
vrrp_instance VI_1 {
  interface eth0
  state BACKUP
  virtual_router_id 51
  priority @PRIO@
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

const confV3Unicast = `
global_defs {
  vrrp_version 3
}
vrrp_instance VI_2 {
  interface eth0
  state BACKUP
  virtual_router_id 52
  priority @PRIO@
  advert_int 0.1
  unicast_src_ip @SRC@
  unicast_peer {
    @PEER@
  }
  virtual_ipaddress {
    198.51.100.100/24
  }
}
`

const confV3IPv6 = `
vrrp_instance VI_6 {
  interface eth0
  state BACKUP
  virtual_router_id 56
  version 3
  priority @PRIO@
  advert_int 0.5
  virtual_ipaddress {
    2001:db8::100/64
  }
}
`

var interopCases = []interopCase{
	{
		name: "v2-multicast-pass", prefix: "iov2", conf: confV2MulticastPass, vip: netip.MustParseAddr("192.0.2.100"),
		addrs:    map[string][]string{"v": {"192.0.2.1/24"}, "k": {"192.0.2.2/24"}},
		src:      map[string]string{"v": "192.0.2.1", "k": "192.0.2.2"},
		interval: time.Second, version: 2,
	},
	{
		name: "v3-unicast-100ms", prefix: "iov3u", conf: confV3Unicast, vip: netip.MustParseAddr("198.51.100.100"),
		addrs:    map[string][]string{"v": {"198.51.100.1/24"}, "k": {"198.51.100.2/24"}},
		src:      map[string]string{"v": "198.51.100.1", "k": "198.51.100.2"},
		interval: 100 * time.Millisecond, version: 3,
	},
	{
		name: "v3-ipv6", prefix: "iov36", conf: confV3IPv6, vip: netip.MustParseAddr("2001:db8::100"),
		addrs:    map[string][]string{"v": {"2001:db8::1/64"}, "k": {"2001:db8::2/64"}},
		src:      map[string]string{"v": "", "k": ""},
		interval: 500 * time.Millisecond, version: 3,
	},
}

// masterDown is RFC 5798's Master_Down_Interval for a backup of priority
// prio: 3 × interval + Skew_Time.
func masterDown(version int, prio int, interval time.Duration) time.Duration {
	skew := time.Duration(256-prio) * time.Second / 256
	if version == 3 {
		skew = time.Duration(256-prio) * interval / 256
	}
	return 3*interval + skew
}

// TestInteropWithKeepalived runs a vigil node and a keepalived 2.2.7 node on
// the same keepalived.conf and checks, both ways round, that the higher
// priority is elected, that the backup takes over within
// Master_Down_Interval + one advert interval when the master's link is cut,
// and that the master preempts back when the link heals.
func TestInteropWithKeepalived(t *testing.T) {
	requireVRRPLab(t, "keepalived")
	for _, tc := range interopCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, hosts, ports := labtest.LAN(t, tc.prefix, tc.addrs, "v", "k")
			for _, vigilHigh := range []bool{true, false} {
				name := "vigil-master"
				if !vigilHigh {
					name = "keepalived-master"
				}
				t.Run(name, func(t *testing.T) {
					vp, kp := 150, 100
					if !vigilHigh {
						vp, kp = 100, 150
					}
					v := startNode(t, "vigil", hosts["v"], confFor(tc.conf, vp, tc.src["v"], tc.src["k"]))
					k := startNode(t, "keepalived", hosts["k"], confFor(tc.conf, kp, tc.src["k"], tc.src["v"]))
					master, backup, mport := v, k, ports["v"]
					if !vigilHigh {
						master, backup, mport = k, v, ports["k"]
					}
					// Election: the higher priority holds the VIP alone.
					soleOwner(t, tc.vip, master, 5*tc.interval, 10*time.Second+5*tc.interval, v, k)

					// Cut the master's link: the backup must take over within
					// Master_Down_Interval + one advert interval.
					bound := masterDown(tc.version, 100, tc.interval) + tc.interval
					lab := hosts["v"].Lab()
					if err := lab.Cut(mport); err != nil {
						t.Fatal(err)
					}
					took := waitFor(t, 10*bound, "the backup to take the VIP after the master's link was cut", func() bool { return backup.hasAddr(tc.vip) })
					t.Logf("%s: takeover by %s %v after the cut (bound %v)", tc.name, backup.Kind, took.Round(time.Millisecond), bound)
					if took > bound {
						t.Errorf("takeover took %v, more than Master_Down_Interval + advert interval = %v", took, bound)
					}
					// Heal: the higher priority preempts back and holds alone.
					if err := lab.Heal(mport); err != nil {
						t.Fatal(err)
					}
					soleOwner(t, tc.vip, master, 5*tc.interval, 10*time.Second+10*tc.interval, v, k)
					v.Stop()
					k.Stop()
				})
			}
		})
	}
}
