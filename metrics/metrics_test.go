package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"vigil/control"
)

func TestCollectorExportsSnapshot(t *testing.T) {
	snap := control.Status{Version: "t", ConfigFile: "/k.conf", Instances: []control.InstanceStatus{{
		Name: "VI_1", Interface: "eth0", VRID: 51, State: "MASTER", Priority: 90, BasePriority: 100,
		VIPs: []string{"192.0.2.100/32"}, Counters: map[string]uint64{"drop_bad_ttl": 3},
	}}, Services: []control.ServiceStatus{{Name: "192.0.2.100:80/tcp", Active: true, Quorum: true,
		RealServers: []control.RealStatus{{Addr: "198.51.100.1:80", Weight: 2, Up: true}}}}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(func() control.Status { return snap }))
	want := `
# HELP vigil_vrrp_state 1 for the state the VRRP instance is in, 0 for the others.
# TYPE vigil_vrrp_state gauge
vigil_vrrp_state{instance="VI_1",interface="eth0",state="BACKUP",vrid="51"} 0
vigil_vrrp_state{instance="VI_1",interface="eth0",state="FAULT",vrid="51"} 0
vigil_vrrp_state{instance="VI_1",interface="eth0",state="INIT",vrid="51"} 0
vigil_vrrp_state{instance="VI_1",interface="eth0",state="MASTER",vrid="51"} 1
# HELP vigil_vrrp_events_total VRRP events by kind: adverts sent and received, packets dropped by reason, transitions.
# TYPE vigil_vrrp_events_total counter
vigil_vrrp_events_total{event="drop_bad_ttl",instance="VI_1",interface="eth0",vrid="51"} 3
# HELP vigil_real_server_weight Weight the scheduler gives the real server.
# TYPE vigil_real_server_weight gauge
vigil_real_server_weight{real_server="198.51.100.1:80",virtual_server="192.0.2.100:80/tcp"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_vrrp_state", "vigil_vrrp_events_total", "vigil_real_server_weight"); err != nil {
		t.Fatal(err)
	}
}
