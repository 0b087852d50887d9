// Package metrics exposes a running vigil to Prometheus. It is a collector
// over daemon snapshots (the same control.Status document `vigil status`
// prints), so a scrape reads one consistent picture and the daemon keeps no
// second set of counters. The registry is passed in; nothing is global.
package metrics

import (
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"vigil/control"
)

// Collector turns snapshots into metrics.
type Collector struct {
	snapshot func() control.Status

	state, prio, basePrio, masterPrio, vips, counters *prometheus.Desc
	rsUp, rsWeight, vsActive, vsQuorum, info          *prometheus.Desc
}

// States are the VRRP states exported as one-hot vigil_vrrp_state series, so
// alerts can say `vigil_vrrp_state{state="MASTER"} == 1` on two nodes.
var States = []string{"INIT", "BACKUP", "MASTER", "FAULT"}

// New returns a collector that calls snapshot on every scrape.
func New(snapshot func() control.Status) *Collector {
	inst := []string{"instance", "interface", "vrid"}
	rs := []string{"virtual_server", "real_server"}
	return &Collector{
		snapshot:   snapshot,
		info:       prometheus.NewDesc("vigil_info", "vigil build and configuration.", []string{"version", "config_file"}, nil),
		state:      prometheus.NewDesc("vigil_vrrp_state", "1 for the state the VRRP instance is in, 0 for the others.", append(inst, "state"), nil),
		prio:       prometheus.NewDesc("vigil_vrrp_priority", "Effective VRRP priority after tracking.", inst, nil),
		basePrio:   prometheus.NewDesc("vigil_vrrp_base_priority", "Configured VRRP priority.", inst, nil),
		masterPrio: prometheus.NewDesc("vigil_vrrp_master_priority", "Priority of the master last heard (0 if none).", inst, nil),
		vips:       prometheus.NewDesc("vigil_vrrp_virtual_addresses", "Number of virtual addresses configured on the instance.", inst, nil),
		counters:   prometheus.NewDesc("vigil_vrrp_events_total", "VRRP events by kind: adverts sent and received, packets dropped by reason, transitions.", append(inst, "event"), nil),
		vsActive:   prometheus.NewDesc("vigil_virtual_server_active", "1 when this director serves the virtual server (its VRRP instance is MASTER).", []string{"virtual_server"}, nil),
		vsQuorum:   prometheus.NewDesc("vigil_virtual_server_quorum", "1 when the virtual server has its quorum of healthy real servers.", []string{"virtual_server"}, nil),
		rsUp:       prometheus.NewDesc("vigil_real_server_up", "1 when the real server passes its health checks.", rs, nil),
		rsWeight:   prometheus.NewDesc("vigil_real_server_weight", "Weight the scheduler gives the real server.", rs, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.info, c.state, c.prio, c.basePrio, c.masterPrio, c.vips, c.counters, c.vsActive, c.vsQuorum, c.rsUp, c.rsWeight} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, s.Version, s.ConfigFile)
	for _, in := range s.Instances {
		labels := []string{in.Name, in.Interface, itoa(in.VRID)}
		for _, st := range States {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, b2f(strings.EqualFold(in.State, st)), append(labels, st)...)
		}
		ch <- prometheus.MustNewConstMetric(c.prio, prometheus.GaugeValue, float64(in.Priority), labels...)
		ch <- prometheus.MustNewConstMetric(c.basePrio, prometheus.GaugeValue, float64(in.BasePriority), labels...)
		ch <- prometheus.MustNewConstMetric(c.masterPrio, prometheus.GaugeValue, float64(in.MasterPriority), labels...)
		ch <- prometheus.MustNewConstMetric(c.vips, prometheus.GaugeValue, float64(len(in.VIPs)), labels...)
		for name, v := range in.Counters {
			ch <- prometheus.MustNewConstMetric(c.counters, prometheus.CounterValue, float64(v), append(labels, name)...)
		}
	}
	for _, vs := range s.Services {
		ch <- prometheus.MustNewConstMetric(c.vsActive, prometheus.GaugeValue, b2f(vs.Active), vs.Name)
		ch <- prometheus.MustNewConstMetric(c.vsQuorum, prometheus.GaugeValue, b2f(vs.Quorum), vs.Name)
		for _, r := range vs.RealServers {
			ch <- prometheus.MustNewConstMetric(c.rsUp, prometheus.GaugeValue, b2f(r.Up), vs.Name, r.Addr)
			ch <- prometheus.MustNewConstMetric(c.rsWeight, prometheus.GaugeValue, float64(r.Weight), vs.Name, r.Addr)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func itoa(i int) string { return strconv.Itoa(i) }
