package netio

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vigil/internal/inet"
	"vigil/vrrp/wire"
)

// openIn opens a Socket in h's namespace, closed when t ends.
func openIn(t *testing.T, h *netlabHost, ifname string, fam inet.Family, opts Options) *Socket {
	t.Helper()
	return openInHost(t, h, func() (*Socket, error) { return OpenSocket(ifname, fam, opts) })
}

// recvWait polls s until a packet arrives or 3 s pass.
func recvWait(t *testing.T, s *Socket, buf []byte) (Packet, bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(s.Fd()), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 100); err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		p, err := s.Recv(buf)
		if err == ErrWouldBlock {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return p, true
	}
	return Packet{}, false
}

// TestSocketAgainstConn: a Socket and a Conn see the same packets with the
// same receive information, both ways, for each family and cast; and the
// Socket's steady-state Send and Recv allocate nothing.
func TestSocketAgainstConn(t *testing.T) { // not parallel: AllocsPerRun
	a, b := twoHosts(t, "niosk")
	ifA, llA := ifaceIn(t, a, "eth0")
	ifB, llB := ifaceIn(t, b, "eth0")
	v4a, v4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")

	for _, tc := range []struct {
		name             string
		fam              inet.Family
		srcA, srcB, dstA netip.Addr // dstA: where b sends to reach a (and a to reach b, mirrored)
		dstB             netip.Addr
		vip              netip.Addr
	}{
		{"IPv4 multicast", inet.IPv4, v4a, v4b, wire.GroupV4, wire.GroupV4, netip.MustParseAddr("192.0.2.100")},
		{"IPv4 unicast", inet.IPv4, v4a, v4b, v4a, v4b, netip.MustParseAddr("192.0.2.100")},
		{"IPv6 multicast", inet.IPv6, llA, llB, wire.GroupV6, wire.GroupV6, netip.MustParseAddr("2001:db8::100")},
		{"IPv6 unicast link-local", inet.IPv6, llA, llB, llA, llB, netip.MustParseAddr("2001:db8::100")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			multicast := tc.dstA.IsMulticast()
			s := openIn(t, a, "eth0", tc.fam, Options{Multicast: multicast, ReadBuffer: 1 << 20})
			c := listenIn(t, b, "eth0", tc.fam, Options{Multicast: multicast})

			// Socket → Conn.
			msg := advert(t, 3, 51, 150, tc.vip, tc.srcA, tc.dstB)
			check(t, s.Send(msg, tc.srcA, tc.dstB))
			got := drain(t, c, 1)
			if len(got) != 1 || !bytes.Equal(got[0].Data, msg) || got[0].TTL != 255 || got[0].Src != tc.srcA || got[0].Dst != tc.dstB || got[0].IfIndex != ifB.Index {
				t.Fatalf("Conn received %+v, want % x from %v to %v TTL 255 on %d", got, msg, tc.srcA, tc.dstB, ifB.Index)
			}
			// Conn → Socket.
			msg = advert(t, 3, 52, 100, tc.vip, tc.srcB, tc.dstA)
			check(t, c.Send(msg, tc.srcB, tc.dstA))
			buf := make([]byte, 65536)
			p, ok := recvWait(t, s, buf)
			if !ok {
				t.Fatal("Socket received nothing")
			}
			if !bytes.Equal(p.Data, msg) || p.TTL != 255 || p.Src != tc.srcB || p.Dst != tc.dstA || p.IfIndex != ifA.Index {
				t.Errorf("Socket received % x from %v to %v TTL %d on %d, want % x from %v to %v TTL 255 on %d",
					p.Data, p.Src, p.Dst, p.TTL, p.IfIndex, msg, tc.srcB, tc.dstA, ifA.Index)
			}
			if !s.Drained() {
				t.Error("Drained after the only packet: false")
			}
			if _, err := s.Recv(buf); err != ErrWouldBlock {
				t.Errorf("Recv on an empty queue: %v, want ErrWouldBlock", err)
			}

			// Three queued: a batch of two (the second from spare), then
			// one, which says the queue is empty.
			var msgs [][]byte
			for prio := range 3 {
				m := advert(t, 3, 52, uint8(101+prio), tc.vip, tc.srcB, tc.dstA)
				msgs = append(msgs, m)
				check(t, c.Send(m, tc.srcB, tc.dstA))
			}
			time.Sleep(100 * time.Millisecond)
			for i, m := range msgs {
				p, err := s.Recv(buf)
				if err != nil {
					t.Fatalf("packet %d of 3: %v", i, err)
				}
				if !bytes.Equal(p.Data, m) || p.TTL != 255 || p.Src != tc.srcB || p.Dst != tc.dstA || p.IfIndex != ifA.Index {
					t.Errorf("packet %d of 3: % x from %v to %v TTL %d on %d, want % x from %v to %v TTL 255 on %d",
						i, p.Data, p.Src, p.Dst, p.TTL, p.IfIndex, m, tc.srcB, tc.dstA, ifA.Index)
				}
				if want := i == 2; s.Drained() != want {
					t.Errorf("Drained after packet %d of 3: %v, want %v", i, s.Drained(), want)
				}
			}
			if _, err := s.Recv(buf); err != ErrWouldBlock {
				t.Errorf("Recv after the three: %v, want ErrWouldBlock", err)
			}

			// Zero allocations: the steady-state advert path of the daemon.
			out := advert(t, 3, 51, 150, tc.vip, tc.srcA, tc.dstB)
			if n := testing.AllocsPerRun(100, func() {
				if err := s.Send(out, tc.srcA, tc.dstB); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Socket.Send: %v allocations per advert, want 0", n)
			}
			drain(t, c, 101)
			for range 101 {
				check(t, c.Send(msg, tc.srcB, tc.dstA))
			}
			time.Sleep(100 * time.Millisecond)
			if n := testing.AllocsPerRun(100, func() {
				if _, err := s.Recv(buf); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("Socket.Recv: %v allocations per advert, want 0", n)
			}
			// For the record (docs/benchmarks.md): what Conn costs.
			connSend := testing.AllocsPerRun(100, func() { check(t, c.Send(msg, tc.srcB, tc.dstA)) })
			for range 101 {
				check(t, s.Send(out, tc.srcA, tc.dstB))
			}
			time.Sleep(100 * time.Millisecond)
			check(t, c.SetReadDeadline(time.Now().Add(3*time.Second)))
			connRecv := testing.AllocsPerRun(100, func() {
				if _, err := c.ReadPacket(buf); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%s: Conn allocates %v per advert sent, %v per advert received", tc.name, connSend, connRecv)
			drain(t, c, 0)
			for {
				if _, err := s.Recv(buf); err != nil {
					break
				}
			}
			if st := s.Stats(); st.Sent != 203 || st.Received < 102 || st.SendErrors != 0 || st.ReceiveErrors != 0 {
				t.Errorf("stats %+v, want 203 sent and at least 102 received", st)
			}
		})
	}

	t.Run("send errors", func(t *testing.T) {
		checkSendErrors(t, openIn(t, a, "eth0", inet.IPv4, Options{}), v4a)
	})
}

// rawFd is a file descriptor closed by Close (openInHost).
type rawFd int

func (f rawFd) Close() error { return unix.Close(int(f)) }

// recvIPv4 waits up to 3 s for a VRRP packet on the raw socket fd and
// returns it with its IPv4 header.
func recvIPv4(t *testing.T, fd rawFd) []byte {
	t.Helper()
	buf := make([]byte, 1500)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		n, _, err := unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		check(t, err)
		return buf[:n]
	}
	t.Fatal("no packet within 3 s")
	return nil
}

// TestOwnHeader: once the kernel has accepted a source on a kernel-built
// send, IPv4 adverts go with vigil's own header (Socket.sendOwn), and
// that header is the kernel's in every field the receiver reads (TOS, TTL,
// don't fragment, protocol, addresses, length; the identification and
// checksum vary), for multicast and unicast. A source removed from the
// host is trusted for verifyEvery at most: the next kernel-built send
// fails, and so does every send after it.
func TestOwnHeader(t *testing.T) { // not parallel: TestSocketAgainstConn's AllocsPerRun
	a, b := twoHosts(t, "nioown")
	ifB, _ := ifaceIn(t, b, "eth0")
	v4a, v4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	vip := netip.MustParseAddr("192.0.2.100")
	for _, dst := range []netip.Addr{wire.GroupV4, v4b} {
		t.Run(dst.String(), func(t *testing.T) {
			s := openIn(t, a, "eth0", inet.IPv4, Options{})
			if s.own < 0 {
				t.Fatal("no IPPROTO_RAW socket")
			}
			r := openInHost(t, b, func() (rawFd, error) {
				fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, Protocol)
				if err == nil && dst.IsMulticast() {
					err = unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, &unix.IPMreqn{Multiaddr: dst.As4(), Ifindex: int32(ifB.Index)})
				}
				return rawFd(fd), err
			})
			msg := advert(t, 3, 51, 150, vip, v4a, dst)
			check(t, s.Send(msg, v4a, dst))
			kernel := recvIPv4(t, r)
			if s.ownSent != 0 {
				t.Fatalf("first send went with vigil's header (%d)", s.ownSent)
			}
			check(t, s.Send(msg, v4a, dst))
			own := recvIPv4(t, r)
			if s.ownSent != 1 {
				t.Fatalf("%d sends with vigil's header after a kernel-built one, want 1", s.ownSent)
			}
			if len(own) != len(kernel) || len(own) != 20+len(msg) || !bytes.Equal(own[20:], msg) {
				t.Fatalf("vigil's header: % x, kernel's: % x", own, kernel)
			}
			for _, f := range []struct {
				what     string
				from, to int
			}{{"version, length, TOS, total length", 0, 4}, {"flags, TTL, protocol", 6, 10}, {"addresses", 12, 20}} {
				if !bytes.Equal(own[f.from:f.to], kernel[f.from:f.to]) {
					t.Errorf("%s: vigil's % x, kernel's % x", f.what, own[f.from:f.to], kernel[f.from:f.to])
				}
			}
			if own[6]&0x40 == 0 || own[1] != tosNetworkControl || own[8] != hopLimit {
				t.Errorf("header % x: want DF, TOS 0x%x, TTL %d", own[:20], tosNetworkControl, hopLimit)
			}
		})
	}

	t.Run("source removed", func(t *testing.T) {
		s := openIn(t, a, "eth0", inet.IPv4, Options{})
		extra := netip.MustParseAddr("192.0.2.9")
		if out, err := a.Run("ip", "addr", "add", extra.String()+"/24", "dev", "eth0"); err != nil {
			t.Fatalf("ip addr add: %v: %s", err, out)
		}
		msg := advert(t, 3, 51, 150, vip, extra, wire.GroupV4)
		check(t, s.Send(msg, extra, wire.GroupV4))
		check(t, s.Send(msg, extra, wire.GroupV4))
		if s.ownSent != 1 {
			t.Fatalf("%d sends with vigil's header, want 1", s.ownSent)
		}
		if out, err := a.Run("ip", "addr", "del", extra.String()+"/24", "dev", "eth0"); err != nil {
			t.Fatalf("ip addr del: %v: %s", err, out)
		}
		s.okAt = s.okAt.Add(-verifyEvery) // a second later
		for i := range 3 {
			if err := s.Send(msg, extra, wire.GroupV4); err == nil {
				t.Errorf("send %d from a removed address succeeded", i)
			}
		}
		if st := s.Stats(); s.ownSent != 1 || st.SendErrors != 3 || st.Sent != 2 {
			t.Errorf("stats %+v, %d with vigil's header; want 2 sent, 3 errors, 1 with vigil's header", st, s.ownSent)
		}
	})
}
