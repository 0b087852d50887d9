package bfd

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"vigil/bfd/wire"
)

// Defaults of keepalived's bfd_instance (keepalived.conf(5)).
const (
	DefaultMinRx      = 10 * time.Millisecond
	DefaultMinTx      = 10 * time.Millisecond
	DefaultIdleTx     = time.Second
	DefaultMultiplier = 5
)

// Config is one session's configuration: keepalived's bfd_instance.
type Config struct {
	Name string
	// Peer is neighbor_ip; Local is source_ip (invalid: any local address).
	Peer, Local netip.Addr
	// MinRx is bfd.RequiredMinRxInterval, MinTx bfd.DesiredMinTxInterval
	// while Up, IdleTx bfd.DesiredMinTxInterval while not Up (RFC 5880
	// 6.8.3 wants at least one second there; keepalived lets idle_tx
	// choose). Zero means the keepalived default.
	MinRx, MinTx, IdleTx time.Duration
	Multiplier           uint8 // bfd.DetectMult; 0 means 5
	// Passive: send nothing until the peer has been heard (RFC 5880 6.1).
	Passive bool
	// MaxHops is the largest TTL reduction accepted: a packet must arrive
	// with TTL >= 255-MaxHops; 255 turns the check off. RFC 5881 section 5
	// (single hop) requires 255, keepalived's max_hops default of 0.
	MaxHops uint8
}

func (c *Config) applyDefaults() {
	if c.MinRx <= 0 {
		c.MinRx = DefaultMinRx
	}
	if c.MinTx <= 0 {
		c.MinTx = DefaultMinTx
	}
	if c.IdleTx <= 0 {
		c.IdleTx = DefaultIdleTx
	}
	if c.Multiplier == 0 {
		c.Multiplier = DefaultMultiplier
	}
}

// Validate reports a configuration the engine cannot run.
func (c Config) Validate() error {
	c.applyDefaults()
	switch {
	case c.Name == "":
		return fmt.Errorf("bfd: session without a name")
	case !c.Peer.IsValid():
		return fmt.Errorf("bfd %s: no neighbor address", c.Name)
	case c.Local.IsValid() && c.Local.Is4() != c.Peer.Is4():
		return fmt.Errorf("bfd %s: source %v and neighbor %v are of different families", c.Name, c.Local, c.Peer)
	case c.MinRx > maxInterval || c.MinTx > maxInterval || c.IdleTx > maxInterval:
		return fmt.Errorf("bfd %s: intervals must be below %v", c.Name, maxInterval)
	}
	return nil
}

// maxInterval is what fits the 32-bit microsecond fields.
const maxInterval = time.Duration(1<<32-1) * time.Microsecond

// Transition is a change of a session's state.
type Transition struct {
	Session  string
	From, To wire.State
	// Diag is the local diagnostic set with the change (bfd.LocalDiag).
	Diag wire.Diag
	At   time.Time
	// Reason says in plain words why, for logs and status.
	Reason string
}

// Ready is what the session asks its caller to do.
type Ready struct {
	Send        []wire.Packet
	Transitions []Transition
}

// Session is one BFD session (RFC 5880 section 6.8.1's state variables)
// in asynchronous mode, without demand mode or the echo function.
type Session struct {
	cfg Config
	rnd *rand.Rand

	state       wire.State
	remoteState wire.State
	localDisc   uint32
	remoteDisc  uint32
	localDiag   wire.Diag
	// desiredTx is the bfd.DesiredMinTxInterval we advertise; txUsed is
	// the one we pace ourselves with, which lags an increase until the
	// Poll Sequence that announces it ends (6.8.3).
	desiredTx, txUsed time.Duration
	remoteMinRx       time.Duration
	remoteDesiredTx   time.Duration
	remoteMult        uint8
	remoteDemand      bool
	polling           bool
	finalDue          bool // a Final answer is owed
	sendNow           bool

	now      time.Time // of the latest step
	nextTx   time.Time
	lastTx   time.Time // of the latest periodic packet (zero: none yet)
	detectAt time.Time // zero while no detection timer runs
	// graced: the detection time was already extended once for a stall
	// of the caller (Set.Resumed) since the last packet received.
	graced bool

	// statistics, for status, metrics and doctor
	since          time.Time
	sent, received uint64
	lastRx         time.Time
	flaps          uint64 // Up -> anything
	lastDown       Transition
	drops          map[string]uint64
	ready          Ready
}

