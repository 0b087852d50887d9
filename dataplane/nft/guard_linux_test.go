package nft

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"vigil/internal/inet"
	"vigil/lb"
)

// TestLocalGuard: a TCP segment without SYN from a real server to an FNAT
// local address, for a flow the director's conntrack does not know, is
// what a killed master receives once another director carries its flows.
// Without vigil's rules the director's stack answers it with a reset (the
// reset that kills the real server's end of the flow); with an FNAT
// service applied, active or not, chain local_in drops it, while a SYN to
// the local address is still answered as before.
func TestLocalGuard(t *testing.T) {
	x := natLab(t, "nftguard", false)
	dp := x.dataplane(t)
	rs := x.rs[0]
	local := netip.MustParseAddr("198.51.100.200")
	port := uint16(40000)
	probe := func(flags byte) bool {
		t.Helper()
		port++
		var got bool
		err := rs.Do(func() error {
			var err error
			got, err = resetFor(local, port, flags)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	const ack, syn = 0x10, 0x02
	if !probe(ack) {
		t.Fatal("without vigil's rules: no reset to a stray ACK at the local address; the probe cannot see what the guard removes")
	}
	s := natService(lb.FNAT, "203.0.113.10", backend("198.51.100.11:80", 1))
	apply(t, dp, s)
	if probe(ack) {
		t.Error("FNAT service applied: the director answered a stray ACK at its local address with a reset")
	}
	if probe(ack | 0x08) { // ACK+PSH: a reply carrying data
		t.Error("FNAT service applied: the director answered a stray data segment at its local address with a reset")
	}
	if !probe(syn) {
		t.Error("FNAT service applied: a SYN to the local address (no listener) got no reset: the guard drops more than stray replies")
	}
	s.Active = false
	apply(t, dp, s)
	if probe(ack) {
		t.Error("inactive FNAT service: the director answered a stray ACK at its local address with a reset")
	}
}

// resetFor sends, from the calling thread's namespace, a TCP segment with
// flags from port 4444 to dst:port over a raw socket, and reports whether
// a reset from dst:port came back within 300 ms.
func resetFor(dst netip.Addr, port uint16, flags byte) (bool, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_TCP)
	if err != nil {
		return false, err
	}
	defer syscall.Close(fd)
	tv := syscall.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return false, err
	}
	// The source is the real server's only address: the route's.
	src := netip.MustParseAddr("198.51.100.11")
	seg := make([]byte, 20)
	binary.BigEndian.PutUint16(seg[0:], 4444)
	binary.BigEndian.PutUint16(seg[2:], port)
	binary.BigEndian.PutUint32(seg[4:], 1000)   // seq
	binary.BigEndian.PutUint32(seg[8:], 500000) // ack
	seg[12] = 5 << 4
	seg[13] = flags
	binary.BigEndian.PutUint16(seg[14:], 64240)
	binary.BigEndian.PutUint16(seg[16:], ^inet.Fold(inet.Sum(inet.PseudoHeaderSum(0, src, dst, syscall.IPPROTO_TCP, len(seg)), seg)))
	if err := syscall.Sendto(fd, seg, 0, &syscall.SockaddrInet4{Addr: dst.As4()}); err != nil {
		return false, err
	}
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil {
			continue // the receive timeout
		}
		p := buf[:n]
		if n < 20 || p[9] != syscall.IPPROTO_TCP {
			continue
		}
		ihl := int(p[0]&0x0f) * 4
		if from, _ := netip.AddrFromSlice(p[12:16]); from != dst || n < ihl+14 {
			continue
		}
		tcp := p[ihl:]
		if binary.BigEndian.Uint16(tcp[0:]) == port && binary.BigEndian.Uint16(tcp[2:]) == 4444 && tcp[13]&0x04 != 0 {
			return true, nil
		}
	}
	return false, nil
}
