package ctnl

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"

	"vigil/internal/ctflow"
)

// The ctnetlink constants vigil writes and reads itself (linux/netfilter/
// nfnetlink_conntrack.h, nf_conntrack_common.h, nf_conntrack_tcp.h):
// github.com/ti-mo/conntrack cannot create a flow with NAT bindings
// (CTA_NAT_SRC, CTA_NAT_DST), waits for each request's answer (too slow
// for 100,000 flows) and allocates heavily to read a dump, as does
// vishvananda/netlink's reader (4-10 µs of CPU a flow in the data plane's
// count, 1 µs here: docs/benchmarks.md); ctsync's tests use ti-mo's as an
// independent reader of the kernel's table.
const (
	SubsysCTNetlink = 1
	MsgNew          = 0
	MsgDelete       = 2

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

	StatusSeenReply = 1 << 1
	StatusAssured   = 1 << 2
	StatusConfirmed = 1 << 3

	tcpFlagWindowScale = 0x01
	tcpFlagSACKPerm    = 0x02
	TCPFlagBeLiberal   = 0x08

	// NFNLGRP_CONNTRACK_NEW, _UPDATE, _DESTROY.
	GroupNew     = 1
	GroupUpdate  = 2
	GroupDestroy = 3
)

// Conn is one NETLINK_NETFILTER socket of its own. It writes conntrack
// entries many requests per sendmsg, reading one acknowledgement per
// request (a round trip per batch instead of per entry), and reads dumps.
// It is not safe for concurrent use: each user keeps its own, or a lock.
type Conn struct {
	fd   int
	seq  uint32
	buf  []byte
	rbuf []byte
}

// Open opens a Conn in the calling thread's network namespace.
func Open() (*Conn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, fmt.Errorf("conntrack: netlink socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("conntrack: netlink bind: %w", err)
	}
	// Acknowledgements of failed requests without the request in them.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	// An answer the kernel never sends must not hang a caller.
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	return &Conn{fd: fd, rbuf: make([]byte, 1<<16)}, nil
}

// Close closes the socket.
func (w *Conn) Close() error { return unix.Close(w.fd) }

// batchBytes bounds one sendmsg; its acknowledgements (36 bytes each with
// NETLINK_CAP_ACK) fit the receive buffer many times over.
const batchBytes = 64 << 10

// Msg builds ctnetlink requests into one buffer (Conn.Do hands its
// builders a Msg to append to).
type Msg struct {
	b     []byte
	start int
	stack []int
}

func (m *Msg) begin(typ, flags uint16, seq uint32, fam uint8) {
	m.start = len(m.b)
	m.b = binary.NativeEndian.AppendUint32(m.b, 0)
	m.b = binary.NativeEndian.AppendUint16(m.b, typ)
	m.b = binary.NativeEndian.AppendUint16(m.b, flags)
	m.b = binary.NativeEndian.AppendUint32(m.b, seq)
	m.b = binary.NativeEndian.AppendUint32(m.b, 0)
	m.b = append(m.b, fam, 0, 0, 0) // nfgenmsg: family, version 0, res_id 0
}

func (m *Msg) end() {
	binary.NativeEndian.PutUint32(m.b[m.start:], uint32(len(m.b)-m.start))
}

func (m *Msg) attr(typ uint16, data []byte) {
	m.b = binary.NativeEndian.AppendUint16(m.b, uint16(4+len(data)))
	m.b = binary.NativeEndian.AppendUint16(m.b, typ)
	m.b = append(m.b, data...)
	for len(m.b)%4 != 0 {
		m.b = append(m.b, 0)
	}
}

func (m *Msg) be16(typ uint16, v uint16) { m.attr(typ, binary.BigEndian.AppendUint16(nil, v)) }
func (m *Msg) be32(typ uint16, v uint32) { m.attr(typ, binary.BigEndian.AppendUint32(nil, v)) }
func (m *Msg) u8(typ uint16, v uint8)    { m.attr(typ, []byte{v}) }

func (m *Msg) push(typ uint16) {
	m.stack = append(m.stack, len(m.b))
	m.b = binary.NativeEndian.AppendUint16(m.b, 0)
	m.b = binary.NativeEndian.AppendUint16(m.b, typ|nlaFNested)
}

func (m *Msg) pop() {
	at := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	binary.NativeEndian.PutUint16(m.b[at:], uint16(len(m.b)-at))
}

func (m *Msg) addr(typ uint16, a netip.Addr) { m.attr(typ, a.AsSlice()) }

