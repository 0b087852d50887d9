package bfd

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"vigil/bfd/wire"
)

// Packet is a received BFD Control packet with what the socket saw.
type Packet struct {
	Data     []byte
	Src, Dst netip.Addr
	// TTL is the IPv4 TTL or IPv6 hop limit it arrived with.
	TTL int
}

// Outgoing is a packet a session asks to be sent.
type Outgoing struct {
	Session   string
	Src, Peer netip.Addr
	Packet    wire.Packet
}

// DropError is why Set.Receive dropped a packet; Reason is a stable word
// counted in metrics.
type DropError struct {
	Reason string
	Err    error
}

func (e *DropError) Error() string { return "bfd: dropped (" + e.Reason + "): " + e.Err.Error() }
func (e *DropError) Unwrap() error { return e.Err }

// The drop reasons Set.Receive adds to those of wire.Reason.
const (
	DropYourDisc    = "your_disc"    // your discriminator zero outside Down/AdminDown
	DropUnknownDisc = "unknown_disc" // your discriminator names no session
	DropSpoofedDisc = "spoofed_disc" // your discriminator names a session of another peer
	DropNoSession   = "no_session"   // no discriminator and no session for the addresses
	DropTTL         = "ttl"          // TTL / hop limit below 255 - max_hops
	DropAuth        = "auth"         // authentication is not supported
)

// Set is every BFD session of a node, demultiplexed as RFC 5880 section
// 6.3 says: by Your Discriminator, or by addresses while it is zero. It
// is a pure value the caller steps with received packets and time, and
// asks what to send; randomness (discriminators, jitter) comes from the
// source it is given.
type Set struct {
	rnd      *rand.Rand
	sessions []*Session
	byDisc   map[uint32]*Session
	drops    map[string]uint64
	// out and trs are Ready's results, reused: a steady session sends
	// every few milliseconds without allocating.
	out []Outgoing
	trs []Transition
}

// NewSet returns an empty set drawing randomness from rnd (nil: no jitter,
// discriminators counted from 1, for tests).
func NewSet(rnd *rand.Rand) *Set {
	return &Set{rnd: rnd, byDisc: map[uint32]*Session{}, drops: map[string]uint64{}}
}

// Add starts a session in state Down.
func (s *Set) Add(now time.Time, cfg Config) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, o := range s.sessions {
		if o.cfg.Name == cfg.Name {
			return nil, fmt.Errorf("bfd: session %s exists", cfg.Name)
		}
		if o.cfg.Peer == cfg.Peer && (o.cfg.Local == cfg.Local || !o.cfg.Local.IsValid() || !cfg.Local.IsValid()) {
			return nil, fmt.Errorf("bfd %s: neighbor %v is already the neighbor of %s", cfg.Name, cfg.Peer, o.cfg.Name)
		}
	}
	var disc uint32
	for disc == 0 || s.byDisc[disc] != nil {
		if s.rnd != nil {
			disc = s.rnd.Uint32()
		} else {
			disc++
		}
	}
	ss := newSession(cfg, disc, s.rnd, now)
	s.sessions = append(s.sessions, ss)
	s.byDisc[disc] = ss
	return ss, nil
}

// Remove stops a session at once, without telling the peer (see
// AdminDown for that).
func (s *Set) Remove(name string) {
	for i, ss := range s.sessions {
		if ss.cfg.Name == name {
			delete(s.byDisc, ss.localDisc)
			s.sessions = slices.Delete(s.sessions, i, i+1)
			return
		}
	}
}

// Session returns the named session, or nil.
func (s *Set) Session(name string) *Session {
	for _, ss := range s.sessions {
		if ss.cfg.Name == name {
			return ss
		}
	}
	return nil
}

// Sessions lists the sessions in the order they were added.
func (s *Set) Sessions() []*Session { return slices.Clone(s.sessions) }

// AdminDown sets every session (or the named one) to AdminDown, or back.
func (s *Set) AdminDown(now time.Time, name string, down bool) {
	for _, ss := range s.sessions {
		if name == "" || ss.cfg.Name == name {
			ss.setAdminDown(now, down)
		}
	}
}

// Drops returns the count of dropped packets by reason.
func (s *Set) Drops() map[string]uint64 {
	out := make(map[string]uint64, len(s.drops))
	for k, v := range s.drops {
		out[k] = v
	}
	return out
}

func (s *Set) drop(ss *Session, reason string, err error) error {
	s.drops[reason]++
	if ss != nil {
		ss.drops[reason]++
	}
	return &DropError{Reason: reason, Err: err}
}