func newSession(cfg Config, disc uint32, rnd *rand.Rand, now time.Time) *Session {
	cfg.applyDefaults()
	s := &Session{cfg: cfg, rnd: rnd, state: wire.Down, remoteState: wire.Down, localDisc: disc,
		desiredTx: cfg.IdleTx, txUsed: cfg.IdleTx, remoteMinRx: time.Microsecond, since: now, drops: map[string]uint64{}}
	s.nextTx, s.now = now, now
	return s
}

// Name is the session's name (the bfd_instance's).
func (s *Session) Name() string { return s.cfg.Name }

// Config returns the session's configuration, defaults applied.
func (s *Session) Config() Config { return s.cfg }

// State is the session's state.
func (s *Session) State() wire.State { return s.state }

// Up reports whether the session is Up.
func (s *Session) Up() bool { return s.state == wire.Up }

// txInterval is the interval between periodic packets before jitter
// (6.8.7): the larger of what we want and what the peer can receive.
func (s *Session) txInterval() time.Duration { return max(s.txUsed, s.remoteMinRx) }

// DetectTime is the asynchronous detection time (6.8.4): the peer's
// multiplier times the larger of our RequiredMinRx and its DesiredMinTx.
// Zero until the peer has been heard.
func (s *Session) DetectTime() time.Duration {
	if s.remoteMult == 0 {
		return 0
	}
	return time.Duration(s.remoteMult) * max(s.cfg.MinRx, s.remoteDesiredTx)
}

// jitterRange is 6.8.7's bounds on a periodic transmit's gap, as
// fractions of the interval: reduced by 0-25%, or 10-25% with a
// multiplier of 1.
func (s *Session) jitterRange() (lo, hi float64) {
	if s.cfg.Multiplier == 1 {
		return 0.75, 0.9
	}
	return 0.75, 1.0
}

// jitter applies 6.8.7's random reduction to d.
func (s *Session) jitter(d time.Duration) time.Duration {
	lo, hi := s.jitterRange()
	f := hi
	if s.rnd != nil {
		f = lo + (hi-lo)*s.rnd.Float64()
	}
	return time.Duration(float64(d) * f)
}

// mayTransmit is 6.8.7's rule for periodic packets.
func (s *Session) mayTransmit() bool {
	if s.cfg.Passive && s.remoteDisc == 0 {
		return false
	}
	if s.remoteMinRx == 0 {
		return false
	}
	return true
}

// Next is the session's next deadline: a transmission or the detection
// timer. Zero means none.
func (s *Session) Next() time.Time {
	var t time.Time
	if s.mayTransmit() || s.finalDue {
		t = s.nextTx
		if s.sendNow || s.finalDue {
			t = s.now // due at once
		}
	}
	if !s.detectAt.IsZero() && (t.IsZero() || s.detectAt.Before(t)) {
		t = s.detectAt
	}
	return t
}

func (s *Session) setState(now time.Time, to wire.State, diag wire.Diag, reason string) {
	if to == s.state {
		return
	}
	from := s.state
	s.state, s.localDiag = to, diag
	tr := Transition{Session: s.cfg.Name, From: from, To: to, Diag: diag, At: now, Reason: reason}
	if from == wire.Up {
		s.flaps++
	}
	if to == wire.Down || to == wire.AdminDown {
		s.lastDown = tr
	}
	s.since = now
	s.ready.Transitions = append(s.ready.Transitions, tr)
	s.sendNow = true
	if to == wire.Up {
		// Now Up: pace at min_tx, announced with a Poll Sequence (6.8.3).
		// A decrease takes effect at once.
		s.desiredTx = s.cfg.MinTx
		s.txUsed = min(s.txUsed, s.desiredTx)
		s.polling = true
	} else {
		// Not Up: back to the idle rate, no Poll Sequence needed.
		s.desiredTx, s.txUsed, s.polling = s.cfg.IdleTx, s.cfg.IdleTx, false
	}
}

