package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"vigil/control"
	"vigil/internal/inet"
	"vigil/netio"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

// beatConf is one VRRPv3 instance at advert_int 50 ms: a master whose
// steady-state adverts go to an advert thread.
const beatConf = `
vrrp_instance VI_1 {
  interface eth0
  state BACKUP
  version 3
  virtual_router_id 51
  priority 100
  advert_int 0.05
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

// index is the position of the first op that starts with prefix, -1 if none.
func index(ops []string, prefix string) int {
	return slices.IndexFunc(ops, func(op string) bool { return strings.HasPrefix(op, prefix) })
}

// TestAdvertThread holds daemon/beat.go's rules on the fake host: a master
// in steady state hands its adverts to a thread and the loop sends none;
// the thread stops before the loop sends anything the engine made out of
// turn, and before the priority 0 advert of a shutdown; a thread that stops
// by itself, or whose source check fails, gives the adverts back to the
// loop; the counters count the thread's adverts.
func TestAdvertThread(t *testing.T) {
	r := startRun(t, beatConf, Options{}, func(h *fakeHost) { h.beatsOn = true })
	from := r.h.mark()
	for range 40 {
		r.advance(50 * time.Millisecond)
		if r.state() == vrrp.StateMaster {
			break
		}
	}
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v, want MASTER", st)
	}
	r.advance(100 * time.Millisecond)
	ops := r.h.took(from)
	start := index(ops, "beat start vrid 51 prio 100 every 50ms")
	if start < 0 {
		t.Fatalf("no advert thread for a master at 50 ms:\n\t%s", strings.Join(ops, "\n\t"))
	}

	// Steady state: 2 s with no advert from the loop, and the status
	// counting the thread's 40.
	from = r.h.mark()
	var before uint64
	r.call(func(time.Time) { before = r.d.snapshot().Instances[0].Counters[control.CounterAdvertsSent] })
	r.advance(2 * time.Second)
	if ops := r.h.took(from); count(ops, "advert vrid 51") != 0 || count(ops, "beat") != 0 {
		t.Fatalf("the loop sent adverts beside its thread:\n\t%s", strings.Join(ops, "\n\t"))
	}
	var is control.InstanceStatus
	r.call(func(time.Time) { is = r.d.snapshot().Instances[0] })
	if got := is.Counters[control.CounterAdvertsSent] - before; !is.AdvertThread || got != 40 {
		t.Fatalf("status: advert_thread %v, %d adverts sent in 2 s at 50 ms, want 40", is.AdvertThread, got)
	}

	// A lower priority master: the answer goes out after the thread is
	// gone, then a new thread takes the beat.
	from = r.h.mark()
	r.h.queue("eth0", inet.IPv4, v3Advert(t, 50))
	r.advance(200 * time.Millisecond)
	ops = r.h.took(from)
	stop, answer, again := index(ops, "beat stop vrid 51"), index(ops, "advert vrid 51 prio 100"), index(ops, "beat start vrid 51")
	if stop < 0 || answer < 0 || again < 0 || !(stop < answer && answer < again) {
		t.Fatalf("want the thread stopped, the answer, a new thread:\n\t%s", strings.Join(ops, "\n\t"))
	}

	// The thread stops by itself (its lease ran out): the loop sends the
	// adverts at its next renewal, then starts another.
	r.h.mu.Lock()
	r.h.beats[len(r.h.beats)-1].dead = true
	r.h.mu.Unlock()
	from = r.h.mark()
	r.advance(beatRenew + 100*time.Millisecond)
	ops = r.h.took(from)
	if i := index(ops, "advert vrid 51 prio 100"); i < 0 {
		t.Fatalf("no advert from the loop after its thread stopped:\n\t%s", strings.Join(ops, "\n\t"))
	}

	// Its source check fails (the address left the host): the loop sends
	// the adverts, and starts no thread for beatRetry.
	r.h.mu.Lock()
	r.h.beats[len(r.h.beats)-1].bad = true
	r.h.mu.Unlock()
	from = r.h.mark()
	r.advance(beatRetry - time.Second)
	ops = r.h.took(from)
	if stop, n := index(ops, "beat stop vrid 51"), count(ops, "advert vrid 51 prio 100"); stop < 0 || n < 100 || index(ops, "beat start") >= 0 {
		t.Fatalf("after a failed source check: want the thread stopped, the loop's adverts (%d) and no new thread:\n\t%s", n, strings.Join(ops[:min(len(ops), 8)], "\n\t"))
	}
	from = r.h.mark()
	r.advance(2 * time.Second)
	if ops := r.h.took(from); index(ops, "beat start vrid 51") < 0 {
		t.Fatalf("no thread %v after the failed source check:\n\t%s", beatRetry+time.Second, strings.Join(ops[:min(len(ops), 8)], "\n\t"))
	}

	// Shutdown: the thread goes before the priority 0 advert.
	from = r.h.mark()
	r.stop()
	ops = r.h.took(from)
	stop, zero := index(ops, "beat stop vrid 51"), index(ops, "advert vrid 51 prio 0")
	if stop < 0 || zero < 0 || stop > zero {
		t.Fatalf("want the thread stopped before the priority 0 advert:\n\t%s", strings.Join(ops, "\n\t"))
	}
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	for k, b := range r.h.beats {
		if b.stopped.IsZero() && !b.dead {
			t.Errorf("thread %d still running after the daemon stopped", k)
		}
	}
}

// TestNoAdvertThread: --no-advert-thread keeps every advert on the loop.
func TestNoAdvertThread(t *testing.T) {
	r := startRun(t, beatConf, Options{NoAdvertThread: true}, func(h *fakeHost) { h.beatsOn = true })
	r.advance(2 * time.Second)
	if st := r.state(); st != vrrp.StateMaster {
		t.Fatalf("state %v, want MASTER", st)
	}
	from := r.h.mark()
	r.advance(time.Second)
	ops := r.h.took(from)
	if n := count(ops, "advert vrid 51 prio 100"); n < 19 || index(ops, "beat") >= 0 {
		t.Fatalf("%d adverts from the loop in 1 s at 50 ms, want 20, and no thread:\n\t%s", n, strings.Join(ops, "\n\t"))
	}
}

// v3Advert is a VRRPv3 advert at 50 ms for VRID 51 with the VIP
// 192.0.2.100 from another router, 192.0.2.2, at prio.
func v3Advert(t *testing.T, prio uint8) netio.Packet {
	t.Helper()
	a := wire.Advert{Version: 3, Type: wire.TypeAdvertisement, VRID: 51, Priority: prio, Interval: 5,
		Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	src, dst := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("224.0.0.18")
	data, err := a.Marshal(src, dst, wire.ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	return netio.Packet{Data: data, Src: src, Dst: dst, TTL: 255}
}
