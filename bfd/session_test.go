package bfd

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"vigil/bfd/wire"
)

var (
	addrA = netip.MustParseAddr("192.0.2.1")
	addrB = netip.MustParseAddr("192.0.2.2")
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// pair is two nodes, each with one session to the other, on a link of
// fixed delay, in virtual time.
type pair struct {
	t      *testing.T
	now    time.Time
	a, b   *Set
	delay  time.Duration
	cut    bool
	flight []inflight
	trs    []Transition
	sent   map[string][]sentPkt
	// timerWakes counts the steps a set was advanced with nothing
	// received: the wake-ups its caller's timer costs.
	timerWakes map[*Set]int
}

type inflight struct {
	at  time.Time
	to  *Set
	pkt Packet
}

type sentPkt struct {
	at time.Time
	p  wire.Packet
}

func newPair(t *testing.T, ca, cb Config, seed uint64) *pair {
	p := &pair{t: t, now: t0, delay: 100 * time.Microsecond, sent: map[string][]sentPkt{}, timerWakes: map[*Set]int{}}
	p.a = NewSet(rand.New(rand.NewPCG(seed, 1)))
	p.b = NewSet(rand.New(rand.NewPCG(seed, 2)))
	if ca.Name == "" {
		ca.Name = "a"
	}
	if cb.Name == "" {
		cb.Name = "b"
	}
	ca.Peer, cb.Peer = addrB, addrA
	if _, err := p.a.Add(t0, ca); err != nil {
		t.Fatal(err)
	}
	if _, err := p.b.Add(t0, cb); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *pair) collect(from, to *Set, src, dst netip.Addr) {
	out, trs := from.Ready()
	p.trs = append(p.trs, trs...)
	for _, o := range out {
		p.sent[o.Session] = append(p.sent[o.Session], sentPkt{p.now, o.Packet})
		if p.cut {
			continue
		}
		b, err := o.Packet.MarshalBinary()
		if err != nil {
			p.t.Fatal(err)
		}
		p.flight = append(p.flight, inflight{p.now.Add(p.delay), to, Packet{Data: b, Src: src, Dst: dst, TTL: 255}})
	}
}

// run steps both nodes every 100 µs for d.
func (p *pair) run(d time.Duration) {
	end := p.now.Add(d)
	for p.now.Before(end) {
		p.now = p.now.Add(100 * time.Microsecond)
		var keep []inflight
		got := map[*Set]bool{}
		for _, f := range p.flight {
			if f.at.After(p.now) {
				keep = append(keep, f)
				continue
			}
			_ = f.to.Receive(p.now, f.pkt)
			got[f.to] = true
		}
		p.flight = keep
		for _, s := range []*Set{p.a, p.b} {
			if n := s.Next(); !n.IsZero() && !n.After(p.now) {
				s.Advance(p.now)
				if !got[s] {
					p.timerWakes[s]++
				}
			}
		}
		p.collect(p.a, p.b, addrA, addrB)
		p.collect(p.b, p.a, addrB, addrA)
	}
}

func (p *pair) state(s *Set) wire.State { return s.Sessions()[0].State() }

func (p *pair) lastTransition(name string) Transition {
	for i := len(p.trs) - 1; i >= 0; i-- {
		if p.trs[i].Session == name {
			return p.trs[i]
		}
	}
	return Transition{}
}

func fast() Config {
	return Config{MinRx: 10 * time.Millisecond, MinTx: 10 * time.Millisecond, Multiplier: 3}
}

// TestThreeWayHandshake: RFC 5880 6.2, Down -> Init -> Up on both sides,
// within two idle intervals.
func TestThreeWayHandshake(t *testing.T) {
	p := newPair(t, fast(), fast(), 1)
	p.run(2 * time.Second)
	if p.state(p.a) != wire.Up || p.state(p.b) != wire.Up {
		t.Fatalf("states %v %v, want Up Up; transitions %+v", p.state(p.a), p.state(p.b), p.trs)
	}
	for _, tr := range p.trs {
		if tr.To == wire.Up && tr.At.Sub(t0) > 50*time.Millisecond {
			t.Errorf("%s came Up after %v: both send at once at start, so it should take a few delays", tr.Session, tr.At.Sub(t0))
		}
	}
}

// TestPollSequenceSwitchesToFastRate: 6.8.3, once Up the session moves from
// the idle 1 s to min_tx with a Poll Sequence, answered by a Final.
func TestPollSequenceSwitchesToFastRate(t *testing.T) {
	p := newPair(t, fast(), fast(), 2)
	p.run(time.Second)
	var polls, finals int
	for _, s := range p.sent["a"] {
		if s.p.Poll {
			polls++
			if s.p.State != wire.Up || s.p.DesiredMinTx != 10000 {
				t.Errorf("poll in %v announcing %d us", s.p.State, s.p.DesiredMinTx)
			}
		}
		if s.p.Final {
			finals++
			if s.p.Poll {
				t.Error("a packet with both P and F")
			}
		}
	}
	if polls == 0 || finals == 0 {
		t.Fatalf("a sent %d polls and %d finals, want both", polls, finals)
	}
	// After the sequence every packet is plain and they come at 7.5-10 ms.
	sent := p.sent["a"]
	last := sent[len(sent)-40:]
	for i := 1; i < len(last); i++ {
		if last[i].p.Poll {
			t.Fatalf("still polling at %v", last[i].at.Sub(t0))
		}
		gap := last[i].at.Sub(last[i-1].at)
		if gap < 7500*time.Microsecond-100*time.Microsecond || gap > 10*time.Millisecond+100*time.Microsecond {
			t.Errorf("gap %v outside 75-100%% of 10 ms (6.8.7 jitter)", gap)
		}
	}
	st := p.a.Sessions()[0].Status()
	if st.TxInterval != 10*time.Millisecond || st.DetectTime != 30*time.Millisecond {
		t.Errorf("tx %v detect %v, want 10ms and 30ms", st.TxInterval, st.DetectTime)
	}
}

// TestDetectionTimeExpires: 6.8.4, a peer that falls silent is declared
// Down with diagnostic 1 one detection time after its last packet.
func TestDetectionTimeExpires(t *testing.T) {
	p := newPair(t, fast(), fast(), 3)
	p.run(time.Second)
	lastRx := p.a.Sessions()[0].Status().LastRx
	p.cut = true
	p.run(200 * time.Millisecond)
	if p.state(p.a) != wire.Down || p.state(p.b) != wire.Down {
		t.Fatalf("states %v %v after the cut", p.state(p.a), p.state(p.b))
	}
	tr := p.lastTransition("a")
	if tr.Diag != wire.DiagDetectExpired {
		t.Errorf("diag %v, want %v", tr.Diag, wire.DiagDetectExpired)
	}
	if got := tr.At.Sub(lastRx); got < 30*time.Millisecond || got > 30*time.Millisecond+200*time.Microsecond {
		t.Errorf("down %v after the last packet, want the 30 ms detection time", got)
	}
	st := p.a.Sessions()[0].Status()
	if st.RemoteDisc != 0 || st.Flaps != 1 {
		t.Errorf("remote discriminator %d flaps %d, want 0 and 1", st.RemoteDisc, st.Flaps)
	}
	// Back to the idle rate while Down.
	n := len(p.sent["a"])
	p.run(3 * time.Second)
	if got := len(p.sent["a"]) - n; got > 5 {
		t.Errorf("sent %d packets in 3 s while Down alone, want about 3 (idle_tx 1 s)", got)
	}
	// The peer returns: Up again.
	p.cut = false
	p.run(3 * time.Second)
	if p.state(p.a) != wire.Up || p.state(p.b) != wire.Up {
		t.Fatalf("not Up again: %v %v", p.state(p.a), p.state(p.b))
	}
}

// TestNeighborSignaledDown: 6.8.6, Up and the peer says AdminDown: Down
// with diagnostic 3; the AdminDown side sends diagnostic 7.
func TestNeighborSignaledDown(t *testing.T) {
	p := newPair(t, fast(), fast(), 4)
	p.run(time.Second)
	p.b.AdminDown(p.now, "", true)
	p.run(50 * time.Millisecond)
	if p.state(p.b) != wire.AdminDown || p.state(p.a) != wire.Down {
		t.Fatalf("states %v %v, want Down AdminDown", p.state(p.a), p.state(p.b))
	}
	if tr := p.lastTransition("a"); tr.Diag != wire.DiagNeighborDown {
		t.Errorf("a's diag %v", tr.Diag)
	}
	if s := p.sent["b"]; s[len(s)-1].p.Diag != wire.DiagAdminDown {
		t.Errorf("b sends diag %v", s[len(s)-1].p.Diag)
	}
	// AdminDown stays: received packets do not move it.
	p.run(2 * time.Second)
	if p.state(p.b) != wire.AdminDown || p.state(p.a) != wire.Down {
		t.Fatalf("states %v %v, want Down AdminDown", p.state(p.a), p.state(p.b))
	}
	p.b.AdminDown(p.now, "", false)
	p.run(3 * time.Second)
	if p.state(p.a) != wire.Up || p.state(p.b) != wire.Up {
		t.Fatalf("not Up again: %v %v", p.state(p.a), p.state(p.b))
	}
}

// TestPassiveWaits: 6.1, a passive session sends nothing until it hears
// the peer; two passive sessions never come up.
func TestPassiveWaits(t *testing.T) {
	pas := fast()
	pas.Passive = true
	p := newPair(t, pas, pas, 5)
	p.run(3 * time.Second)
	if len(p.sent["a"])+len(p.sent["b"]) != 0 {
		t.Fatalf("passive sessions sent %d and %d packets", len(p.sent["a"]), len(p.sent["b"]))
	}
	p = newPair(t, pas, fast(), 6)
	p.run(3 * time.Second)
	if p.state(p.a) != wire.Up || p.state(p.b) != wire.Up {
		t.Fatalf("passive with active: %v %v", p.state(p.a), p.state(p.b))
	}
}

// TestSlowerPeerSetsTheRate: 6.8.2/6.8.7, we send no faster than the peer
// can receive, and detect on its (slower) transmit interval.
func TestSlowerPeerSetsTheRate(t *testing.T) {
	slow := Config{MinRx: 50 * time.Millisecond, MinTx: 40 * time.Millisecond, Multiplier: 4}
	p := newPair(t, fast(), slow, 7)
	p.run(2 * time.Second)
	a := p.a.Sessions()[0].Status()
	if a.TxInterval != 50*time.Millisecond {
		t.Errorf("a sends every %v, want the peer's 50 ms min_rx", a.TxInterval)
	}
	if a.DetectTime != 160*time.Millisecond {
		t.Errorf("a's detection time %v, want 4 x 40 ms", a.DetectTime)
	}
	b := p.b.Sessions()[0].Status()
	if b.TxInterval != 40*time.Millisecond || b.DetectTime != 150*time.Millisecond {
		t.Errorf("b: tx %v detect %v, want 40 ms and 3 x 50 ms", b.TxInterval, b.DetectTime)
	}
}

// TestMultiplierOneJitter: 6.8.7, with a multiplier of 1 the interval is
// reduced by 10-25%.
func TestMultiplierOneJitter(t *testing.T) {
	one := fast()
	one.Multiplier = 1
	p := newPair(t, one, fast(), 8)
	p.run(2 * time.Second)
	sent := p.sent["a"]
	for i := len(sent) - 50; i < len(sent); i++ {
		gap := sent[i].at.Sub(sent[i-1].at)
		if gap > 9*time.Millisecond+100*time.Microsecond || gap < 7500*time.Microsecond-100*time.Microsecond {
			t.Errorf("gap %v outside 75-90%% of 10 ms", gap)
		}
	}
}

// TestReceiveCarriesDueTransmit: a transmit whose jitter window (6.8.7)
// has opened goes out at a receive's wake-up instead of at a wake-up of
// its own, so two 10 ms peers wake their timers for fewer than two thirds of
// their packets; every gap stays inside 75-100% of the interval (75-90%
// with a multiplier of 1) and the detection time is unchanged.
func TestReceiveCarriesDueTransmit(t *testing.T) {
	for _, mult := range []uint8{3, 1} {
		one := fast()
		one.Multiplier = mult
		p := newPair(t, one, one, 9)
		p.run(time.Second)
		sent0 := map[string]int{"a": len(p.sent["a"]), "b": len(p.sent["b"])}
		w0 := p.timerWakes[p.a] + p.timerWakes[p.b]
		p.run(5 * time.Second)
		hi := 10 * time.Millisecond
		if mult == 1 {
			hi = 9 * time.Millisecond
		}
		slack := 100 * time.Microsecond // the harness's step
		packets := 0
		for _, name := range []string{"a", "b"} {
			sent := p.sent[name][sent0[name]:]
			packets += len(sent)
			for i := 1; i < len(sent); i++ {
				if gap := sent[i].at.Sub(sent[i-1].at); gap > hi+slack || gap < 7500*time.Microsecond-slack {
					t.Errorf("multiplier %d: %s's gap %v outside 7.5 ms-%v", mult, name, gap, hi)
				}
			}
		}
		wakes := p.timerWakes[p.a] + p.timerWakes[p.b] - w0
		if wakes*3 > packets*2 {
			t.Errorf("multiplier %d: %d timer wake-ups for %d packets, want fewer than two thirds", mult, wakes, packets)
		}
		for _, s := range []*Set{p.a, p.b} {
			st := s.Sessions()[0].Status()
			if st.State != wire.Up || st.Flaps != 0 || st.DetectTime != time.Duration(mult)*10*time.Millisecond {
				t.Errorf("multiplier %d: %s %v, %d flaps, detection time %v", mult, st.Name, st.State, st.Flaps, st.DetectTime)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	s := NewSet(nil)
	for _, c := range []Config{
		{},
		{Name: "x"},
		{Name: "x", Peer: addrB, Local: netip.MustParseAddr("2001:db8::1")},
		{Name: "x", Peer: addrB, MinTx: 2 * time.Hour},
	} {
		if _, err := s.Add(t0, c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := s.Add(t0, Config{Name: "x", Peer: addrB}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(t0, Config{Name: "x", Peer: addrA}); err == nil {
		t.Error("a second session of the same name accepted")
	}
	if _, err := s.Add(t0, Config{Name: "y", Peer: addrB}); err == nil {
		t.Error("a second session to the same neighbor accepted")
	}
}

// pause stops both nodes for d, as a paused VM or a stopped host stops
// every process on it, and tells them on waking when they should have
// woken (Set.Resumed) unless tell is false.
func (p *pair) pause(d time.Duration, tell bool) time.Time {
	dueA, dueB := p.a.Next(), p.b.Next()
	p.now = p.now.Add(d)
	if tell {
		p.a.Resumed(p.now, dueA)
		p.b.Resumed(p.now, dueB)
	}
	return p.now
}

// TestResumedAfterAStall: a pause of both ends longer than the detection
// time (one host running both, paused) is not a Down when the caller says
// it was stalled: each end sends its overdue packet on waking and hears
// the other's within the detection time it is given. Told nothing, both
// declare the other Down. A peer that really failed during the stall is
// Down one detection time after the wake-up; the grace is given once per
// silence, and not for a wake-up late by less than the peer's interval.
func TestResumedAfterAStall(t *testing.T) {
	for _, tell := range []bool{false, true} {
		p := newPair(t, fast(), fast(), 4)
		p.run(time.Second)
		p.pause(100*time.Millisecond, tell)
		p.run(300 * time.Millisecond)
		flaps := p.a.Sessions()[0].Status().Flaps + p.b.Sessions()[0].Status().Flaps
		if tell && (p.state(p.a) != wire.Up || p.state(p.b) != wire.Up || flaps != 0) {
			t.Errorf("after a 100 ms pause, told: %v %v, %d flaps; want Up, none", p.state(p.a), p.state(p.b), flaps)
		}
		if !tell && flaps == 0 {
			t.Errorf("after a 100 ms pause, not told: no flap; the test pauses too little")
		}
	}

	// The peer dies in the stall: Down a detection time after waking.
	p := newPair(t, fast(), fast(), 5)
	p.run(time.Second)
	p.cut = true
	woke := p.pause(100*time.Millisecond, true)
	p.run(200 * time.Millisecond)
	tr := p.lastTransition("a")
	if p.state(p.a) != wire.Down || tr.Diag != wire.DiagDetectExpired {
		t.Fatalf("a peer cut during the stall: %v, %+v", p.state(p.a), tr)
	}
	if got := tr.At.Sub(woke); got < 30*time.Millisecond || got > 30*time.Millisecond+200*time.Microsecond {
		t.Errorf("down %v after waking, want the 30 ms detection time", got)
	}

	// Once per silence: a second stall before anything is heard is not
	// graced again.
	p = newPair(t, fast(), fast(), 6)
	p.run(time.Second)
	p.cut = true
	p.pause(100*time.Millisecond, true)
	p.run(10 * time.Millisecond)
	woke = p.pause(100*time.Millisecond, true)
	p.run(time.Millisecond)
	if tr := p.lastTransition("a"); p.state(p.a) != wire.Down || tr.At.Sub(woke) > time.Millisecond {
		t.Errorf("a second stall in the same silence: %v at %v after waking, want Down at once", p.state(p.a), tr.At.Sub(woke))
	}

	// Late by less than the peer's interval: no grace. The stall must end
	// after the detection time ran out, or Resumed has nothing to grace
	// whatever the rule: the peer is cut, a runs until 3 ms before its
	// detection time ends, then stalls 6 ms (under the 10 ms interval).
	p = newPair(t, fast(), fast(), 7)
	p.run(time.Second)
	p.cut = true
	lastRx := p.a.Sessions()[0].Status().LastRx
	p.run(lastRx.Add(27 * time.Millisecond).Sub(p.now))
	if p.state(p.a) != wire.Up {
		t.Fatalf("a is %v before its detection time ran out", p.state(p.a))
	}
	woke = p.pause(6*time.Millisecond, true)
	p.run(time.Millisecond)
	tr = p.lastTransition("a")
	if p.state(p.a) != wire.Down || tr.Diag != wire.DiagDetectExpired || tr.At.Sub(woke) > time.Millisecond {
		t.Errorf("a 6 ms late wake-up past the detection time: %v, %+v (%v after waking), want Down at once", p.state(p.a), tr, tr.At.Sub(woke))
	}
}

// TestDeadlineSaysDetection: Set.Deadline gives the detection time beside
// the next deadline (the runner reads its sockets once it has passed,
// epoll.Set.Arm's detectAt), later than a transmit deadline: after the
// link is cut, the transmit deadlines come before it, and the one that
// takes the session down is it.
func TestDeadlineSaysDetection(t *testing.T) {
	p := newPair(t, fast(), fast(), 7)
	p.run(time.Second)
	if p.state(p.a) != wire.Up {
		t.Fatalf("not Up: %v", p.state(p.a))
	}
	p.cut = true
	var tx, detects int
	for end := p.now.Add(time.Second); p.state(p.a) == wire.Up && p.now.Before(end); {
		due, detectAt := p.a.Deadline()
		detect := !detectAt.IsZero() && !due.Before(detectAt)
		sent := len(p.sent["a"])
		p.run(100 * time.Microsecond)
		if p.now.Before(due) {
			continue
		}
		switch {
		case p.state(p.a) != wire.Up:
			detects++
			if !detect {
				t.Errorf("the deadline at %v that took the session down is not marked a detection time", due.Sub(t0))
			}
		case len(p.sent["a"]) > sent:
			tx++
			if detect {
				t.Errorf("a transmit deadline at %v is marked a detection time", due.Sub(t0))
			}
			if detectAt.IsZero() {
				t.Errorf("a transmit deadline at %v came without the detection time that runs beside it", due.Sub(t0))
			}
		}
	}
	if detects != 1 || tx == 0 {
		t.Errorf("%d detection deadlines and %d transmit deadlines passed after the cut, want 1 and some", detects, tx)
	}
}
