package daemon

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"vigil/vrrp"
)

// footprintConfig is bench/footprint.sh's configuration of n masters
// (VRRPv3, advert_int 1, one VIP each), on the fake host's two interfaces:
// VRIDs 1-250 over IPv4 and over IPv6 on each.
func footprintConfig(n int) string {
	var b strings.Builder
	for k := 0; k < n; k++ {
		ifi, fam, vrid := k/500, k/250%2, k%250+1
		vip := fmt.Sprintf("198.51.%d.%d/24", 100+ifi, vrid)
		if fam == 1 {
			vip = fmt.Sprintf("2001:db8:0:%d::%x/64", ifi, vrid)
		}
		fmt.Fprintf(&b, "vrrp_instance VI_%d {\n  interface eth%d\n  state BACKUP\n  virtual_router_id %d\n  version 3\n  priority 150\n  advert_int 1\n  virtual_ipaddress {\n    %s\n  }\n}\n", k, ifi, vrid, vip)
	}
	return b.String()
}

// TestHeapPerInstance bounds what the daemon keeps per VRRP instance once
// it runs (issue #7): the live heap after a collection, 1,000 masters that
// have sent their adverts and gratuitous ARPs, against the heap before the
// daemon was made. It covers all of an instance's state: the loaded
// config, the instance spec, the engine, the daemon's tables and buffers.
// Measured: 3,998 bytes with the VIPs in a one-entry map, 3,607-3,630
// with them in a slice, 3,404-3,422 with vrrp.Config's and
// vrrp.Instance's one-byte fields grouped (Instance in the 1,024-byte
// size class instead of 1,152), 3,247-3,267 with the config's words
// copied out of the file's text (config.keep), 3,216-3,234 without the
// spec's copy of the family (392 -> 384 bytes, a size class down); the
// bound is there so that a change that
// adds per-instance memory shows here rather than in bench/footprint.sh.
func TestHeapPerInstance(t *testing.T) {
	const n = 1000
	conf := footprintConfig(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l := newLab(t, conf)
	l.advance(10 * time.Second) // masters, and the delayed GARPs sent
	masters := 0
	for _, in := range l.d.insts {
		if in.e.State() == vrrp.StateMaster {
			masters++
		}
	}
	if len(l.d.insts) != n || masters != n {
		t.Fatalf("%d instances, %d masters, want %d of each", len(l.d.insts), masters, n)
	}
	l.h.mu.Lock()
	l.h.ops = nil // the fake host's record, not the daemon's memory
	l.h.mu.Unlock()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(l)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("%d bytes of live heap per instance (%d instances)", per, n)
	if per > 3400 {
		t.Errorf("the daemon keeps %d bytes of heap per VRRP instance, want at most 3400", per)
	}
}
