package daemon

import (
	"net/netip"
	"testing"
	"time"

	"vigil/lb"
)

// TestPeriodicTickOnlyWithWork: the 2 s tick stops when the configuration
// gives it nothing to do and comes back with a DR service or a
// scheduling setting.
func TestPeriodicTickOnlyWithWork(t *testing.T) {
	tk := time.NewTicker(time.Millisecond)
	defer tk.Stop()
	d := &Daemon{periodic: periodicTick{t: realTicker{tk}, on: true}}
	fired := func() bool {
		select {
		case <-tk.C: // drop a tick already queued
		default:
		}
		select {
		case <-tk.C:
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	}
	d.setPeriodic()
	if d.periodic.on || fired() {
		t.Fatal("VRRP only: the tick still runs")
	}
	nat := lb.ServiceConfig{Proto: lb.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80, Method: lb.NAT, Scheduler: "rr"}
	d.bal = &balancer{lbConfig: lbConfig{specs: []lb.ServiceConfig{nat}}}
	d.setPeriodic()
	if d.periodic.on {
		t.Fatal("a NAT service with rr gives the tick work")
	}
	wlc := nat
	wlc.Scheduler = ""
	d.bal.specs = []lb.ServiceConfig{wlc}
	d.setPeriodic()
	if !d.periodic.on {
		t.Fatal("a service with the default scheduler (wlc: connection counts): the tick does not run")
	}
	d.bal.specs = []lb.ServiceConfig{nat}
	d.setPeriodic()
	dr := nat
	dr.Method = lb.DR
	d.bal.specs = append(d.bal.specs, dr)
	d.setPeriodic()
	if !d.periodic.on {
		t.Fatal("a DR service (real servers' MACs): the tick does not run")
	}
	d.bal = nil
	d.setPeriodic()
	if d.periodic.on {
		t.Fatal("the DR service went away, the tick stayed")
	}
	d.sched.rt = 1
	d.setPeriodic()
	if !d.periodic.on {
		t.Fatal("vrrp_rt_priority (new threads get it on the tick): the tick does not run")
	}
}
