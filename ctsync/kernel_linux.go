package ctsync

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"

	"vigil/ctsync/wire"
)

// The ctnetlink constants vigil writes itself (linux/netfilter/
// nfnetlink_conntrack.h, nf_conntrack_common.h, nf_conntrack_tcp.h):
// github.com/ti-mo/conntrack cannot create a flow with NAT bindings
// (CTA_NAT_SRC, CTA_NAT_DST), waits for each request's answer (too slow
// for 100,000 flows) and allocates heavily to read a dump; the tests use
// it as an independent reader of the kernel's table.
const (
	nfnlSubsysCTNetlink = 1
	ipctnlMsgCTNew      = 0
	ipctnlMsgCTDelete   = 2

	ctaTupleOrig  = 1
	ctaTupleReply = 2
	ctaStatus     = 3
	ctaProtoinfo  = 4
	ctaNATSrc     = 6
	ctaTimeout    = 7
	ctaMark       = 8
	ctaNATDst     = 13
	ctaZone       = 18

	ctaTupleIP    = 1
	ctaTupleProto = 2
	ctaTupleZone  = 3
	ctaIPv4Src    = 1
	ctaIPv4Dst    = 2
	ctaIPv6Src    = 3
	ctaIPv6Dst    = 4
	ctaProtoNum   = 1
	ctaProtoSrc   = 2
	ctaProtoDst   = 3

	ctaProtoinfoTCP        = 1
	ctaProtoinfoTCPState   = 1
	ctaProtoinfoTCPWScaleO = 2
	ctaProtoinfoTCPWScaleR = 3
	ctaProtoinfoTCPFlagsO  = 4
	ctaProtoinfoTCPFlagsR  = 5

	ctaNATV4Min   = 1
	ctaNATV4Max   = 2
	ctaNATProto   = 3
	ctaNATV6Min   = 4
	ctaNATV6Max   = 5
	ctaProtoNATLo = 1
	ctaProtoNATHi = 2

	nlaFNested = 0x8000

	ipsSeenReply = 1 << 1
	ipsAssured   = 1 << 2
	ipsConfirmed = 1 << 3

	tcpFlagWindowScale = 0x01
	tcpFlagSACKPerm    = 0x02
	tcpFlagBeLiberal   = 0x08

	// NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY.
	groupNew     = 1
	groupUpdate  = 2
	groupDestroy = 3
)

// matches reports whether a flow's original direction is to one of svcs.
func matches(svcs []Service, proto uint8, dst netip.Addr, dport uint16) bool {
	for _, s := range svcs {
		if s.VIP == dst && s.Proto == proto && (s.Port == 0 || s.Port == dport) {
			return true
		}
	}
	return false
}

// nlWriter writes conntrack entries through its own NETLINK_NETFILTER
// socket, many requests per sendmsg, and reads one acknowledgement per
// request: a round trip per batch instead of per entry.
type nlWriter struct {
	fd   int
	seq  uint32
	buf  []byte
	rbuf []byte
}

func newNLWriter() (*nlWriter, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("ctsync: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ctsync: netlink bind: %w", err)
	}
	// Acknowledgements of failed requests without the request in them.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	// An answer the kernel never sends must not hang Install.
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	return &nlWriter{fd: fd, rbuf: make([]byte, 1<<16)}, nil
}

func (w *nlWriter) close() error { return unix.Close(w.fd) }

// batchBytes bounds one sendmsg; its acknowledgements (36 bytes each with
// NETLINK_CAP_ACK) fit the receive buffer many times over.
const batchBytes = 64 << 10

type nlmsg struct {
	b     []byte
	start int
	stack []int
}

func (m *nlmsg) begin(typ, flags uint16, seq uint32, fam uint8) {
	m.start = len(m.b)
	m.b = binary.NativeEndian.AppendUint32(m.b, 0)
	m.b = binary.NativeEndian.AppendUint16(m.b, typ)
	m.b = binary.NativeEndian.AppendUint16(m.b, flags)
	m.b = binary.NativeEndian.AppendUint32(m.b, seq)
	m.b = binary.NativeEndian.AppendUint32(m.b, 0)
	m.b = append(m.b, fam, 0, 0, 0) // nfgenmsg: family, version 0, res_id 0
}

