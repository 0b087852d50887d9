// Package wire is the datagram codec of vigil's connection sync (package
// ctsync, keepalived's lvs_sync_daemon feature): a versioned header with the
// sync id, the sender's epoch and sequence number and its send time, then
// entries (conntrack flows or deletes) packed many per datagram, then an
// optional truncated HMAC-SHA256 tag over everything before it. The format is
// vigil's own (IPVS's sync protocol carries IPVS connections, not conntrack
// entries); docs/architecture.md ("Connection sync") describes it byte by byte.
//
// The codec is pure: no I/O, no clock, no goroutines. Decoding never panics;
// every malformed input is an error that names its Reason, which the receiver
// counts.
package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"vigil/internal/ctflow"

	"vigil/internal/enum"
)

// Version is the only version this codec speaks.
const Version = 1

// Magic opens every datagram ("VC", vigil conntrack).
var Magic = [2]byte{'V', 'C'}

// HeaderLen is the fixed header's length; TagLen the HMAC tag's.
const (
	HeaderLen = 28
	TagLen    = 16
)

// Type is a datagram's type.
type Type uint8

const (
	// TypeUpdate carries flows to add or update in the receiver's copy.
	TypeUpdate Type = 1
	// TypeDelete carries the keys of flows the master's kernel destroyed.
	TypeDelete Type = 2
	// TypeFullRequest asks the master for its whole table (no payload).
	TypeFullRequest Type = 3
	// TypeFullBegin opens a full table: the TypeUpdate datagrams that
	// follow, until TypeFullEnd, are the master's whole table.
	TypeFullBegin Type = 4
	// TypeFullEnd closes a full table; its payload is the number of
	// entries sent in it (uint32).
	TypeFullEnd Type = 5
	// TypeHello is sent by every Syncer each second (no payload): peers
	// learn who is there and who is master.
	TypeHello Type = 6
)

var typeNames = [...]string{
	TypeUpdate: "update", TypeDelete: "delete", TypeFullRequest: "full-request",
	TypeFullBegin: "full-begin", TypeFullEnd: "full-end", TypeHello: "hello",
}

func (t Type) String() string { return enum.Name(typeNames[:], t, "type") }

// Header flags.
const (
	FlagAuth   = 0x01 // an HMAC tag ends the datagram
	FlagMaster = 0x02 // the sender is master
	knownFlags = FlagAuth | FlagMaster
)

// Header is a datagram's fixed header.
type Header struct {
	Type   Type
	SyncID uint8
	Flags  uint8
	Count  uint16 // entries in the payload (TypeUpdate, TypeDelete)
	Epoch  uint64 // the sender's incarnation: its start time in ns, increasing across restarts
	Seq    uint32 // per-datagram sequence number within Epoch, from 1
	SentNS int64  // send time, unix ns, for the receiver's lag
}

// ClockSlack is how much older than the receiver's start the first
// datagram it takes from a sender (or from a sender's new epoch) may have
// been sent, by the header's send time (which the HMAC covers): it bounds
// how old a replayed datagram a restarted receiver can be made to take,
// since its anti-replay window knows nothing of an epoch it has not heard.
// Both directors' clocks must agree within it, or a receiver refuses
// (ReasonStale) a sender whose clock is behind, for the difference after
// its own start.
const ClockSlack = 30 * time.Second

// Reason names why a datagram was refused; the receiver counts by it.
type Reason string

