package netio

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vigil/internal/inet"
	"vigil/internal/labtest"
	"vigil/vrrp/wire"
)

// TestSnifferCountsEveryAdvert: a Sniffer on a third host counts the
// adverts of two routers sharing VRID 51 (a clash), another VRID in
// another version sent by unicast, IPv6, and its own host's adverts, and
// nothing else. (Unicast between two other hosts never reaches it through
// a learning switch, as with any capture.)
func TestSnifferCountsEveryAdvert(t *testing.T) {
	t.Parallel()
	h := lanHosts(t, "niosn", []string{"192.0.2.1/24", "2001:db8::1/64"}, []string{"192.0.2.2/24", "2001:db8::2/64"}, []string{"192.0.2.3/24", "2001:db8::3/64"})
	a, b, c := h[0], h[1], h[2]
	ifA, llA := ifaceIn(t, a, "eth0")
	ifB, _ := ifaceIn(t, b, "eth0")
	ifC, _ := ifaceIn(t, c, "eth0")

	s := openInHost(t, c, func() (*Sniffer, error) { return OpenSniffer("eth0") })
	stop := labtest.Run(t, s.Run)

	a4, b4, c4 := listenIn(t, a, "eth0", inet.IPv4, Options{}), listenIn(t, b, "eth0", inet.IPv4, Options{}), listenIn(t, c, "eth0", inet.IPv4, Options{})
	a6 := listenIn(t, a, "eth0", inet.IPv6, Options{})
	srcA, srcB, srcC := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	vip, vip6 := netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")
	for range 3 {
		sendAdvert(t, a4, 51, 200, vip, srcA, wire.GroupV4)
	}
	for range 2 {
		sendAdvert(t, b4, 51, 100, vip, srcB, wire.GroupV4)
	}
	check(t, b4.Send(advert(t, 2, 7, 100, vip, srcB, srcC), srcB, srcC)) // unicast to the sniffer's host
	sendAdvert(t, a6, 51, 150, vip6, llA, wire.GroupV6)
	sendAdvert(t, c4, 9, 50, vip, srcC, wire.GroupV4) // the sniffer's own host
	// Other traffic is filtered out in the kernel.
	must[string](t)(a.Run("ping", "-c", "2", "-i", "0.2", "192.0.2.3"))
	must[string](t)(a.Run("ping", "-c", "1", "2001:db8::3"))

	want := map[RouterKey]Sighting{
		{3, 51, srcA}: {Adverts: 3, Priority: 200, Interval: 100, Addrs: 1, MAC: ifA.HardwareAddr.String()},
		{3, 51, srcB}: {Adverts: 2, Priority: 100, Interval: 100, Addrs: 1, MAC: ifB.HardwareAddr.String()},
		{2, 7, srcB}:  {Adverts: 1, Priority: 100, Interval: 1, Addrs: 1, MAC: ifB.HardwareAddr.String()},
		{3, 51, llA}:  {Adverts: 1, Priority: 150, Interval: 100, Addrs: 1, MAC: ifA.HardwareAddr.String()},
		{3, 9, srcC}:  {Adverts: 1, Priority: 50, Interval: 100, Addrs: 1, MAC: ifC.HardwareAddr.String()},
	}
	var got map[RouterKey]Sighting
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if got = s.Seen(); cmp.Equal(want, got) {
			break
		}
	}
	cmpAddr := cmp.Comparer(func(x, y netip.Addr) bool { return x == y })
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("Seen (-want +got):\n%s", diff)
	}
	if m := s.Malformed(); m != 0 {
		t.Errorf("Malformed = %d", m)
	}
	wantClash := []Clash{{Family: inet.IPv4, Version: 3, VRID: 51, Sources: []netip.Addr{srcA, srcB}}}
	if diff := cmp.Diff(wantClash, s.Clashes(), cmpAddr); diff != "" {
		t.Errorf("Clashes (-want +got):\n%s", diff)
	}
	stop() // Run returns, without an error, once cancelled
}

// FuzzDecodeAdvert: the sniffer's decoder never panics on a captured frame,
// and what it accepts is IP protocol 112 with at least a VRRP header.
func FuzzDecodeAdvert(f *testing.F) {
	f.Add(unhex(f, goldenNA))
	f.Add(unhex(f, `01005e000012 | 00005e000133 | 0800
		45c00018 00000000 ff700000 c0000201 e0000012
		31339601 0064d371 c0000264`))
	f.Fuzz(func(t *testing.T, b []byte) {
		key, sig, ok := decodeAdvert(b)
		if !ok {
			return
		}
		if !key.Src.IsValid() || len(b) < ethHeaderLen+20+8 || sig.MAC == "" {
			t.Fatalf("accepted % x as %+v %+v", b, key, sig)
		}
	})
}