// receive runs 6.8.6 from "set bfd.RemoteDiscr" on, for a packet that
// passed the checks of Set.Receive.
func (s *Session) receive(now time.Time, p *wire.Packet) {
	s.now = now
	s.received++
	s.lastRx = now
	s.remoteDisc = p.MyDisc
	s.remoteState = p.State
	s.remoteDemand = p.Demand
	s.remoteMult = p.DetectMult
	s.remoteDesiredTx = time.Duration(p.DesiredMinTx) * time.Microsecond
	oldTx := s.txInterval()
	s.remoteMinRx = time.Duration(p.RequiredMinRx) * time.Microsecond
	if p.Final && s.polling {
		s.polling = false
		s.txUsed = s.desiredTx
	}
	if p.Poll {
		s.finalDue = true
	}
	if iv := s.txInterval(); iv < oldTx && s.nextTx.After(now.Add(iv)) {
		s.nextTx = now.Add(s.jitter(iv))
	}
	s.detectAt = now.Add(s.DetectTime())
	s.graced = false
	s.coalesceTx(now)

	if s.state == wire.AdminDown {
		return
	}
	if p.State == wire.AdminDown {
		if s.state != wire.Down {
			s.setState(now, wire.Down, wire.DiagNeighborDown, "neighbor is administratively down")
		}
		return
	}
	switch s.state {
	case wire.Down:
		switch p.State {
		case wire.Down:
			s.setState(now, wire.Init, wire.DiagNone, "neighbor is Down")
		case wire.Init:
			s.setState(now, wire.Up, wire.DiagNone, "neighbor is Init")
		}
	case wire.Init:
		if p.State == wire.Init || p.State == wire.Up {
			s.setState(now, wire.Up, wire.DiagNone, "neighbor is "+p.State.String())
		}
	case wire.Up:
		if p.State == wire.Down {
			s.setState(now, wire.Down, wire.DiagNeighborDown, fmt.Sprintf("neighbor signaled Down (its diagnostic: %s)", p.Diag))
		}
	}
}

// coalesceTx moves a periodic transmit that is due soon to now, the
// moment of a receive, when the gap since the last one is already inside
// 6.8.7's jitter window: the caller is awake for the receive anyway, so
// one wake-up serves both and the timer is not woken for the transmit.
// The gap stays between the window's lower bound and the jittered
// deadline already drawn (never longer), and the moment is as random as
// the peer's own jittered transmits. The peer's detection time depends
// only on the longest gap, which does not grow.
func (s *Session) coalesceTx(now time.Time) {
	if s.lastTx.IsZero() || !s.mayTransmit() || !now.Before(s.nextTx) {
		return
	}
	lo, _ := s.jitterRange()
	if earliest := s.lastTx.Add(time.Duration(float64(s.txInterval()) * lo)); !now.Before(earliest) {
		s.nextTx = now
	}
}

// resumed gives the peer a detection time from now when the detection
// timer ran out while the caller could not run (from..now, a stall longer
// than the peer's transmit interval): see Set.Resumed. Once per silence.
func (s *Session) resumed(now, from time.Time) {
	if s.detectAt.IsZero() || now.Before(s.detectAt) || s.graced || s.remoteMult == 0 {
		return
	}
	if now.Sub(from) <= max(s.cfg.MinRx, s.remoteDesiredTx) {
		return // late by less than one of the peer's packets: nothing it sent can be in flight
	}
	s.detectAt, s.graced = now.Add(s.DetectTime()), true
}