func (m *nlmsg) end() {
	binary.NativeEndian.PutUint32(m.b[m.start:], uint32(len(m.b)-m.start))
}

func (m *nlmsg) attr(typ uint16, data []byte) {
	m.b = binary.NativeEndian.AppendUint16(m.b, uint16(4+len(data)))
	m.b = binary.NativeEndian.AppendUint16(m.b, typ)
	m.b = append(m.b, data...)
	for len(m.b)%4 != 0 {
		m.b = append(m.b, 0)
	}
}

func (m *nlmsg) be16(typ uint16, v uint16) { m.attr(typ, binary.BigEndian.AppendUint16(nil, v)) }
func (m *nlmsg) be32(typ uint16, v uint32) { m.attr(typ, binary.BigEndian.AppendUint32(nil, v)) }
func (m *nlmsg) u8(typ uint16, v uint8)    { m.attr(typ, []byte{v}) }

func (m *nlmsg) push(typ uint16) {
	m.stack = append(m.stack, len(m.b))
	m.b = binary.NativeEndian.AppendUint16(m.b, 0)
	m.b = binary.NativeEndian.AppendUint16(m.b, typ|nlaFNested)
}

func (m *nlmsg) pop() {
	at := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	binary.NativeEndian.PutUint16(m.b[at:], uint16(len(m.b)-at))
}

func (m *nlmsg) addr(typ uint16, a netip.Addr) { m.attr(typ, a.AsSlice()) }

func (m *nlmsg) tuple(typ uint16, proto uint8, zone uint16, t wire.Tuple) {
	m.push(typ)
	m.push(ctaTupleIP)
	if t.Src.Is4() {
		m.addr(ctaIPv4Src, t.Src)
		m.addr(ctaIPv4Dst, t.Dst)
	} else {
		m.addr(ctaIPv6Src, t.Src)
		m.addr(ctaIPv6Dst, t.Dst)
	}
	m.pop()
	m.push(ctaTupleProto)
	m.u8(ctaProtoNum, proto)
	m.be16(ctaProtoSrc, t.SrcPort)
	m.be16(ctaProtoDst, t.DstPort)
	m.pop()
	if zone != 0 {
		m.be16(ctaTupleZone, zone)
	}
	m.pop()
}

// nat appends CTA_NAT_SRC or CTA_NAT_DST: one address and one port
// (min = max), so the kernel binds exactly the master's translation.
func (m *nlmsg) nat(typ uint16, a netip.Addr, port uint16) {
	m.push(typ)
	if a.Is4() {
		m.addr(ctaNATV4Min, a)
		m.addr(ctaNATV4Max, a)
	} else {
		m.addr(ctaNATV6Min, a)
		m.addr(ctaNATV6Max, a)
	}
	if port != 0 {
		m.push(ctaNATProto)
		m.be16(ctaProtoNATLo, port)
		m.be16(ctaProtoNATHi, port)
		m.pop()
	}
	m.pop()
}

// beginEntry begins a ctnetlink request (NLM_F_REQUEST|NLM_F_ACK and
// flags) of message type typ about e's flow: its address family and its
// original tuple.
func (m *nlmsg) beginEntry(typ, flags uint16, seq uint32, e *wire.Entry) {
	fam := uint8(unix.AF_INET)
	if e.Is6() {
		fam = unix.AF_INET6
	}
	m.begin(nfnlSubsysCTNetlink<<8|typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags, seq, fam)
	m.tuple(ctaTupleOrig, e.Proto, e.Zone, e.Orig)
}