// Receive runs the reception checks of RFC 5880 section 6.8.6 and RFC
// 5881 section 5, then hands the packet to its session. A dropped packet
// changes no session; the error says why.
func (s *Set) Receive(now time.Time, rp Packet) error {
	var p wire.Packet
	if err := p.UnmarshalBinary(rp.Data); err != nil {
		return s.drop(nil, wire.Reason(err), err)
	}
	src := rp.Src.Unmap()
	var ss *Session
	if p.YourDisc != 0 {
		ss = s.byDisc[p.YourDisc]
		if ss == nil {
			return s.drop(nil, DropUnknownDisc, fmt.Errorf("your discriminator %d from %v names no session", p.YourDisc, src))
		}
		if ss.cfg.Peer != src {
			return s.drop(ss, DropSpoofedDisc, fmt.Errorf("your discriminator %d is session %s's, whose neighbor is %v, not %v", p.YourDisc, ss.cfg.Name, ss.cfg.Peer, src))
		}
	} else {
		if p.State != wire.Down && p.State != wire.AdminDown {
			return s.drop(nil, DropYourDisc, fmt.Errorf("your discriminator is zero in state %s from %v", p.State, src))
		}
		for _, c := range s.sessions {
			if c.cfg.Peer == src && (!c.cfg.Local.IsValid() || !rp.Dst.IsValid() || c.cfg.Local == rp.Dst.Unmap()) {
				ss = c
				break
			}
		}
		if ss == nil {
			return s.drop(nil, DropNoSession, fmt.Errorf("no session for %v -> %v", src, rp.Dst))
		}
	}
	if ss.cfg.MaxHops != 255 && rp.TTL < 255-int(ss.cfg.MaxHops) {
		return s.drop(ss, DropTTL, fmt.Errorf("TTL %d from %v, need at least %d", rp.TTL, src, 255-int(ss.cfg.MaxHops)))
	}
	if len(p.Auth) > 0 {
		return s.drop(ss, DropAuth, errors.New("authentication is not supported"))
	}
	ss.receive(now, &p)
	return nil
}

// Resumed tells the sessions that the caller could not run from from
// (the deadline it should have woken at) until now: its host or process
// stalled. A detection time that ran out in that stall is not evidence
// against the peer when the stall was longer than the peer's transmit
// interval: the peer's packets of that time may still be on their way
// (a paused VM gets its timer interrupt and its queued packets back in
// no set order), or the peer stalled with us (the same host). Such a
// session gets one more detection time from now, once until a packet is
// received: a live peer is heard within it, a dead one is declared Down
// one detection time later than it would have been. Call it before
// Advance; the caller's packets that are due go out at the Advance.
func (s *Set) Resumed(now, from time.Time) {
	for _, ss := range s.sessions {
		ss.resumed(now, from)
	}
}

// Advance fires every timer due at now.
func (s *Set) Advance(now time.Time) {
	for _, ss := range s.sessions {
		ss.advance(now)
	}
}

// Next is the earliest deadline of any session (zero: none).
func (s *Set) Next() time.Time {
	t, _ := s.Deadline()
	return t
}

// Deadline is Next, and the earliest detection time of any session (zero:
// none): its expiry takes the session down unless a packet is waiting to
// be read, so the runner's passes after it read the sockets first even on
// time (epoll.Set.Arm's detectAt). A transmit time is not one.
func (s *Set) Deadline() (t, detect time.Time) {
	for _, ss := range s.sessions {
		if n := ss.Next(); !n.IsZero() && (t.IsZero() || n.Before(t)) {
			t = n
		}
		if d := ss.detectAt; !d.IsZero() && (detect.IsZero() || d.Before(detect)) {
			detect = d
		}
	}
	return t, detect
}

// Ready collects what the sessions ask for since the last call: packets
// to send and state changes, in session order. The slices are valid until
// the next call.
func (s *Set) Ready() ([]Outgoing, []Transition) {
	out, trs := s.out[:0], s.trs[:0]
	for _, ss := range s.sessions {
		for _, p := range ss.ready.Send {
			out = append(out, Outgoing{Session: ss.cfg.Name, Src: ss.cfg.Local, Peer: ss.cfg.Peer, Packet: p})
		}
		trs = append(trs, ss.ready.Transitions...)
		ss.ready.Send, ss.ready.Transitions = ss.ready.Send[:0], ss.ready.Transitions[:0]
	}
	s.out, s.trs = out, trs
	return out, trs
}

// MinTxInterval is the shortest negotiated transmit interval of the Up
// sessions (0: none Up), for measuring how late a caller's timer fires.
func (s *Set) MinTxInterval() time.Duration {
	var m time.Duration
	for _, ss := range s.sessions {
		if iv := ss.txInterval(); ss.state == wire.Up && (m == 0 || iv < m) {
			m = iv
		}
	}
	return m
}
