package e2e

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
)

// confEscapedHashPass uses `auth_pass ab\#cd`: keepalived 2.2.7's VRRP
// process reads "\#" outside quotes as the start of a comment (its main
// process has turned it into '#' in the copy the VRRP process reads), so
// the password on the wire is "ab". vigil must read the same password or
// the two nodes drop each other's adverts and both become master.
const confEscapedHashPass = `
vrrp_instance VI_1 {
  interface eth0
  state BACKUP
  virtual_router_id 61
  priority @PRIO@
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass @PASS@
  }
  virtual_ipaddress {
    192.0.2.161/24
  }
}
`

// TestInteropEscapedHashPassword runs a vigil node and a keepalived node on
// the same config with auth_pass ab\#cd, both ways round, and checks that
// they authenticate each other (one master, holding the VIP alone, for
// longer than Master_Down_Interval). A control run with passwords that
// differ ("ab#cd" quoted on the vigil side) shows the check can fail: both
// nodes become master.
func TestInteropEscapedHashPassword(t *testing.T) {
	requireVRRPLab(t, "keepalived")
	vip := netip.MustParseAddr("192.0.2.161")
	addrs := map[string][]string{"v": {"192.0.2.1/24"}, "k": {"192.0.2.2/24"}}
	_, hosts, _ := labtest.LAN(t, "iohash", addrs, "v", "k")
	conf := func(prio int, pass string) string {
		return strings.NewReplacer("@PRIO@", strconv.Itoa(prio), "@PASS@", pass).Replace(confEscapedHashPass)
	}
	hold := masterDown(2, 100, time.Second) + 2*time.Second // the backup would have taken over by then
	for _, vigilHigh := range []bool{true, false} {
		name := map[bool]string{true: "vigil-master", false: "keepalived-master"}[vigilHigh]
		t.Run(name, func(t *testing.T) {
			vp, kp := 150, 100
			if !vigilHigh {
				vp, kp = 100, 150
			}
			v := startNode(t, "vigil", hosts["v"], conf(vp, `ab\#cd`))
			k := startNode(t, "keepalived", hosts["k"], conf(kp, `ab\#cd`))
			master := v
			if !vigilHigh {
				master = k
			}
			soleOwner(t, vip, master, hold, 15*time.Second, v, k)
			v.Stop()
			k.Stop()
		})
	}
	t.Run("control-different-passwords", func(t *testing.T) {
		v := startNode(t, "vigil", hosts["v"], conf(150, `"ab#cd"`))
		k := startNode(t, "keepalived", hosts["k"], conf(100, `ab\#cd`))
		waitFor(t, 20*time.Second, "both nodes to hold the VIP (they cannot authenticate each other)", func() bool {
			return v.hasAddr(vip) && k.hasAddr(vip)
		})
		v.Stop()
		k.Stop()
	})
}