// appendCreate appends a request creating e (NLM_F_CREATE|NLM_F_EXCL)
// with its NAT bindings, TCP state and liberal window tracking (the
// kernel's own choice for a flow picked up mid-stream: the window edges
// are not synced), SEEN_REPLY/ASSURED, mark and timeout.
func (m *nlmsg) appendCreate(e *wire.Entry, seq uint32) {
	m.beginEntry(ipctnlMsgCTNew, unix.NLM_F_CREATE|unix.NLM_F_EXCL, seq, e)
	// The reply tuple of an untranslated flow: the kernel applies the NAT
	// bindings below to it, which sets the DNAT/SNAT status bits the NAT
	// hooks translate by. (Given the translated reply tuple, it would see
	// nothing left to translate and leave the flow untranslated.)
	m.tuple(ctaTupleReply, e.Proto, e.Zone, wire.Tuple{Src: e.Orig.Dst, Dst: e.Orig.Src, SrcPort: e.Orig.DstPort, DstPort: e.Orig.SrcPort})
	m.be32(ctaTimeout, max(e.Timeout, 1))
	if e.Mark != 0 {
		m.be32(ctaMark, e.Mark)
	}
	if e.Zone != 0 {
		m.be16(ctaZone, e.Zone)
	}
	n := wire.NATOf(e)
	if n.DNATAddr.IsValid() {
		m.nat(ctaNATDst, n.DNATAddr, n.DNATPort)
	}
	if n.SNATAddr.IsValid() {
		m.nat(ctaNATSrc, n.SNATAddr, n.SNATPort)
	}
	if e.Proto == unix.IPPROTO_TCP {
		m.push(ctaProtoinfo)
		m.push(ctaProtoinfoTCP)
		m.u8(ctaProtoinfoTCPState, e.TCPState)
		fo := e.FlagsOrig&(tcpFlagWindowScale|tcpFlagSACKPerm) | tcpFlagBeLiberal
		fr := e.FlagsReply&(tcpFlagWindowScale|tcpFlagSACKPerm) | tcpFlagBeLiberal
		m.attr(ctaProtoinfoTCPFlagsO, []byte{fo, 0xff})
		m.attr(ctaProtoinfoTCPFlagsR, []byte{fr, 0xff})
		m.u8(ctaProtoinfoTCPWScaleO, e.WScaleOrig)
		m.u8(ctaProtoinfoTCPWScaleR, e.WScaleReply)
		m.pop()
		m.pop()
	}
	// Only the bits ctnetlink lets a client set; the NAT bits follow from
	// the bindings above. CONFIRMED is set by the kernel before it applies
	// CTA_STATUS, and older kernels refuse (EBUSY) a status that clears it.
	m.be32(ctaStatus, e.Status&(ipsSeenReply|ipsAssured)|ipsConfirmed)
	m.end()
}

// appendUpdate appends a request refreshing an existing entry with e's
// timeout, TCP state (with liberal window tracking) and mark. Status is left alone: the kernel refuses
// to clear SEEN_REPLY or ASSURED, and the NAT bits cannot change.
func (m *nlmsg) appendUpdate(e *wire.Entry, seq uint32) {
	m.beginEntry(ipctnlMsgCTNew, 0, seq, e)
	m.be32(ctaTimeout, max(e.Timeout, 1))
	if e.Mark != 0 {
		m.be32(ctaMark, e.Mark)
	}
	if e.Zone != 0 {
		m.be16(ctaZone, e.Zone)
	}
	if e.Proto == unix.IPPROTO_TCP {
		m.push(ctaProtoinfo)
		m.push(ctaProtoinfoTCP)
		m.u8(ctaProtoinfoTCPState, e.TCPState)
		liberalFlags(m)
		m.pop()
		m.pop()
	}
	m.end()
}

// liberalFlags sets BE_LIBERAL in both directions, leaving the other
// flags: the flow's window edges are stale after its packets went through
// another director.
func liberalFlags(m *nlmsg) {
	m.attr(ctaProtoinfoTCPFlagsO, []byte{tcpFlagBeLiberal, tcpFlagBeLiberal})
	m.attr(ctaProtoinfoTCPFlagsR, []byte{tcpFlagBeLiberal, tcpFlagBeLiberal})
}

// appendLiberal appends a request making an existing TCP flow's window
// tracking liberal (see liberalFlags).
func (m *nlmsg) appendLiberal(e *wire.Entry, seq uint32) {
	m.beginEntry(ipctnlMsgCTNew, 0, seq, e)
	if e.Zone != 0 {
		m.be16(ctaZone, e.Zone)
	}
	m.push(ctaProtoinfo)
	m.push(ctaProtoinfoTCP)
	liberalFlags(m)
	m.pop()
	m.pop()
	m.end()
}