const (
	ReasonShort     Reason = "short"           // shorter than its header, entries or tag
	ReasonMagic     Reason = "magic"           // not a vigil sync datagram
	ReasonVersion   Reason = "version"         // another version
	ReasonType      Reason = "type"            // unknown type
	ReasonFlags     Reason = "flags"           // unknown flags
	ReasonFamily    Reason = "family"          // an entry's family is neither 4 nor 6
	ReasonTrailing  Reason = "trailing"        // bytes after the last entry
	ReasonCount     Reason = "count"           // count on a type that carries none
	ReasonAuth      Reason = "auth"            // bad or missing HMAC tag
	ReasonNoAuth    Reason = "unexpected-auth" // a tag where no key is configured
	ReasonSyncID    Reason = "sync-id"         // another sync id (set by the receiver)
	ReasonReplay    Reason = "replay"          // old epoch or sequence already seen (receiver)
	ReasonInterface Reason = "interface"       // arrived on another interface (receiver)
	ReasonSource    Reason = "source"          // from an address that is not a peer (receiver)
	ReasonTTL       Reason = "ttl"             // arrived with another TTL or hop limit (receiver)
	ReasonSelf      Reason = "self"            // our own datagram looped back (receiver)
	ReasonStale     Reason = "stale"           // a sender's first datagram (of an epoch) sent long before the receiver started (receiver)
)

// Reasons lists every Reason, for status and metrics.
func Reasons() []Reason {
	return []Reason{ReasonShort, ReasonMagic, ReasonVersion, ReasonType, ReasonFlags, ReasonFamily,
		ReasonTrailing, ReasonCount, ReasonAuth, ReasonNoAuth, ReasonSyncID, ReasonReplay,
		ReasonInterface, ReasonSource, ReasonTTL, ReasonSelf, ReasonStale}
}

// Error is a decoding error with its Reason.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string { return "ctsync/wire: " + string(e.Reason) + ": " + e.Detail }

func errf(r Reason, format string, args ...any) error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns err's Reason, or "" when err is not an *Error.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

// The flow types are internal/ctflow's, which internal/ctnl reads and
// writes through ctnetlink; here they are what an update carries.
type (
	Tuple = ctflow.Tuple
	Key   = ctflow.Key
	Entry = ctflow.Entry
	NAT   = ctflow.NAT
)

// Entry sizes on the wire.
const (
	entryFixed  = 30
	deleteFixed = 8
)

// EntryLen is an Entry's encoded length.
func EntryLen(is6 bool) int {
	if is6 {
		return entryFixed + 64
	}
	return entryFixed + 16
}

// DeleteLen is a delete's encoded length.
func DeleteLen(is6 bool) int {
	if is6 {
		return deleteFixed + 32
	}
	return deleteFixed + 8
}

func family(is6 bool) byte {
	if is6 {
		return 6
	}
	return 4
}

func putAddr(b []byte, a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return append(b, v[:]...)
	}
	v := a.As16()
	return append(b, v[:]...)
}

// AppendHeader appends h's encoding to b.
func AppendHeader(b []byte, h Header) []byte {
	b = append(b, Magic[0], Magic[1], Version, byte(h.Type), h.SyncID, h.Flags)
	b = binary.BigEndian.AppendUint16(b, h.Count)
	b = binary.BigEndian.AppendUint64(b, h.Epoch)
	b = binary.BigEndian.AppendUint32(b, h.Seq)
	return binary.BigEndian.AppendUint64(b, uint64(h.SentNS))
}

// AppendEntry appends e's encoding to b. e must be Valid.
func AppendEntry(b []byte, e *Entry) []byte {
	b = append(b, family(e.Is6()), e.Proto, e.TCPState, e.WScaleOrig, e.WScaleReply, e.FlagsOrig, e.FlagsReply, 0)
	b = binary.BigEndian.AppendUint32(b, e.Status)
	b = binary.BigEndian.AppendUint32(b, e.Timeout)
	b = binary.BigEndian.AppendUint32(b, e.Mark)
	b = binary.BigEndian.AppendUint16(b, e.Zone)
	b = binary.BigEndian.AppendUint16(b, e.Orig.SrcPort)
	b = binary.BigEndian.AppendUint16(b, e.Orig.DstPort)
	b = binary.BigEndian.AppendUint16(b, e.Reply.SrcPort)
	b = binary.BigEndian.AppendUint16(b, e.Reply.DstPort)
	b = putAddr(b, e.Orig.Src)
	b = putAddr(b, e.Orig.Dst)
	b = putAddr(b, e.Reply.Src)
	return putAddr(b, e.Reply.Dst)
}

