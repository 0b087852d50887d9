package link

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"vigil/bfd"
	"vigil/bfd/wire"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

var labAddrs = map[string][]string{
	"a": {"192.0.2.1/24", "2001:db8::1/64"},
	"b": {"192.0.2.2/24", "2001:db8::2/64"},
	"c": {"192.0.2.3/24", "2001:db8::3/64"},
}

// runIn starts a Runner whose sockets live in h's namespace.
func runIn(t *testing.T, h *netlab.Host, sessions ...Session) (*Runner, *events) {
	t.Helper()
	r := New(nil)
	ev := &events{}
	r.Subscribe("", ev.add)
	if err := h.Do(func() error { return r.Configure(sessions) }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r, ev
}

type events struct {
	mu  sync.Mutex
	all []Event
	at  []time.Time // when each arrived
}

func (e *events) add(ev Event) {
	now := time.Now()
	e.mu.Lock()
	e.all, e.at = append(e.all, ev), append(e.at, now)
	e.mu.Unlock()
}

// lastAt is the named session's last event and when it arrived.
func (e *events) lastAt(name string) (Event, time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.all) - 1; i >= 0; i-- {
		if e.all[i].Session == name {
			return e.all[i], e.at[i]
		}
	}
	return Event{}, time.Time{}
}

func (e *events) last(name string) (Event, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.all) - 1; i >= 0; i-- {
		if e.all[i].Session == name {
			return e.all[i], true
		}
	}
	return Event{}, false
}

// statuser is a Runner or a Process.
type statuser interface {
	Status() ([]bfd.Status, map[string]uint64, Lateness)
}

func waitState(t *testing.T, r statuser, name string, want wire.State, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		sts, _, _ := r.Status()
		for _, s := range sts {
			if s.Name == name && s.State == want {
				return time.Since(start)
			}
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s not %v after %v: %+v", name, want, timeout, sts)
		}
		time.Sleep(time.Millisecond)
	}
}

// fastCfg is 30 ms x 3: fast, yet slow enough not to flap on a shared
// test machine (the benchmarks measure 10 ms).
func fastCfg(name, peer string) Session {
	return Session{Config: bfd.Config{Name: name, Peer: netip.MustParseAddr(peer), MinRx: 30 * time.Millisecond, MinTx: 30 * time.Millisecond, Multiplier: 3}}
}

// TestRunnersUpAndCut: two Runners in two namespaces, over IPv4 and IPv6,
// come Up, and both detect a cut link within the detection time.
func TestRunnersUpAndCut(t *testing.T) {
	l, hosts, ports := labtest.LAN(t, "bfl", labAddrs, "a", "b")
	_ = l
	ra, eva := runIn(t, hosts["a"], fastCfg("v4", "192.0.2.2"), fastCfg("v6", "2001:db8::2"))
	rb, _ := runIn(t, hosts["b"], fastCfg("v4", "192.0.2.1"), fastCfg("v6", "2001:db8::1"))
	// IPv6 needs DAD to finish; give the pair a few idle intervals.
	for _, n := range []string{"v4", "v6"} {
		waitState(t, ra, n, wire.Up, 5*time.Second)
		waitState(t, rb, n, wire.Up, 5*time.Second)
	}
	// Let the Poll Sequences finish, then check the negotiated timers.
	time.Sleep(100 * time.Millisecond)
	sts, _, _ := ra.Status()
	for _, s := range sts {
		if s.TxInterval != 30*time.Millisecond || s.DetectTime != 90*time.Millisecond {
			t.Errorf("%s: tx %v detect %v", s.Name, s.TxInterval, s.DetectTime)
		}
	}
	if err := l.Cut(ports["b"]); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	for _, n := range []string{"v4", "v6"} {
		waitState(t, ra, n, wire.Down, time.Second)
		waitState(t, rb, n, wire.Down, time.Second)
	}
	ev, _ := eva.last("v4")
	if ev.Up || ev.Diag != wire.DiagDetectExpired {
		t.Errorf("a's last v4 event %+v", ev)
	}
	// Detection within detection time (90 ms) of the last packet, which
	// came at most one interval before the cut; 50 ms for a loaded host.
	if took := ev.At.Sub(cut); took > 90*time.Millisecond+50*time.Millisecond {
		t.Errorf("a saw the cut after %v", took)
	}
	if err := l.Heal(ports["b"]); err != nil {
		t.Fatal(err)
	}
	waitState(t, ra, "v4", wire.Up, 3*time.Second)
}