// appendDelete appends a request deleting the flow with e's tuples.
func (m *nlmsg) appendDelete(e *wire.Entry, seq uint32) {
	m.beginEntry(ipctnlMsgCTDelete, 0, seq, e)
	if e.Zone != 0 {
		m.be16(ctaZone, e.Zone)
	}
	m.end()
}

// do sends one request per entry, built by build, in batches, and returns
// the kernel's answer (0 or a negative errno) for each.
func (w *nlWriter) do(ctx context.Context, entries []wire.Entry, build func(*nlmsg, *wire.Entry, uint32)) ([]syscall.Errno, error) {
	res := make([]syscall.Errno, len(entries))
	m := nlmsg{b: w.buf[:0]}
	for i := 0; i < len(entries); {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("ctsync: %d of %d requests sent: %w", i, len(entries), err)
		}
		m.b = m.b[:0]
		first := w.seq + 1
		j := i
		for ; j < len(entries) && len(m.b) < batchBytes; j++ {
			w.seq++
			build(&m, &entries[j], w.seq)
		}
		if err := unix.Sendto(w.fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return res, fmt.Errorf("ctsync: netlink send: %w", err)
		}
		if err := w.acks(first, res[i:j]); err != nil {
			return res, err
		}
		i = j
	}
	w.buf = m.b
	return res, nil
}

// acks reads one acknowledgement per request of the batch whose first
// sequence number is first.
func (w *nlWriter) acks(first uint32, res []syscall.Errno) error {
	left := len(res)
	for left > 0 {
		n, _, err := unix.Recvfrom(w.fd, w.rbuf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("ctsync: netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(w.rbuf[:n])
		if err != nil {
			return fmt.Errorf("ctsync: netlink answer: %w", err)
		}
		for _, msg := range msgs {
			if msg.Header.Type != unix.NLMSG_ERROR || len(msg.Data) < 4 {
				continue
			}
			i := int(msg.Header.Seq - first)
			if i < 0 || i >= len(res) {
				continue
			}
			res[i] = syscall.Errno(-int32(binary.NativeEndian.Uint32(msg.Data)))
			left--
		}
	}
	return nil
}

// ipctnlMsgCTGet with NLM_F_DUMP lists the table.
const ipctnlMsgCTGet = 1

// dump lists the kernel's conntrack table (both families), calling fn
// with each flow vigil can sync; fn must copy what it keeps.
func (w *nlWriter) dump(fn func(*wire.Entry)) error {
	w.seq++
	seq := w.seq
	m := nlmsg{b: w.buf[:0]}
	m.begin(nfnlSubsysCTNetlink<<8|ipctnlMsgCTGet, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq, unix.AF_UNSPEC)
	m.end()
	w.buf = m.b
	if err := unix.Sendto(w.fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("ctsync: conntrack dump: %w", err)
	}
	var e wire.Entry
	for {
		n, _, err := unix.Recvfrom(w.fd, w.rbuf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("ctsync: conntrack dump: %w", err)
		}
		b := w.rbuf[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b))
			typ := binary.NativeEndian.Uint16(b[4:])
			mseq := binary.NativeEndian.Uint32(b[8:])
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return errors.New("ctsync: conntrack dump: malformed answer")
			}
			body := b[unix.NLMSG_HDRLEN:l]
			if al := (l + 3) &^ 3; al < len(b) {
				b = b[al:]
			} else {
				b = nil
			}
			if mseq != seq {
				continue // a late answer to an earlier request
			}
			switch typ {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(body) >= 4 {
					if errno := syscall.Errno(-int32(binary.NativeEndian.Uint32(body))); errno != 0 {
						return fmt.Errorf("ctsync: conntrack dump: %w", errno)
					}
				}
				return nil
			}
			if len(body) > 4 && parseFlow(body[4:], &e) {
				fn(&e)
			}
		}
	}
}