// AppendDelete appends k's encoding to b. k must be Valid.
func AppendDelete(b []byte, k *Key) []byte {
	b = append(b, family(k.Is6()), k.Proto)
	b = binary.BigEndian.AppendUint16(b, k.Zone)
	b = binary.BigEndian.AppendUint16(b, k.Orig.SrcPort)
	b = binary.BigEndian.AppendUint16(b, k.Orig.DstPort)
	b = putAddr(b, k.Orig.Src)
	return putAddr(b, k.Orig.Dst)
}

// AppendUint32 appends a TypeFullEnd payload.
func AppendUint32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// Seal finishes a datagram: with a key it sets FlagAuth in the header and
// appends the tag over everything before it. b must start with a header.
func Seal(b []byte, key []byte) []byte {
	if len(key) == 0 {
		return b
	}
	b[5] |= FlagAuth
	return append(b, tag(key, b)...)
}

func tag(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)[:TagLen]
}

// Datagram is a decoded datagram. Entries, Deletes and Total are set by
// type; their slices are reused by the next Decode into the same Datagram.
type Datagram struct {
	Header
	Entries []Entry // TypeUpdate
	Deletes []Key   // TypeDelete
	Total   uint32  // TypeFullEnd
}

// Decode decodes b into d, checking the tag with key (nil: the datagram
// must carry none). On error d is unspecified.
func Decode(d *Datagram, b []byte, key []byte) error {
	if len(b) < HeaderLen {
		return errf(ReasonShort, "%d bytes, header needs %d", len(b), HeaderLen)
	}
	if b[0] != Magic[0] || b[1] != Magic[1] {
		return errf(ReasonMagic, "%#02x%02x", b[0], b[1])
	}
	if b[2] != Version {
		return errf(ReasonVersion, "version %d, want %d", b[2], Version)
	}
	d.Type = Type(b[3])
	d.SyncID = b[4]
	d.Flags = b[5]
	d.Count = binary.BigEndian.Uint16(b[6:])
	d.Epoch = binary.BigEndian.Uint64(b[8:])
	d.Seq = binary.BigEndian.Uint32(b[16:])
	d.SentNS = int64(binary.BigEndian.Uint64(b[20:]))
	d.Entries, d.Deletes, d.Total = d.Entries[:0], d.Deletes[:0], 0
	if d.Flags&^knownFlags != 0 {
		return errf(ReasonFlags, "%#02x", d.Flags)
	}
	switch {
	case d.Flags&FlagAuth != 0 && len(key) == 0:
		return errf(ReasonNoAuth, "datagram has a tag, no key configured")
	case d.Flags&FlagAuth == 0 && len(key) != 0:
		return errf(ReasonAuth, "no tag, a key is configured")
	case d.Flags&FlagAuth != 0:
		if len(b) < HeaderLen+TagLen {
			return errf(ReasonShort, "%d bytes, header and tag need %d", len(b), HeaderLen+TagLen)
		}
		n := len(b) - TagLen
		if !hmac.Equal(b[n:], tag(key, b[:n])) {
			return errf(ReasonAuth, "tag does not match")
		}
		b = b[:n]
	}
	p := b[HeaderLen:]
	var err error
	switch d.Type {
	case TypeUpdate:
		if p, err = decodeEach(&d.Entries, p, d.Count, "entry", decodeEntry); err != nil {
			return err
		}
	case TypeDelete:
		if p, err = decodeEach(&d.Deletes, p, d.Count, "delete", decodeDelete); err != nil {
			return err
		}
	case TypeFullEnd:
		if d.Count != 0 {
			return errf(ReasonCount, "count %d on %s", d.Count, d.Type)
		}
		if len(p) < 4 {
			return errf(ReasonShort, "full-end needs 4 bytes of payload, has %d", len(p))
		}
		d.Total = binary.BigEndian.Uint32(p)
		p = p[4:]
	case TypeFullRequest, TypeFullBegin, TypeHello:
		if d.Count != 0 {
			return errf(ReasonCount, "count %d on %s", d.Count, d.Type)
		}
	default:
		return errf(ReasonType, "%d", uint8(d.Type))
	}
	if len(p) != 0 {
		return errf(ReasonTrailing, "%d bytes after the payload", len(p))
	}
	return nil
}