// advance fires the timers due at now.
func (s *Session) advance(now time.Time) {
	s.now = now
	if !s.detectAt.IsZero() && !now.Before(s.detectAt) {
		detect := s.DetectTime()
		s.detectAt = time.Time{}
		if s.state == wire.Init || s.state == wire.Up {
			s.setState(now, wire.Down, wire.DiagDetectExpired, fmt.Sprintf("nothing received for %v (detection time)", detect))
		}
		// 6.8.1: the remote discriminator is forgotten when a detection
		// time passes in silence, and so is what the peer asked for.
		s.remoteDisc, s.remoteMult, s.remoteDesiredTx = 0, 0, 0
		s.remoteMinRx = time.Microsecond
		s.remoteState = wire.Down
	}
	if s.finalDue {
		s.emit(false, true)
		s.finalDue = false
	}
	if s.mayTransmit() && (s.sendNow || !now.Before(s.nextTx)) {
		s.emit(s.polling, false)
		s.sendNow = false
		s.lastTx = now
		s.nextTx = now.Add(s.jitter(s.txInterval()))
	} else if s.sendNow && !s.mayTransmit() {
		s.sendNow = false
	}
}

func (s *Session) emit(poll, final bool) {
	s.sent++
	s.ready.Send = append(s.ready.Send, s.packet(poll, final))
}

func (s *Session) packet(poll, final bool) wire.Packet {
	return wire.Packet{
		Version: wire.Version, Diag: s.localDiag, State: s.state, Poll: poll, Final: final,
		DetectMult: s.cfg.Multiplier, MyDisc: s.localDisc, YourDisc: s.remoteDisc,
		DesiredMinTx:  micros(s.desiredTx),
		RequiredMinRx: micros(s.cfg.MinRx),
	}
}

func micros(d time.Duration) uint32 { return uint32(d / time.Microsecond) }

// setAdminDown moves the session to AdminDown (diag 7) or back to Down.
func (s *Session) setAdminDown(now time.Time, down bool) {
	switch {
	case down && s.state != wire.AdminDown:
		s.setState(now, wire.AdminDown, wire.DiagAdminDown, "administratively down")
		s.detectAt = time.Time{}
	case !down && s.state == wire.AdminDown:
		s.setState(now, wire.Down, wire.DiagNone, "administratively enabled")
	}
}

// Status is a snapshot of a session for status, metrics and doctor.
type Status struct {
	Name        string
	Peer, Local netip.Addr
	State       wire.State
	RemoteState wire.State
	LocalDisc   uint32
	RemoteDisc  uint32
	// TxInterval is the negotiated transmit interval (before jitter);
	// RxInterval the interval the peer sends at, the detection base.
	TxInterval, RxInterval time.Duration
	DetectTime             time.Duration
	RemoteMultiplier       uint8
	// RemoteMinRx and RemoteMinTx are what the peer last asked for.
	RemoteMinRx, RemoteMinTx time.Duration
	Since                    time.Time
	LastRx                   time.Time
	Sent, Received           uint64
	Flaps                    uint64
	// LastDown is the latest change to Down or AdminDown (zero At if none).
	LastDown Transition
	// Drops counts packets for this session dropped, by reason.
	Drops map[string]uint64
	Cfg   Config
}

// Status returns a snapshot of the session.
func (s *Session) Status() Status {
	st := Status{Name: s.cfg.Name, Peer: s.cfg.Peer, Local: s.cfg.Local, State: s.state, RemoteState: s.remoteState,
		LocalDisc: s.localDisc, RemoteDisc: s.remoteDisc, TxInterval: s.txInterval(), DetectTime: s.DetectTime(),
		RemoteMultiplier: s.remoteMult, Since: s.since, LastRx: s.lastRx, Sent: s.sent, Received: s.received,
		Flaps: s.flaps, LastDown: s.lastDown, Drops: map[string]uint64{}, Cfg: s.cfg}
	if s.remoteMult != 0 {
		st.RxInterval = max(s.cfg.MinRx, s.remoteDesiredTx)
		st.RemoteMinRx, st.RemoteMinTx = s.remoteMinRx, s.remoteDesiredTx
	}
	for k, v := range s.drops {
		st.Drops[k] = v
	}
	return st
}
