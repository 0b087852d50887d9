package netio

import (
	"bytes"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vigil/internal/beat"
	"vigil/internal/inet"
	"vigil/vrrp/wire"
)

// TestBeat: a Socket's beat puts on the wire what Send would, each
// destination every interval, from the sender thread; Stop ends it for
// good; a source the host does not have fails every send, counted.
func TestBeat(t *testing.T) {
	if !beat.Supported {
		t.Skipf("no sender thread on %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	a, b := twoHosts(t, "niobt")
	ifB, llB := ifaceIn(t, b, "eth0")
	_, llA := ifaceIn(t, a, "eth0")
	v4a, v4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	const ival = 10 * time.Millisecond
	for _, tc := range []struct {
		name string
		fam  inet.Family
		src  netip.Addr
		dsts []netip.Addr
		vip  netip.Addr
	}{
		{"IPv4 multicast", inet.IPv4, v4a, []netip.Addr{wire.GroupV4}, netip.MustParseAddr("192.0.2.100")},
		{"IPv4 two unicast peers", inet.IPv4, v4a, []netip.Addr{v4b, netip.MustParseAddr("192.0.2.3")}, netip.MustParseAddr("192.0.2.100")},
		{"IPv6 multicast", inet.IPv6, llA, []netip.Addr{wire.GroupV6}, netip.MustParseAddr("2001:db8::100")},
		{"IPv6 unicast link-local", inet.IPv6, llA, []netip.Addr{llB}, netip.MustParseAddr("2001:db8::100")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			multicast := tc.dsts[0].IsMulticast()
			s := openIn(t, a, "eth0", tc.fam, Options{Multicast: multicast})
			c := listenIn(t, b, "eth0", tc.fam, Options{Multicast: multicast})
			var payloads [][]byte
			for k, dst := range tc.dsts {
				payloads = append(payloads, advert(t, 3, uint8(51+k), 150, tc.vip, tc.src, dst))
			}
			bt := beatIn(t, a, s, payloads, tc.src, tc.dsts, ival)
			defer bt.Stop()
			time.Sleep(300 * time.Millisecond)
			if err := bt.Stop(); err != nil {
				t.Fatal(err)
			}
			st := bt.State()
			got := drain(t, c, 1)
			// The second peer of the unicast case is no host: b hears
			// one advert a beat.
			heard := 0
			for _, p := range got {
				k := int(p.Advert.VRID) - 51
				if k < 0 || k >= len(payloads) || !bytes.Equal(p.Data, payloads[k]) || p.TTL != 255 || p.Src != tc.src || p.Dst != tc.dsts[k] || p.IfIndex != ifB.Index {
					t.Fatalf("received %+v, not one of the beat's adverts", p.Packet)
				}
				heard++
			}
			beats := st.Sent / uint64(len(payloads))
			if st.Failed != 0 || beats < 10 || beats > 31 {
				t.Fatalf("State %+v: %d beats in 300 ms at 10 ms", st, beats)
			}
			if heard < int(beats) {
				t.Fatalf("b heard %d adverts of %d beats", heard, beats)
			}
			if more := drain(t, c, 0); len(more) != 0 {
				t.Fatalf("%d adverts after Stop", len(more))
			}
		})
	}
	// The beat's sends do not touch the VRRP socket, which the Go
	// runtime's poller watches in the daemon: no EPOLLOUT edge from it per
	// advert (that woke the runtime for every advert the thread sent);
	// and the kernel-built path's socket of its own takes in none of the
	// adverts that come.
	for _, tc := range []struct {
		name     string
		fam      inet.Family
		src, vip netip.Addr
		dsts     []netip.Addr // from b: to a's group, then to a
		group    netip.Addr
	}{
		{"IPv4", inet.IPv4, v4a, netip.MustParseAddr("192.0.2.100"), []netip.Addr{wire.GroupV4, v4a}, wire.GroupV4},
		{"IPv6", inet.IPv6, llA, netip.MustParseAddr("2001:db8::100"), []netip.Addr{wire.GroupV6, llA}, wire.GroupV6},
	} {
		t.Run("the VRRP socket stays quiet, "+tc.name, func(t *testing.T) {
			s := openIn(t, a, "eth0", tc.fam, Options{Multicast: true})
			c := listenIn(t, b, "eth0", tc.fam, Options{Multicast: true})
			ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
			check(t, err)
			defer unix.Close(ep)
			check(t, unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, s.Fd(), &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLET, Fd: int32(s.Fd())}))
			evs := make([]unix.EpollEvent, 4)
			unix.EpollWait(ep, evs, 0) // the first edge: writable from the start
			bt := beatIn(t, a, s, [][]byte{advert(t, 3, 51, 150, tc.vip, tc.src, tc.group)}, tc.src, []netip.Addr{tc.group}, ival)
			time.Sleep(100 * time.Millisecond)
			n, err := unix.EpollWait(ep, evs, 0)
			check(t, err)
			if st := bt.State(); n != 0 || st.Sent < 5 {
				t.Fatalf("%d epoll events on the VRRP socket after %d adverts from the beat", n, st.Sent)
			}
			for _, dst := range tc.dsts {
				sendAdvert(t, c, 52, 100, tc.vip, map[inet.Family]netip.Addr{inet.IPv4: v4b, inet.IPv6: llB}[tc.fam], dst)
				if _, ok := recvWait(t, s, make([]byte, 1500)); !ok {
					t.Fatalf("the VRRP socket did not get b's advert to %v", dst)
				}
				if s.beatFd < 0 {
					continue
				}
				if _, _, err := unix.Recvfrom(s.beatFd, make([]byte, 1500), unix.MSG_DONTWAIT); err != unix.EAGAIN {
					t.Fatalf("the beat's socket received b's advert to %v (%v)", dst, err)
				}
			}
		})
	}
	// A beat whose IPv4 header the thread writes checks its source with
	// Verify: at its start (an address the host does not have is refused)
	// and whenever the caller asks (an address removed since fails).
	t.Run("source checked", func(t *testing.T) {
		s := openIn(t, a, "eth0", inet.IPv4, Options{Multicast: true})
		c := listenIn(t, b, "eth0", inet.IPv4, Options{Multicast: true})
		foreign := netip.MustParseAddr("192.0.2.77")
		if err := a.Do(func() error {
			now := time.Now()
			_, err := s.Beat([][]byte{advert(t, 3, 51, 150, v4a, foreign, wire.GroupV4)}, foreign, []netip.Addr{wire.GroupV4}, ival, now, now.Add(time.Hour))
			return err
		}); err == nil {
			t.Fatal("a beat from an address the host does not have started")
		}
		extra := netip.MustParseAddr("192.0.2.78")
		must[string](t)(a.Run("ip", "addr", "add", extra.String()+"/24", "dev", "eth0"))
		bt := beatIn(t, a, s, [][]byte{advert(t, 3, 51, 150, v4a, extra, wire.GroupV4)}, extra, []netip.Addr{wire.GroupV4}, ival)
		check(t, bt.Verify())
		time.Sleep(50 * time.Millisecond)
		must[string](t)(a.Run("ip", "addr", "del", extra.String()+"/24", "dev", "eth0"))
		if err := bt.Verify(); err == nil {
			t.Fatal("Verify passed a source removed from the host")
		}
		check(t, bt.Stop())
		if got := drain(t, c, 1); len(got) == 0 || got[0].Src != extra {
			t.Fatalf("received %d adverts from the checked source", len(got))
		}
	})
	// The kernel-built path (IPv6 here) checks the source itself, at each
	// send.
	t.Run("source not on the host, kernel-built", func(t *testing.T) {
		s := openIn(t, a, "eth0", inet.IPv6, Options{Multicast: true})
		c := listenIn(t, b, "eth0", inet.IPv6, Options{Multicast: true})
		src := netip.MustParseAddr("fe80::77")
		bt := beatIn(t, a, s, [][]byte{advert(t, 3, 51, 150, netip.MustParseAddr("2001:db8::100"), src, wire.GroupV6)}, src, []netip.Addr{wire.GroupV6}, ival)
		time.Sleep(100 * time.Millisecond)
		check(t, bt.Verify())
		check(t, bt.Stop())
		if st := bt.State(); st.Sent != 0 || st.Failed == 0 || st.Err == 0 {
			t.Fatalf("State %+v from a foreign source", st)
		}
		if got := drain(t, c, 0); len(got) != 0 {
			t.Fatalf("%d adverts from a source the host does not have", len(got))
		}
	})
}

// beatIn starts s's beat in h's namespace (the first Beat of the
// kernel-built path opens a socket), from one interval on, with a lease of
// an hour; stopped when t ends.
func beatIn(t *testing.T, h *netlabHost, s *Socket, payloads [][]byte, src netip.Addr, dsts []netip.Addr, ival time.Duration) *Beat {
	t.Helper()
	var bt *Beat
	check(t, h.Do(func() error {
		now := time.Now()
		var err error
		bt, err = s.Beat(payloads, src, dsts, ival, now.Add(ival), now.Add(time.Hour))
		return err
	}))
	t.Cleanup(func() { bt.Stop() })
	return bt
}