func addrLen(fam byte) (int, error) {
	switch fam {
	case 4:
		return 4, nil
	case 6:
		return 16, nil
	}
	return 0, errf(ReasonFamily, "family %d", fam)
}

func getAddr(b []byte, n int) netip.Addr {
	if n == 4 {
		return netip.AddrFrom4([4]byte(b))
	}
	return netip.AddrFrom16([16]byte(b))
}

// decodeEach decodes count items off p with dec, appends them to out, and
// returns what follows them; what names an item in the error.
func decodeEach[T any](out *[]T, p []byte, count uint16, what string, dec func(*T, []byte) ([]byte, error)) ([]byte, error) {
	for i := range int(count) {
		var x T
		var err error
		if p, err = dec(&x, p); err != nil {
			return nil, fmt.Errorf("%s %d: %w", what, i, err)
		}
		*out = append(*out, x)
	}
	return p, nil
}

// itemAddrLen checks that p holds an item (what: entry or delete) of
// fixed bytes and addrs addresses of the family its first byte names, and
// returns the length of those addresses.
func itemAddrLen(p []byte, what string, fixed, addrs int) (int, error) {
	if len(p) < fixed {
		return 0, errf(ReasonShort, "%d bytes, %s needs %d", len(p), what, fixed)
	}
	n, err := addrLen(p[0])
	if err != nil {
		return 0, err
	}
	if len(p) < fixed+addrs*n {
		return 0, errf(ReasonShort, "%d bytes, IPv%d %s needs %d", len(p), p[0], what, fixed+addrs*n)
	}
	return n, nil
}

func decodeEntry(e *Entry, p []byte) ([]byte, error) {
	n, err := itemAddrLen(p, "entry", entryFixed, 4)
	if err != nil {
		return nil, err
	}
	if p[7] != 0 {
		return nil, errf(ReasonFlags, "reserved entry byte %#02x", p[7])
	}
	e.Proto, e.TCPState, e.WScaleOrig, e.WScaleReply, e.FlagsOrig, e.FlagsReply = p[1], p[2], p[3], p[4], p[5], p[6]
	e.Status = binary.BigEndian.Uint32(p[8:])
	e.Timeout = binary.BigEndian.Uint32(p[12:])
	e.Mark = binary.BigEndian.Uint32(p[16:])
	e.Zone = binary.BigEndian.Uint16(p[20:])
	e.Orig.SrcPort = binary.BigEndian.Uint16(p[22:])
	e.Orig.DstPort = binary.BigEndian.Uint16(p[24:])
	e.Reply.SrcPort = binary.BigEndian.Uint16(p[26:])
	e.Reply.DstPort = binary.BigEndian.Uint16(p[28:])
	a := p[entryFixed:]
	e.Orig.Src, e.Orig.Dst = getAddr(a, n), getAddr(a[n:], n)
	e.Reply.Src, e.Reply.Dst = getAddr(a[2*n:], n), getAddr(a[3*n:], n)
	return p[entryFixed+4*n:], nil
}

func decodeDelete(k *Key, p []byte) ([]byte, error) {
	n, err := itemAddrLen(p, "delete", deleteFixed, 2)
	if err != nil {
		return nil, err
	}
	k.Proto = p[1]
	k.Zone = binary.BigEndian.Uint16(p[2:])
	k.Orig.SrcPort = binary.BigEndian.Uint16(p[4:])
	k.Orig.DstPort = binary.BigEndian.Uint16(p[6:])
	a := p[deleteFixed:]
	k.Orig.Src, k.Orig.Dst = getAddr(a, n), getAddr(a[n:], n)
	return p[deleteFixed+2*n:], nil
}

// NATOf derives e's NAT bindings from its tuples.
func NATOf(e *Entry) NAT { return ctflow.NATOf(e) }