func (m *Msg) tuple(typ uint16, proto uint8, zone uint16, t ctflow.Tuple) {
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
func (m *Msg) nat(typ uint16, a netip.Addr, port uint16) {
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
func (m *Msg) beginEntry(typ, flags uint16, seq uint32, e *ctflow.Entry) {
	fam := uint8(unix.AF_INET)
	if e.Is6() {
		fam = unix.AF_INET6
	}
	m.begin(SubsysCTNetlink<<8|typ, unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags, seq, fam)
	m.tuple(ctaTupleOrig, e.Proto, e.Zone, e.Orig)
}

// AppendCreate appends a request creating e (NLM_F_CREATE|NLM_F_EXCL)
// with its NAT bindings, TCP state and liberal window tracking (the
// kernel's own choice for a flow picked up mid-stream: the window edges
// are not synced), SEEN_REPLY/ASSURED, mark and timeout.
func (m *Msg) AppendCreate(e *ctflow.Entry, seq uint32) {
	m.beginEntry(MsgNew, unix.NLM_F_CREATE|unix.NLM_F_EXCL, seq, e)
	// The reply tuple of an untranslated flow: the kernel applies the NAT
	// bindings below to it, which sets the DNAT/SNAT status bits the NAT
	// hooks translate by. (Given the translated reply tuple, it would see
	// nothing left to translate and leave the flow untranslated.)
	m.tuple(ctaTupleReply, e.Proto, e.Zone, ctflow.Tuple{Src: e.Orig.Dst, Dst: e.Orig.Src, SrcPort: e.Orig.DstPort, DstPort: e.Orig.SrcPort})
	m.be32(ctaTimeout, max(e.Timeout, 1))
	if e.Mark != 0 {
		m.be32(ctaMark, e.Mark)
	}
	if e.Zone != 0 {
		m.be16(ctaZone, e.Zone)
	}
	n := ctflow.NATOf(e)
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
		fo := e.FlagsOrig&(tcpFlagWindowScale|tcpFlagSACKPerm) | TCPFlagBeLiberal
		fr := e.FlagsReply&(tcpFlagWindowScale|tcpFlagSACKPerm) | TCPFlagBeLiberal
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
	m.be32(ctaStatus, e.Status&(StatusSeenReply|StatusAssured)|StatusConfirmed)
	m.end()
}

// AppendUpdate appends a request refreshing an existing entry with e's
// timeout, TCP state (with liberal window tracking) and mark. Status is left alone: the kernel refuses
// to clear SEEN_REPLY or ASSURED, and the NAT bits cannot change.
func (m *Msg) AppendUpdate(e *ctflow.Entry, seq uint32) {
	m.beginEntry(MsgNew, 0, seq, e)
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
func liberalFlags(m *Msg) {
	m.attr(ctaProtoinfoTCPFlagsO, []byte{TCPFlagBeLiberal, TCPFlagBeLiberal})
	m.attr(ctaProtoinfoTCPFlagsR, []byte{TCPFlagBeLiberal, TCPFlagBeLiberal})
}

// AppendLiberal appends a request making an existing TCP flow's window
// tracking liberal (see liberalFlags).
func (m *Msg) AppendLiberal(e *ctflow.Entry, seq uint32) {
	m.beginEntry(MsgNew, 0, seq, e)
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

// AppendDelete appends a request deleting the flow with e's tuples.
func (m *Msg) AppendDelete(e *ctflow.Entry, seq uint32) {
	m.beginEntry(MsgDelete, 0, seq, e)
	if e.Zone != 0 {
		m.be16(ctaZone, e.Zone)
	}
	m.end()
}

// Do sends one request per entry, built by build (one of Msg's Append
// methods), in batches, and returns the kernel's answer for each (0, or
// the errno it refused the request with).
func (w *Conn) Do(ctx context.Context, entries []ctflow.Entry, build func(*Msg, *ctflow.Entry, uint32)) ([]syscall.Errno, error) {
	res := make([]syscall.Errno, len(entries))
	m := Msg{b: w.buf[:0]}
	for i := 0; i < len(entries); {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("conntrack: %d of %d requests sent: %w", i, len(entries), err)
		}
		m.b = m.b[:0]
		first := w.seq + 1
		j := i
		for ; j < len(entries) && len(m.b) < batchBytes; j++ {
			w.seq++
			build(&m, &entries[j], w.seq)
		}
		if err := unix.Sendto(w.fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return res, fmt.Errorf("conntrack: netlink send: %w", err)
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
func (w *Conn) acks(first uint32, res []syscall.Errno) error {
	left := len(res)
	for left > 0 {
		n, _, err := unix.Recvfrom(w.fd, w.rbuf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("conntrack: netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(w.rbuf[:n])
		if err != nil {
			return fmt.Errorf("conntrack: netlink answer: %w", err)
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

// MsgGet with NLM_F_DUMP lists the table.
const MsgGet = 1

// Dump lists the kernel's conntrack table (both families), calling fn
// with each flow ParseFlow accepts; fn must copy what it keeps.
func (w *Conn) Dump(fn func(*ctflow.Entry)) error {
	return w.dump(nil, fn)
}

// Filter selects flows in the kernel (CTA_FILTER, Linux 5.8): those of
// protocol Proto whose reply tuple comes from ReplySrc, and from port
// ReplySrcPort unless it is 0. In a NAT or FNAT flow the reply tuple's
// source is the real server: the kernel walks its table and sends only
// that server's flows, where a whole dump costs a few microseconds of
// CPU for every flow of the table (docs/benchmarks.md).
type Filter struct {
	Proto        uint8
	ReplySrc     netip.Addr
	ReplySrcPort uint16
}

// Flags of CTA_FILTER_REPLY_FLAGS (CTA_FILTER_F_*).
const (
	ctaFilter           = 25
	ctaFilterReplyFlags = 2
	filterIPSrc         = 1 << 0
	filterProtoNum      = 1 << 3
	filterProtoSrcPort  = 1 << 4
)

// DumpFilter is Dump for the flows f selects; like Dump, fn sees only
// flows ParseFlow accepts.
func (w *Conn) DumpFilter(f Filter, fn func(*ctflow.Entry)) error {
	return w.dump(&f, fn)
}

func (w *Conn) dump(f *Filter, fn func(*ctflow.Entry)) error {
	w.seq++
	seq := w.seq
	m := Msg{b: w.buf[:0]}
	if f == nil {
		m.begin(SubsysCTNetlink<<8|MsgGet, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq, unix.AF_UNSPEC)
	} else {
		fam := uint8(unix.AF_INET)
		ipSrc := uint16(ctaIPv4Src)
		flags := uint32(filterIPSrc | filterProtoNum)
		if f.ReplySrc.Is6() {
			// The kernel's IPv6 address match is inverted (6.18 here:
			// it sends every flow but the address's), so an IPv6 dump
			// is filtered by family, protocol and port in the kernel
			// and by address below.
			fam, ipSrc, flags = unix.AF_INET6, ctaIPv6Src, filterProtoNum
		}
		m.begin(SubsysCTNetlink<<8|MsgGet, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, seq, fam)
		m.push(ctaTupleReply)
		m.push(ctaTupleIP)
		m.addr(ipSrc, f.ReplySrc)
		m.pop()
		m.push(ctaTupleProto)
		m.u8(ctaProtoNum, f.Proto)
		if f.ReplySrcPort != 0 {
			m.be16(ctaProtoSrc, f.ReplySrcPort)
			flags |= filterProtoSrcPort
		}
		m.pop()
		m.pop()
		m.push(ctaFilter)
		m.attr(ctaFilterReplyFlags, binary.NativeEndian.AppendUint32(nil, flags))
		m.pop()
	}
	m.end()
	w.buf = m.b
	if f != nil {
		// Whatever the kernel did with the filter (one without
		// CTA_FILTER ignores it), fn sees only what f selects.
		all := fn
		fn = func(e *ctflow.Entry) {
			if e.Proto == f.Proto && e.Reply.Src == f.ReplySrc && (f.ReplySrcPort == 0 || e.Reply.SrcPort == f.ReplySrcPort) {
				all(e)
			}
		}
	}
	if err := unix.Sendto(w.fd, m.b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("conntrack: dump: %w", err)
	}
	var e ctflow.Entry
	for {
		n, _, err := unix.Recvfrom(w.fd, w.rbuf, 0)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("conntrack: dump: %w", err)
		}
		b := w.rbuf[:n]
		for len(b) >= unix.NLMSG_HDRLEN {
			l := int(binary.NativeEndian.Uint32(b))
			typ := binary.NativeEndian.Uint16(b[4:])
			mseq := binary.NativeEndian.Uint32(b[8:])
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return errors.New("conntrack: dump: malformed answer")
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
						return fmt.Errorf("conntrack: dump: %w", errno)
					}
				}
				return nil
			}
			if len(body) > 4 && ParseFlow(body[4:], &e) {
				fn(&e)
			}
		}
	}
}
