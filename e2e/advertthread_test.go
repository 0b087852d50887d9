package e2e

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"vigil/control"
	"vigil/internal/inet"
	"vigil/internal/labtest"
	"vigil/netio"
)

// confAdvertThread is one VRRPv3 instance at advert_int 10 ms: a vigil
// master's steady-state adverts go out from its advert thread.
const confAdvertThread = `
vrrp_instance VI_T {
  interface eth0
  state BACKUP
  version 3
  virtual_router_id 61
  priority @PRIO@
  advert_int 0.01
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

// heard is an advert seen on the wire.
type heard struct {
	at   time.Time
	src  netip.Addr
	prio uint8
}

// TestAdvertThreadWithKeepalived runs a vigil master at advert_int 10 ms
// beside a keepalived 2.2.7 backup, whose Master_Down_Interval is 34 ms:
// the adverts of vigil's advert thread must never leave it a gap that long.
// Then, with the adverts watched from keepalived's side: a new priority by
// reload goes out at once and the thread takes the new beat; a priority
// below keepalived's hands it the VIP and vigil's thread stops; a priority
// above it takes the VIP back; and at the end (SIGTERM) the priority 0
// advert is the last vigil sends, with no advert of the beat after it.
func TestAdvertThreadWithKeepalived(t *testing.T) {
	requireVRRPLab(t, "keepalived")
	_, hosts, _ := labtest.LAN(t, "advth", map[string][]string{"v": {"192.0.2.1/24"}, "k": {"192.0.2.2/24"}}, "v", "k")
	vAddr := netip.MustParseAddr("192.0.2.1")

	// Every advert on keepalived's link, from its own namespace.
	var c *netio.Conn
	if err := hosts["k"].Do(func() (err error) {
		c, err = netio.Listen("eth0", inet.IPv4, netio.Options{Multicast: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []heard
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			p, err := c.ReadPacket(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil || len(p.Data) < 3 || p.Data[1] != 61 {
				continue
			}
			mu.Lock()
			seen = append(seen, heard{time.Now(), p.Src, p.Data[2]})
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	// fromVigil returns vigil's adverts seen since from.
	fromVigil := func(from time.Time) []heard {
		mu.Lock()
		defer mu.Unlock()
		var out []heard
		for _, h := range seen {
			if h.src == vAddr && !h.at.Before(from) {
				out = append(out, h)
			}
		}
		return out
	}

	v := startNode(t, "vigil", hosts["v"], confFor(confAdvertThread, 150, "", ""))
	k := startNode(t, "keepalived", hosts["k"], confFor(confAdvertThread, 100, "", ""))
	// keepalived takes over if vigil's adverts stop for 34 ms.
	soleOwner(t, pairVIP, v, 3*time.Second, 10*time.Second, v, k)
	inst := func() control.InstanceStatus {
		t.Helper()
		s, err := v.Status()
		if err != nil || len(s.Instances) != 1 {
			t.Fatalf("status: %v %+v", err, s)
		}
		return s.Instances[0]
	}
	waitFor(t, 5*time.Second, "vigil's advert thread", func() bool { return inst().AdvertThread })
	before, from := inst().Counters[control.CounterAdvertsSent], time.Now()
	time.Sleep(2 * time.Second)
	is, on := inst(), fromVigil(from)
	sent := is.Counters[control.CounterAdvertsSent] - before
	if !is.AdvertThread || sent < 150 || sent > 250 {
		t.Fatalf("status: advert_thread %v, %d adverts sent in 2 s at 10 ms", is.AdvertThread, sent)
	}
	if len(on) < 150 {
		t.Fatalf("keepalived's link saw %d of vigil's adverts in 2 s", len(on))
	}
	var gap time.Duration
	for k := 1; k < len(on); k++ {
		gap = max(gap, on[k].at.Sub(on[k-1].at))
	}
	t.Logf("advert thread: %d adverts counted, %d seen in 2 s, longest gap %v", sent, len(on), gap.Round(time.Microsecond))

	// A new priority: its first advert goes out with the reload, and the
	// thread takes over again at 120.
	from = time.Now()
	if ok, errs, _ := v.reload(t, confFor(confAdvertThread, 120, "", ""), "the reload to priority 120", 10*time.Second); !ok {
		t.Fatalf("reload: %v", errs)
	}
	waitFor(t, 5*time.Second, "adverts at priority 120 and the thread back", func() bool {
		is := inst()
		on := fromVigil(from)
		return is.AdvertThread && is.Priority == 120 && len(on) > 10 && on[len(on)-1].prio == 120
	})
	time.Sleep(300 * time.Millisecond)
	on = fromVigil(from)
	first := -1
	for k, h := range on {
		if h.prio == 120 && first < 0 {
			first = k
		}
		if first >= 0 && h.prio != 120 {
			t.Fatalf("an advert at priority %d after the first at 120 (the old beat went on)", h.prio)
		}
	}
	soleOwner(t, pairVIP, v, time.Second, 5*time.Second, v, k)

	// Below keepalived's priority: keepalived preempts, vigil's thread stops.
	if ok, errs, _ := v.reload(t, confFor(confAdvertThread, 90, "", ""), "the reload to priority 90", 10*time.Second); !ok {
		t.Fatalf("reload: %v", errs)
	}
	soleOwner(t, pairVIP, k, time.Second, 5*time.Second, v, k)
	if is := inst(); is.State != "BACKUP" || is.AdvertThread {
		t.Fatalf("vigil below keepalived: state %s, advert_thread %v", is.State, is.AdvertThread)
	}
	if on := fromVigil(time.Now().Add(-500 * time.Millisecond)); len(on) != 0 {
		t.Fatalf("vigil's backup sent %d adverts in the last 500 ms", len(on))
	}

	// Above it again: vigil preempts, and its thread comes back.
	if ok, errs, _ := v.reload(t, confFor(confAdvertThread, 150, "", ""), "the reload to priority 150", 10*time.Second); !ok {
		t.Fatalf("reload: %v", errs)
	}
	soleOwner(t, pairVIP, v, time.Second, 5*time.Second, v, k)
	waitFor(t, 5*time.Second, "vigil's advert thread again", func() bool { return inst().AdvertThread })

	// SIGTERM: the priority 0 advert is vigil's last.
	from = time.Now()
	v.Stop()
	waitFor(t, 5*time.Second, "keepalived to take the VIP after vigil stopped", func() bool { return k.hasAddr(pairVIP.Unmap()) })
	time.Sleep(200 * time.Millisecond)
	on = fromVigil(from)
	zero := -1
	for k, h := range on {
		if h.prio == 0 {
			zero = k
			break
		}
	}
	if zero < 0 {
		t.Fatalf("no priority 0 advert from vigil after SIGTERM (%d adverts)", len(on))
	}
	if zero != len(on)-1 {
		t.Fatalf("%d adverts from vigil after its priority 0 advert: %+v", len(on)-1-zero, on[zero:])
	}
}