// TestBadPacketsLive sends thousands of bad packets to a live session from
// the peer's address and from a third host: it stays Up, and every packet
// is counted under its reason.
func TestBadPacketsLive(t *testing.T) {
	_, hosts, _ := labtest.LAN(t, "bfb", labAddrs, "a", "b", "c")
	ra, _ := runIn(t, hosts["a"], Session{Config: bfd.Config{Name: "s", Peer: netip.MustParseAddr("192.0.2.2"), MinRx: 50 * time.Millisecond, MinTx: 50 * time.Millisecond, Multiplier: 3}})
	rb, _ := runIn(t, hosts["b"], Session{Config: bfd.Config{Name: "s", Peer: netip.MustParseAddr("192.0.2.1"), MinRx: 50 * time.Millisecond, MinTx: 50 * time.Millisecond, Multiplier: 3}})
	waitState(t, ra, "s", wire.Up, 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	sa, _, _ := ra.Status()
	sb, _, _ := rb.Status()
	good := wire.Packet{State: wire.Up, DetectMult: 3, MyDisc: sb[0].LocalDisc, YourDisc: sa[0].LocalDisc, DesiredMinTx: 50000, RequiredMinRx: 50000}
	enc := func(f func(*wire.Packet)) []byte {
		q := good
		f(&q)
		b, _ := q.MarshalBinary()
		return b
	}
	type shot struct {
		from   string
		ttl    int
		data   []byte
		reason string
	}
	shots := []shot{
		{"b", 255, enc(func(*wire.Packet) {})[:17], "short"},
		{"b", 255, func() []byte { b := enc(func(*wire.Packet) {}); b[0] = 3<<5 | b[0]&0x1f; return b }(), "version"},
		{"b", 255, enc(func(q *wire.Packet) { q.DetectMult = 0 }), "detect_mult"},
		{"b", 255, enc(func(q *wire.Packet) { q.MyDisc = 0 }), "my_disc"},
		{"b", 255, enc(func(q *wire.Packet) { q.YourDisc = 0 }), bfd.DropYourDisc},
		{"b", 255, enc(func(q *wire.Packet) { q.YourDisc ^= 0xffff; q.State = wire.Down }), bfd.DropUnknownDisc},
		{"b", 254, enc(func(q *wire.Packet) { q.State = wire.Down }), bfd.DropTTL},
		{"b", 64, enc(func(q *wire.Packet) { q.State = wire.AdminDown }), bfd.DropTTL},
		{"c", 255, enc(func(q *wire.Packet) { q.State = wire.Down }), bfd.DropSpoofedDisc},
		{"c", 255, enc(func(q *wire.Packet) { q.YourDisc = 0; q.State = wire.Down }), bfd.DropNoSession},
		{"b", 255, enc(func(q *wire.Packet) { q.State = wire.Down; q.Auth = []byte{1, 4, 1, 'x'} }), bfd.DropAuth},
	}
	const rounds = 300
	conns := map[string]map[int]*net.UDPConn{}
	for _, s := range shots {
		if conns[s.from] == nil {
			conns[s.from] = map[int]*net.UDPConn{}
		}
		if conns[s.from][s.ttl] != nil {
			continue
		}
		var c *net.UDPConn
		err := hosts[s.from].Do(func() (err error) {
			c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: 0})
			if err == nil {
				err = ipv4.NewConn(c).SetTTL(s.ttl)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[s.from][s.ttl] = c
	}
	dst := &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: Port}
	for i := 0; i < rounds; i++ {
		for _, s := range shots {
			if _, err := conns[s.from][s.ttl].WriteToUDP(s.data, dst); err != nil {
				t.Fatal(err)
			}
		}
		if i%20 == 0 {
			time.Sleep(time.Millisecond) // keep within the socket buffer
		}
	}
	want := map[string]uint64{}
	for _, s := range shots {
		want[s.reason] += rounds
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, drops, _ := ra.Status()
		ok := true
		for r, n := range want {
			if drops[r] < n {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			_, _, late := ra.Status()
			t.Fatalf("drops %v, want at least %v (runner overflow %d)", drops, want, late.RxOverflow)
		}
		time.Sleep(10 * time.Millisecond)
	}
	after, _, _ := ra.Status()
	if after[0].State != wire.Up || after[0].Flaps != 0 || after[0].RemoteDisc != sb[0].LocalDisc {
		t.Fatalf("the session changed: %+v", after[0])
	}
}

// TestKeepalivedPeer brings a session up with keepalived 2.2.7's
// bfd_instance, at the link level.
func TestKeepalivedPeer(t *testing.T) {
	testenv.RequireTool(t, "keepalived")
	_, hosts, _ := labtest.LAN(t, "bfk", labAddrs, "a", "b")
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(`global_defs { router_id b }
bfd_instance peer {
  neighbor_ip 192.0.2.1
  source_ip 192.0.2.2
  min_rx 50
  min_tx 50
  multiplier 3
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &labtest.Buffer{}
	cmd := hosts["b"].Command(context.Background(), "keepalived", "-n", "-l", "-D", "-f", conf, "-p", filepath.Join(dir, "k.pid"), "-b", filepath.Join(dir, "bfd.pid"),
		"-r", filepath.Join(dir, "vrrp.pid"), "-c", filepath.Join(dir, "checkers.pid"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := hosts["b"].Start(cmd); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Log(out.String())
		}
	}()
	ra, eva := runIn(t, hosts["a"], Session{Config: bfd.Config{Name: "k", Peer: netip.MustParseAddr("192.0.2.2"), Local: netip.MustParseAddr("192.0.2.1"), MinRx: 50 * time.Millisecond, MinTx: 50 * time.Millisecond, Multiplier: 3}})
	took := waitState(t, ra, "k", wire.Up, 5*time.Second)
	t.Logf("up after %v", took)
	time.Sleep(300 * time.Millisecond)
	st, _, _ := ra.Status()
	t.Logf("status %+v", st[0])
	if st[0].TxInterval != 50*time.Millisecond || st[0].DetectTime != 150*time.Millisecond {
		t.Errorf("negotiated tx %v detect %v, want 50 ms and 150 ms", st[0].TxInterval, st[0].DetectTime)
	}
	_ = cmd.Process.Kill()
	waitState(t, ra, "k", wire.Down, time.Second)
	ev, _ := eva.last("k")
	t.Logf("down: %+v", ev)
}
