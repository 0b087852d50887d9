package nft

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"vigil/internal/inet"
	"vigil/internal/netlab"
	"vigil/lb"
)

const tcpACK, tcpPSH, tcpRST, tcpSYN = 0x10, 0x08, 0x04, 0x02

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
	rs, local := x.rs[0], netip.MustParseAddr("198.51.100.200")
	port := uint16(40000)
	// reset sends a segment with flags from the real server's port 4444 to
	// the local address and reports whether a reset came back.
	reset := func(flags byte) bool {
		t.Helper()
		port++
		fd := rawListener(t, rs)
		segment(t, rs, netip.MustParseAddr("198.51.100.11"), local, 4444, port, flags)
		return arrives(fd, local, port, 4444, tcpRST)
	}
	if !reset(tcpACK) {
		t.Fatal("without vigil's rules: no reset to a stray ACK at the local address; the probe cannot see what the guard removes")
	}
	s := natService(lb.FNAT, "203.0.113.10", backend("198.51.100.11:80", 1))
	apply(t, dp, s)
	if reset(tcpACK) {
		t.Error("FNAT service applied: the director answered a stray ACK at its local address with a reset")
	}
	if reset(tcpACK | tcpPSH) {
		t.Error("FNAT service applied: the director answered a stray data segment at its local address with a reset")
	}
	if !reset(tcpSYN) {
		t.Error("FNAT service applied: a SYN to the local address (no listener) got no reset: the guard drops more than stray replies")
	}
	s.Active = false
	apply(t, dp, s)
	if reset(tcpACK) {
		t.Error("inactive FNAT service: the director answered a stray ACK at its local address with a reset")
	}
}

// TestRealGuard: a NAT real server's reply that the director's conntrack
// does not know (no SYN) is forwarded to the client untranslated, from the
// real server's own address, without vigil's rules; with a NAT service of
// that real server and port, chain real_fwd drops it. The real server's
// other traffic (a SYN from that port, anything from another port) is
// forwarded as before.
func TestRealGuard(t *testing.T) {
	x := natLab(t, "nftrguard", true)
	dp := x.dataplane(t)
	rs, rsAddr, client := x.rs[0], netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("203.0.113.2")
	port := uint16(40000)
	// forwarded sends a segment with flags from the real server's sport to
	// the client and reports whether the client received it.
	forwarded := func(sport uint16, flags byte) bool {
		t.Helper()
		port++
		fd := rawListener(t, x.client)
		segment(t, rs, rsAddr, client, sport, port, flags)
		return arrives(fd, rsAddr, sport, port, flags)
	}
	if !forwarded(80, tcpACK|tcpPSH) {
		t.Fatal("without vigil's rules: a real server's stray reply did not reach the client; the probe cannot see what the guard removes")
	}
	apply(t, dp, natService(lb.NAT, "203.0.113.10", backend("198.51.100.11:80", 1)))
	if forwarded(80, tcpACK|tcpPSH) {
		t.Error("NAT service applied: a real server's stray reply was forwarded to the client untranslated")
	}
	if forwarded(80, tcpACK) {
		t.Error("NAT service applied: a real server's stray ACK was forwarded to the client untranslated")
	}
	if !forwarded(80, tcpSYN) {
		t.Error("NAT service applied: a SYN from the real server's port was not forwarded: the guard drops more than stray replies")
	}
	if !forwarded(81, tcpACK) {
		t.Error("NAT service applied: a segment from another port of the real server was not forwarded: the guard drops more than stray replies")
	}
}

// rawListener opens a raw TCP socket in h's namespace that receives a copy
// of every TCP packet h receives; it is closed with the test.
func rawListener(t *testing.T, h *netlab.Host) int {
	t.Helper()
	var fd int
	err := h.Do(func() (err error) {
		fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_TCP)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	tv := syscall.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

// segment sends, from h's namespace over a raw socket, a bare TCP segment
// (sequence 1000, acknowledging 500000) from src:sport to dst:dport.
func segment(t *testing.T, h *netlab.Host, src, dst netip.Addr, sport, dport uint16, flags byte) {
	t.Helper()
	seg := make([]byte, 20)
	binary.BigEndian.PutUint16(seg[0:], sport)
	binary.BigEndian.PutUint16(seg[2:], dport)
	binary.BigEndian.PutUint32(seg[4:], 1000)
	binary.BigEndian.PutUint32(seg[8:], 500000)
	seg[12] = 5 << 4
	seg[13] = flags
	binary.BigEndian.PutUint16(seg[14:], 64240)
	binary.BigEndian.PutUint16(seg[16:], ^inet.Fold(inet.Sum(inet.PseudoHeaderSum(0, src, dst, syscall.IPPROTO_TCP, len(seg)), seg)))
	err := h.Do(func() error {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_TCP)
		if err != nil {
			return err
		}
		defer syscall.Close(fd)
		return syscall.Sendto(fd, seg, 0, &syscall.SockaddrInet4{Addr: dst.As4()})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// arrives reports whether a TCP segment from from:sport to dport with all
// of flags set arrives on the raw socket fd within 300 ms.
func arrives(fd int, from netip.Addr, sport, dport uint16, flags byte) bool {
	buf := make([]byte, 1500)
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err != nil || n < 20 {
			continue // the receive timeout
		}
		p := buf[:n]
		ihl := int(p[0]&0x0f) * 4
		if src, _ := netip.AddrFromSlice(p[12:16]); src != from || p[9] != syscall.IPPROTO_TCP || n < ihl+14 {
			continue
		}
		tcp := p[ihl:]
		if binary.BigEndian.Uint16(tcp[0:]) == sport && binary.BigEndian.Uint16(tcp[2:]) == dport && tcp[13]&flags == flags {
			return true
		}
	}
	return false
}
