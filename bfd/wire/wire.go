// Package wire encodes and decodes BFD Control packets (RFC 5880 section
// 4.1, the mandatory section and the optional authentication section's
// header), as sent over UDP port 3784 by single-hop BFD (RFC 5881).
//
// Decode performs the checks of RFC 5880 section 6.8.6 that need nothing
// but the packet itself (version, length, detect multiplier, multipoint,
// my discriminator); the checks that need a session (your discriminator,
// the source address, TTL) belong to package bfd. Each failure is an
// *Error whose Reason is a short stable word, so that callers can count
// drops by reason.
//
// Authentication is not supported by vigil: a packet with the A bit is
// decoded (its section is kept as raw bytes) and package bfd drops it.
package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// Version is the BFD protocol version this package speaks.
const Version = 1

// HeaderLen is the length of the mandatory section.
const HeaderLen = 24

// State is a BFD session state as carried in the Sta field.
type State uint8

// The session states (RFC 5880 section 4.1).
const (
	AdminDown State = 0
	Down      State = 1
	Init      State = 2
	Up        State = 3
)

var stateNames = [...]string{AdminDown: "AdminDown", Down: "Down", Init: "Init", Up: "Up"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is a diagnostic code (RFC 5880 section 4.1).
type Diag uint8

// The diagnostic codes.
const (
	DiagNone             Diag = 0
	DiagDetectExpired    Diag = 1
	DiagEchoFailed       Diag = 2
	DiagNeighborDown     Diag = 3
	DiagForwardingReset  Diag = 4
	DiagPathDown         Diag = 5
	DiagConcatPathDown   Diag = 6
	DiagAdminDown        Diag = 7
	DiagRevConcatPathDwn Diag = 8
)

var diagNames = [...]string{
	"no diagnostic", "control detection time expired", "echo function failed",
	"neighbor signaled session down", "forwarding plane reset", "path down",
	"concatenated path down", "administratively down", "reverse concatenated path down",
}

func (d Diag) String() string {
	if int(d) < len(diagNames) {
		return diagNames[d]
	}
	return fmt.Sprintf("diagnostic %d", uint8(d))
}

// Packet is a BFD Control packet. Intervals are in microseconds, as on
// the wire.
type Packet struct {
	Version           uint8 // Marshal writes Version when zero
	Diag              Diag
	State             State
	Poll              bool
	Final             bool
	ControlPlaneIndep bool
	Demand            bool
	Multipoint        bool
	DetectMult        uint8
	MyDisc            uint32
	YourDisc          uint32
	DesiredMinTx      uint32
	RequiredMinRx     uint32
	RequiredMinEchoRx uint32
	// Auth is the raw authentication section (type, length, data) when the
	// A bit is set; nil without it.
	Auth []byte
}

// Error is a decoding failure with a stable reason word.
type Error struct {
	Reason string // "short", "version", "length", "detect_mult", "multipoint", "my_disc", "auth_len"
	Detail string
}

func (e *Error) Error() string { return "bfd: " + e.Detail }

// Is lets errors.Is(err, io.ErrUnexpectedEOF) match a truncated packet.
func (e *Error) Is(target error) bool { return e.Reason == "short" && target == io.ErrUnexpectedEOF }

func fail(reason, format string, args ...any) error {
	return &Error{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Reason returns the reason word of a decoding error, or "malformed" for
// any other error.
func Reason(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Reason
	}
	return "malformed"
}

// Len is the encoded length of p.
func (p *Packet) Len() int { return HeaderLen + len(p.Auth) }

// MarshalBinary encodes p.
func (p *Packet) MarshalBinary() ([]byte, error) {
	b := make([]byte, p.Len())
	if err := p.MarshalTo(b); err != nil {
		return nil, err
	}
	return b, nil
}

// MarshalTo encodes p into b, which must hold p.Len() bytes.
func (p *Packet) MarshalTo(b []byte) error {
	n := p.Len()
	if n > 255 {
		return fmt.Errorf("bfd: authentication section of %d bytes makes the packet longer than 255", len(p.Auth))
	}
	if len(b) < n {
		return io.ErrShortBuffer
	}
	v := p.Version
	if v == 0 {
		v = Version
	}
	b[0] = v<<5 | uint8(p.Diag)&0x1f
	f := uint8(p.State&3) << 6
	for i, set := range []bool{p.Poll, p.Final, p.ControlPlaneIndep, len(p.Auth) > 0, p.Demand, p.Multipoint} {
		if set {
			f |= 1 << (5 - i)
		}
	}
	b[1] = f
	b[2] = p.DetectMult
	b[3] = uint8(n)
	binary.BigEndian.PutUint32(b[4:], p.MyDisc)
	binary.BigEndian.PutUint32(b[8:], p.YourDisc)
	binary.BigEndian.PutUint32(b[12:], p.DesiredMinTx)
	binary.BigEndian.PutUint32(b[16:], p.RequiredMinRx)
	binary.BigEndian.PutUint32(b[20:], p.RequiredMinEchoRx)
	copy(b[HeaderLen:], p.Auth)
	return nil
}

// UnmarshalBinary decodes b into p with the packet-only checks of RFC 5880
// section 6.8.6. Bytes past the Length field (UDP padding) are ignored.
func (p *Packet) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderLen {
		return fail("short", "packet of %d bytes is shorter than the %d-byte header", len(b), HeaderLen)
	}
	ver := b[0] >> 5
	if ver != Version {
		return fail("version", "version %d, expected %d", ver, Version)
	}
	n := int(b[3])
	auth := b[1]&0x04 != 0
	min := HeaderLen
	if auth {
		min = HeaderLen + 2
	}
	if n < min {
		return fail("length", "length field %d is below the minimum of %d", n, min)
	}
	if n > len(b) {
		return fail("short", "length field %d is beyond the %d bytes received", n, len(b))
	}
	q := Packet{
		Version:           ver,
		Diag:              Diag(b[0] & 0x1f),
		State:             State(b[1] >> 6),
		Poll:              b[1]&0x20 != 0,
		Final:             b[1]&0x10 != 0,
		ControlPlaneIndep: b[1]&0x08 != 0,
		Demand:            b[1]&0x02 != 0,
		Multipoint:        b[1]&0x01 != 0,
		DetectMult:        b[2],
		MyDisc:            binary.BigEndian.Uint32(b[4:]),
		YourDisc:          binary.BigEndian.Uint32(b[8:]),
		DesiredMinTx:      binary.BigEndian.Uint32(b[12:]),
		RequiredMinRx:     binary.BigEndian.Uint32(b[16:]),
		RequiredMinEchoRx: binary.BigEndian.Uint32(b[20:]),
	}
	if auth {
		a := b[HeaderLen:n]
		if int(a[1]) > len(a) || a[1] < 2 {
			return fail("auth_len", "authentication length %d does not fit the %d bytes of the section", a[1], len(a))
		}
		q.Auth = append([]byte(nil), a...)
	}
	switch {
	case q.DetectMult == 0:
		return fail("detect_mult", "detect multiplier is zero")
	case q.Multipoint:
		return fail("multipoint", "multipoint bit is set")
	case q.MyDisc == 0:
		return fail("my_disc", "my discriminator is zero")
	}
	*p = q
	return nil
}

// String shows a packet the way tcpdump-like tools do, for logs and tests.
func (p *Packet) String() string {
	var fl []string
	for _, f := range []struct {
		set  bool
		name string
	}{{p.Poll, "P"}, {p.Final, "F"}, {p.ControlPlaneIndep, "C"}, {len(p.Auth) > 0, "A"}, {p.Demand, "D"}, {p.Multipoint, "M"}} {
		if f.set {
			fl = append(fl, f.name)
		}
	}
	return fmt.Sprintf("%s [%s] diag=%d mult=%d my=%d your=%d tx=%dus rx=%dus echo=%dus",
		p.State, strings.Join(fl, ""), uint8(p.Diag), p.DetectMult, p.MyDisc, p.YourDisc, p.DesiredMinTx, p.RequiredMinRx, p.RequiredMinEchoRx)
}
