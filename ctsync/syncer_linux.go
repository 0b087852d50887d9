package ctsync

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"vigil/ctsync/wire"
	"vigil/internal/ctnl"
)

// Timing of the Syncer (see docs/architecture.md, "Connection sync").
const (
	helloEvery = time.Second
	// flushDelay lets a burst of conntrack events share datagrams.
	flushDelay = time.Millisecond
	// answerWait bounds how long Synced waits for a full table to begin
	// after RequestFull; fullWait how long it waits for one to end.
	answerWait = 3 * time.Second
	fullWait   = 30 * time.Second
	// fullMinGap rate-limits full dumps asked for by peers and gaps.
	fullMinGap = time.Second
	// requestEvery repeats a full-table request while none began.
	requestEvery = 500 * time.Millisecond
	expireEvery  = 10 * time.Second
)

// Syncer is one lvs_sync_daemon: its sockets, the backup's copy, counters.
//
// It runs three goroutines after Start, each blocked on one thing:
// receive (the UDP socket: decode, check, apply to the copy), events (the
// ctnetlink event socket: filter and queue for sending; it is joined to the
// conntrack groups only while master) and send (a timer and a wake-up
// channel: flush queued entries into datagrams, full dumps, hellos, the
// Synced bound, expiry). Sends happen on the send goroutine only (and
// RequestFull's single datagram under the same lock), so sequence numbers
// go out in order.
type Syncer struct {
	cfg     Config
	is6     bool
	ifindex int
	nets    []netip.Prefix // the interface's subnets (multicast senders)
	own     []netip.Addr
	dsts    []*net.UDPAddr
	maxLen  int
	epoch   uint64
	started time.Time // New's time: see wire.ClockSlack

	udp   *net.UDPConn
	p4    *ipv4.PacketConn
	p6    *ipv6.PacketConn
	ev    *netlink.Conn // conntrack events
	dumpw *ctnl.Conn    // the master's full dumps (send goroutine); Install dumps on nlw
	nlw   *ctnl.Conn    // Install's batched creates

	kick   chan struct{}
	synced chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
	closed sync.Once

	sendMu sync.Mutex // one datagram at a time, in sequence order
	seq    uint32
	out    []byte

	instMu sync.Mutex // one Install at a time (nlw)

	mu          sync.Mutex
	services    []Service
	servicesSet bool // SetServices was called
	master      bool
	joined      bool
	pend        map[wire.Key]int // index into queue
	queue       []op
	wantFull    bool
	lastFull    time.Time
	table       *table
	peers       map[netip.Addr]*peerState
	waitFrom    time.Time // RequestFull armed the Synced bound at this time
	beganAt     time.Time // a full table began at this time (Synced bound)
	isSynced    bool
	lastReq     time.Time
	st          Status
	lastExp     time.Time
}

type op struct {
	del bool
	e   wire.Entry
}

type peerState struct {
	w      window
	master bool
	seen   time.Time
}

// New opens the Syncer's sockets in the caller's network namespace: the
// UDP socket bound to Interface (joined to Group), the ctnetlink event
// socket (joined to the conntrack groups only while master), a ctnetlink
// socket for dumps and one for Install. It starts no goroutine.
func New(cfg Config) (s *Syncer, err error) {
	if cfg.Interface == "" {
		return nil, errors.New("ctsync: no interface")
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("ctsync: interface %s: %w", cfg.Interface, err)
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.FullInterval <= 0 {
		cfg.FullInterval = DefaultFullInterval
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	s = &Syncer{cfg: cfg, ifindex: ifi.Index,
		kick: make(chan struct{}, 1), synced: make(chan struct{}), stop: make(chan struct{}),
		pend: map[wire.Key]int{}, table: newTable(cfg.MaxEntries), peers: map[netip.Addr]*peerState{}}
	s.st.Dropped = map[string]uint64{}
	switch {
	case len(cfg.Peers) > 0:
		if cfg.Group.IsValid() {
			return nil, errors.New("ctsync: both a multicast group and unicast peers")
		}
		s.is6 = cfg.Peers[0].Is6()
		for _, p := range cfg.Peers {
			if p.Is6() != s.is6 || p.Is4In6() {
				return nil, fmt.Errorf("ctsync: peer %s: all peers must be of one address family", p)
			}
			s.dsts = append(s.dsts, &net.UDPAddr{IP: p.AsSlice(), Port: int(cfg.Port), Zone: zoneOf(p, cfg.Interface)})
		}
	default:
		if !cfg.Group.IsValid() {
			cfg.Group = DefaultGroup4
			if cfg.Source.Is6() {
				cfg.Group = DefaultGroup6
			}
		}
		if !cfg.Group.IsMulticast() {
			return nil, fmt.Errorf("ctsync: group %s is not a multicast address", cfg.Group)
		}
		s.is6 = cfg.Group.Is6()
		s.dsts = []*net.UDPAddr{{IP: cfg.Group.AsSlice(), Port: int(cfg.Port), Zone: zoneOf(cfg.Group, cfg.Interface)}}
	}
	if cfg.Source.IsValid() && cfg.Source.Is6() != s.is6 {
		return nil, fmt.Errorf("ctsync: source %s is not of the peers' or group's address family", cfg.Source)
	}
	s.cfg = cfg
	hdr := 28
	if s.is6 {
		hdr = 48
	}
	s.maxLen = cfg.MaxLen
	if s.maxLen <= 0 {
		s.maxLen = ifi.MTU - hdr
	}
	s.maxLen = min(s.maxLen, 65507)
	if s.maxLen < wire.HeaderLen+wire.TagLen+wire.EntryLen(true) {
		return nil, fmt.Errorf("ctsync: maxlen %d is too small for one IPv6 entry (%d)", s.maxLen, wire.HeaderLen+wire.TagLen+wire.EntryLen(true))
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("ctsync: addresses of %s: %w", cfg.Interface, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(n.String()); err == nil {
				s.nets = append(s.nets, p.Masked())
				s.own = append(s.own, p.Addr())
			}
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:4])
	// The epoch increases across restarts (the start time), its low bits
	// random so that two starts in one clock tick still differ.
	s.started = time.Now()
	s.epoch = uint64(s.started.UnixNano())&^0xffff | uint64(binary.BigEndian.Uint16(b[:]))

	defer func() {
		if err != nil {
			s.closeSockets()
		}
	}()
	if err := s.openUDP(ifi); err != nil {
		return nil, err
	}
	// A fixed receive buffer: one recvmsg per event, not a peek and a read
	// (an event is far smaller than 64 kB).
	if s.ev, err = netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{MessageBufferSize: 64 << 10}); err != nil {
		return nil, fmt.Errorf("ctsync: conntrack event socket: %w", err)
	}
	// A burst of new flows must not overflow the event socket (it would
	// cost a full dump): 8 MB, beyond rmem_max when privileged.
	if rc, err := s.ev.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, s.evBuf()) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, s.evBuf())
			}
		})
	}
	if s.dumpw, err = ctnl.Open(); err != nil {
		return nil, err
	}
	if s.nlw, err = ctnl.Open(); err != nil {
		return nil, err
	}
	return s, nil
}

// evBufSize is the event socket's receive buffer; tests shrink it to
// provoke ENOBUFS.
var evBufSize = 8 << 20

func (s *Syncer) evBuf() int { return evBufSize }

func zoneOf(a netip.Addr, ifname string) string {
	if a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast()) {
		return ifname
	}
	return ""
}

func (s *Syncer) openUDP(ifi *net.Interface) error {
	network, laddr := "udp4", fmt.Sprintf("0.0.0.0:%d", s.cfg.Port)
	if s.is6 {
		network, laddr = "udp6", fmt.Sprintf("[::]:%d", s.cfg.Port)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, s.cfg.Interface); serr != nil {
				return
			}
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			// A full table arrives as a burst of datagrams.
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<20)
			}
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, laddr)
	if err != nil {
		return fmt.Errorf("ctsync: listen %s on %s: %w", laddr, s.cfg.Interface, err)
	}
	s.udp = pc.(*net.UDPConn)
	ttl := int(s.cfg.TTL)
	// What the two families' packet connections share, for the group.
	var mc interface {
		SetMulticastLoopback(bool) error
		SetMulticastInterface(*net.Interface) error
		JoinGroup(*net.Interface, net.Addr) error
	}
	if s.is6 {
		s.p6 = ipv6.NewPacketConn(s.udp)
		err = s.p6.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagInterface, true)
		_ = s.p6.SetHopLimit(ttl)
		_ = s.p6.SetMulticastHopLimit(ttl)
		mc = s.p6
	} else {
		s.p4 = ipv4.NewPacketConn(s.udp)
		err = s.p4.SetControlMessage(ipv4.FlagTTL|ipv4.FlagInterface, true)
		_ = s.p4.SetTTL(ttl)
		_ = s.p4.SetMulticastTTL(ttl)
		mc = s.p4
	}
	if err != nil { // the control messages, without which nothing is received
		return fmt.Errorf("ctsync: %w", err)
	}
	_ = mc.SetMulticastLoopback(false)
	if s.cfg.Group.IsValid() {
		if err := mc.SetMulticastInterface(ifi); err != nil {
			return fmt.Errorf("ctsync: multicast interface: %w", err)
		}
		if err := mc.JoinGroup(ifi, &net.UDPAddr{IP: s.cfg.Group.AsSlice()}); err != nil {
			return fmt.Errorf("ctsync: join %s on %s: %w", s.cfg.Group, ifi.Name, err)
		}
	}
	return nil
}

func (s *Syncer) closeSockets() {
	if s.udp != nil {
		s.udp.Close()
	}
	if s.ev != nil {
		s.ev.Close()
	}
	if s.dumpw != nil {
		s.dumpw.Close()
	}
	if s.nlw != nil {
		s.nlw.Close()
	}
}

// Start starts the receive, events and send goroutines; they end when ctx
// ends or Close is called.
func (s *Syncer) Start(ctx context.Context) error {
	s.wg.Add(3)
	go s.receive()
	go s.events()
	go s.sender()
	// No goroutine waits for ctx: the context calls Close when it ends.
	context.AfterFunc(ctx, func() { s.Close() })
	return nil
}

// Close closes the sockets and waits for the goroutines.
func (s *Syncer) Close() error {
	s.closed.Do(func() {
		close(s.stop)
		s.closeSockets()
	})
	s.wg.Wait()
	return nil
}

func (s *Syncer) logf(format string, args ...any) { s.cfg.Logf("ctsync: "+format, args...) }

// setErr records err for Status and logs it, once per distinct error (a
// gone peer would otherwise log every hello).
func (s *Syncer) setErr(err error) {
	s.mu.Lock()
	same := s.st.LastError == err.Error()
	s.st.LastError = err.Error()
	s.mu.Unlock()
	if !same {
		s.logf("%v", err)
	}
}

func (s *Syncer) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// SetServices sets the virtual servers whose flows are synced. A master
// sends a full table when the set changed. Until the first call a master
// sends no full table: an empty one would empty the backups' copies.
func (s *Syncer) SetServices(svcs []Service) {
	svcs = slices.Clone(svcs)
	slices.SortFunc(svcs, func(a, b Service) int {
		if c := a.VIP.Compare(b.VIP); c != 0 {
			return c
		}
		if a.Proto != b.Proto {
			return int(a.Proto) - int(b.Proto)
		}
		return int(a.Port) - int(b.Port)
	})
	s.mu.Lock()
	if s.servicesSet && slices.Equal(s.services, svcs) {
		s.mu.Unlock()
		return
	}
	s.services, s.servicesSet = svcs, true
	if s.master {
		s.wantFull = true
	}
	s.mu.Unlock()
	s.wake()
}

// SetMaster switches roles. A master listens to its kernel's conntrack
// events, sends them, sends a full table now and every FullInterval and
// answers full-table requests; a backup only keeps the copy. Both receive
// (a new master's full table also cleans the old master's copy) and send
// hellos.
func (s *Syncer) SetMaster(m bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master == m {
		return
	}
	s.master = m
	s.st.Master = m
	groups := []uint32{ctnl.GroupNew, ctnl.GroupUpdate, ctnl.GroupDestroy}
	for _, g := range groups {
		var err error
		if m {
			err = s.ev.JoinGroup(g)
		} else {
			err = s.ev.LeaveGroup(g)
		}
		if err != nil {
			s.st.LastError = fmt.Sprintf("ctsync: conntrack event group %d: %v", g, err)
		}
	}
	s.joined = m
	if m {
		s.wantFull = true
		s.markSynced()
	} else {
		s.queue, s.pend = s.queue[:0], map[wire.Key]int{}
	}
	s.wake()
}

// markSynced closes Synced once; s.mu held.
func (s *Syncer) markSynced() {
	if !s.isSynced {
		s.isSynced = true
		close(s.synced)
	}
}

// Synced is closed once a complete full table was received, or when no
// peer began one within 3 s of RequestFull (or did not end it within 30 s
// of its beginning), or when this Syncer became master.
func (s *Syncer) Synced() <-chan struct{} { return s.synced }

// RequestFull asks the peers for their whole table (repeated every 500 ms
// until one begins) and arms the Synced bound.
func (s *Syncer) RequestFull() {
	s.mu.Lock()
	if s.waitFrom.IsZero() && !s.isSynced {
		s.waitFrom = time.Now()
	}
	s.lastReq = time.Time{}
	s.mu.Unlock()
	s.sendRequest()
}

func (s *Syncer) sendRequest() {
	s.mu.Lock()
	now := time.Now()
	if now.Sub(s.lastReq) < requestEvery/2 {
		s.mu.Unlock()
		return
	}
	s.lastReq = now
	s.mu.Unlock()
	s.send(wire.Header{Type: wire.TypeFullRequest}, nil)
}

// Status returns a snapshot.
func (s *Syncer) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Dropped = make(map[string]uint64, len(s.st.Dropped))
	for k, v := range s.st.Dropped {
		st.Dropped[k] = v
	}
	st.Entries = len(s.table.m)
	st.Overflow = s.table.overflow
	st.Peers = nil
	for a, p := range s.peers {
		st.Peers = append(st.Peers, PeerStatus{Addr: a, Master: p.master, LastSeen: p.seen, Epoch: p.w.epoch})
	}
	slices.SortFunc(st.Peers, func(a, b PeerStatus) int { return a.Addr.Compare(b.Addr) })
	return st
}

// send sends one datagram of type h.Type with payload to every
// destination; count is in h.
func (s *Syncer) send(h wire.Header, payload []byte) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	if s.master {
		h.Flags |= wire.FlagMaster
	}
	s.mu.Unlock()
	s.seq++
	h.SyncID, h.Epoch, h.Seq, h.SentNS = s.cfg.SyncID, s.epoch, s.seq, time.Now().UnixNano()
	b := wire.AppendHeader(s.out[:0], h)
	b = append(b, payload...)
	b = wire.Seal(b, s.cfg.Key)
	s.out = b
	for _, d := range s.dsts {
		var err error
		if s.is6 {
			var cm *ipv6.ControlMessage
			if s.cfg.Source.IsValid() {
				cm = &ipv6.ControlMessage{Src: s.cfg.Source.AsSlice(), IfIndex: s.ifindex}
			}
			_, err = s.p6.WriteTo(b, cm, d)
		} else {
			var cm *ipv4.ControlMessage
			if s.cfg.Source.IsValid() {
				cm = &ipv4.ControlMessage{Src: s.cfg.Source.AsSlice(), IfIndex: s.ifindex}
			}
			_, err = s.p4.WriteTo(b, cm, d)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.setErr(fmt.Errorf("send to %s: %w", d, err))
			continue
		}
	}
	s.mu.Lock()
	s.st.SentPackets++
	if h.Type == wire.TypeUpdate {
		s.st.Sent += uint64(h.Count)
	}
	s.mu.Unlock()
}

// packer fills datagrams with entries or deletes and sends each when full.
type packer struct {
	s    *Syncer
	typ  wire.Type
	buf  []byte
	n    int
	room int
}

func (s *Syncer) packer(typ wire.Type) *packer {
	return &packer{s: s, typ: typ, room: s.maxLen - wire.HeaderLen - wire.TagLen}
}

func (p *packer) add(e *wire.Entry) {
	l := wire.EntryLen(e.Is6())
	if p.typ == wire.TypeDelete {
		l = wire.DeleteLen(e.Is6())
	}
	if len(p.buf)+l > p.room || p.n == 0xffff {
		p.flush()
	}
	if p.typ == wire.TypeDelete {
		p.buf = wire.AppendDelete(p.buf, &e.Key)
	} else {
		p.buf = wire.AppendEntry(p.buf, e)
	}
	p.n++
}

func (p *packer) flush() {
	if p.n == 0 {
		return
	}
	p.s.send(wire.Header{Type: p.typ, Count: uint16(p.n)}, p.buf)
	p.buf, p.n = p.buf[:0], 0
}

// sender is the send goroutine.
func (s *Syncer) sender() {
	defer s.wg.Done()
	tick := time.NewTicker(helloEvery / 4)
	defer tick.Stop()
	var lastHello time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-s.kick:
			time.Sleep(flushDelay)
		case <-tick.C:
		}
		now := time.Now()
		s.flushQueue()
		s.mu.Lock()
		master := s.master
		full := master && s.servicesSet && (s.wantFull && now.Sub(s.lastFull) >= fullMinGap || now.Sub(s.lastFull) >= s.cfg.FullInterval)
		var request bool
		switch {
		case s.isSynced:
		case !s.beganAt.IsZero() && now.Sub(s.beganAt) > fullWait:
			s.logf("the full table begun %v ago did not end: going on without it", now.Sub(s.beganAt).Round(time.Millisecond))
			s.markSynced()
		case s.beganAt.IsZero() && !s.waitFrom.IsZero() && now.Sub(s.waitFrom) > answerWait:
			s.logf("no peer answered the full-table request within %v: going on without it", answerWait)
			s.markSynced()
		case s.beganAt.IsZero() && !s.waitFrom.IsZero():
			request = true
		}
		if now.Sub(s.lastExp) >= expireEvery {
			s.lastExp = now
			s.table.expire(now)
		}
		s.mu.Unlock()
		if request {
			s.sendRequest()
		}
		if full {
			s.fullTable()
		}
		if now.Sub(lastHello) >= helloEvery {
			lastHello = now
			s.send(wire.Header{Type: wire.TypeHello}, nil)
		}
	}
}

// eventCheckEvery is how many flows a full dump reads between two looks
// at the event queue (a quarter to a few milliseconds of reading).
const eventCheckEvery = 256

// fullTableHook, when set (tests), is called after each flow a full dump
// reads, with the number read so far. Atomic because a test sets and
// clears it while the sender goroutine of a syncer it started may be
// dumping.
var fullTableHook atomic.Pointer[func(read int)]

// queued reports whether events wait in the queue.
func (s *Syncer) queued() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0
}

// flushQueue sends the queued events.
func (s *Syncer) flushQueue() {
	s.mu.Lock()
	q := s.queue
	s.queue = nil
	clear(s.pend)
	s.mu.Unlock()
	if len(q) == 0 {
		return
	}
	up, del := s.packer(wire.TypeUpdate), s.packer(wire.TypeDelete)
	for i := range q {
		if q[i].del {
			del.add(&q[i].e)
		} else {
			up.add(&q[i].e)
		}
	}
	up.flush()
	del.flush()
}

// fullTable dumps the kernel's conntrack table and sends the flows of the
// services between a full-begin and a full-end.
func (s *Syncer) fullTable() {
	s.mu.Lock()
	s.wantFull = false
	s.lastFull = time.Now()
	svcs := s.services
	s.mu.Unlock()
	// The full table goes out as it is read: the dump's answers are
	// already flow by flow.
	s.send(wire.Header{Type: wire.TypeFullBegin}, nil)
	p := s.packer(wire.TypeUpdate)
	var n, read uint32
	err := s.dumpw.Dump(func(e *wire.Entry) {
		if matches(svcs, e.Proto, e.Orig.Dst, e.Orig.DstPort) {
			p.add(e)
			n++
		}
		read++
		if hook := fullTableHook.Load(); hook != nil {
			(*hook)(int(read))
		}
		// Events do not wait for the end of the table: a full table of
		// 100,000 flows takes a loaded host seconds, and a burst of new
		// flows meanwhile would reach the backups only after it. What
		// the dump read so far goes first, so an event (newer than the
		// flows already read) is never overtaken by the dump's older copy
		// of its flow; the backup counts entries an event carries during
		// a full table as carried by it (table.gen).
		if read%eventCheckEvery == 0 && s.queued() {
			p.flush()
			s.flushQueue()
		}
	})
	if err != nil {
		// The backups see a full table without its end and keep their copy.
		s.setErr(err)
		p.flush()
		return
	}
	p.flush()
	s.send(wire.Header{Type: wire.TypeFullEnd}, wire.AppendUint32(nil, n))
	s.mu.Lock()
	s.st.FullSent++
	s.mu.Unlock()
}

// events is the events goroutine: it reads the conntrack event socket.
func (s *Syncer) events() {
	defer s.wg.Done()
	for {
		msgs, err := s.ev.Receive()
		select {
		case <-s.stop:
			return
		default:
		}
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				// Events were lost: the table is sent whole instead.
				s.mu.Lock()
				s.st.Resyncs++
				s.wantFull = true
				s.mu.Unlock()
				s.wake()
				continue
			}
			if errors.Is(err, net.ErrClosed) || errors.Is(err, unix.EBADF) {
				return
			}
			s.setErr(fmt.Errorf("conntrack events: %w", err))
			time.Sleep(100 * time.Millisecond)
			continue
		}
		queued := 0
		s.mu.Lock()
		for _, m := range msgs {
			// NEW and UPDATE are both IPCTNL_MSG_CT_NEW; DESTROY is _DELETE.
			typ := uint16(m.Header.Type)
			if typ>>8 != ctnl.SubsysCTNetlink || len(m.Data) < 4 || !s.joined {
				continue
			}
			var e wire.Entry
			if !ctnl.ParseFlow(m.Data[4:], &e) || !matches(s.services, e.Proto, e.Orig.Dst, e.Orig.DstPort) {
				continue
			}
			o := op{del: typ&0xff == ctnl.MsgDelete, e: e}
			if i, ok := s.pend[e.Key]; ok {
				s.queue[i] = o
			} else {
				s.pend[e.Key] = len(s.queue)
				s.queue = append(s.queue, o)
			}
			queued++
		}
		s.mu.Unlock()
		if queued > 0 {
			s.wake()
		}
	}
}

// receive is the receive goroutine.
func (s *Syncer) receive() {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	var d wire.Datagram
	for {
		var (
			n       int
			src     net.Addr
			ttl, ix int
			err     error
		)
		if s.is6 {
			var cm *ipv6.ControlMessage
			n, cm, src, err = s.p6.ReadFrom(buf)
			if cm != nil {
				ttl, ix = cm.HopLimit, cm.IfIndex
			}
		} else {
			var cm *ipv4.ControlMessage
			n, cm, src, err = s.p4.ReadFrom(buf)
			if cm != nil {
				ttl, ix = cm.TTL, cm.IfIndex
			}
		}
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.setErr(fmt.Errorf("receive: %w", err))
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ua, _ := src.(*net.UDPAddr)
		var from netip.Addr
		if ua != nil {
			from, _ = netip.AddrFromSlice(ua.IP)
			from = from.Unmap()
		}
		s.handle(buf[:n], from, ttl, ix, &d, time.Now())
	}
}

func (s *Syncer) drop(r wire.Reason) {
	s.mu.Lock()
	s.st.Dropped[string(r)]++
	s.mu.Unlock()
}

// handle checks and applies one datagram.
func (s *Syncer) handle(b []byte, from netip.Addr, ttl, ifindex int, d *wire.Datagram, now time.Time) {
	switch {
	case ifindex != s.ifindex:
		s.drop(wire.ReasonInterface)
		return
	case ttl != int(s.cfg.TTL):
		s.drop(wire.ReasonTTL)
		return
	case !s.fromPeer(from):
		s.drop(wire.ReasonSource)
		return
	}
	if err := wire.Decode(d, b, s.cfg.Key); err != nil {
		r := wire.ReasonOf(err)
		if r == "" {
			r = wire.ReasonShort
		}
		s.drop(r)
		return
	}
	if d.SyncID != s.cfg.SyncID {
		s.drop(wire.ReasonSyncID)
		return
	}
	if d.Epoch == s.epoch {
		s.drop(wire.ReasonSelf)
		return
	}
	s.mu.Lock()
	p := s.peers[from]
	if (p == nil || d.Epoch > p.w.epoch) && time.Unix(0, d.SentNS).Before(s.started.Add(-wire.ClockSlack)) {
		// The anti-replay window knows nothing of an epoch it has not
		// heard: a datagram captured long before this receiver started,
		// replayed before the sender speaks, would be taken (a replayed
		// old full table would even end the restart hold).
		s.st.Dropped[string(wire.ReasonStale)]++
		s.mu.Unlock()
		return
	}
	if p == nil {
		p = &peerState{}
		s.peers[from] = p
	}
	ok, gap := p.w.accept(d.Epoch, d.Seq)
	if !ok {
		s.st.Dropped[string(wire.ReasonReplay)]++
		s.mu.Unlock()
		return
	}
	p.master, p.seen = d.Flags&wire.FlagMaster != 0, now
	s.st.ReceivedPackets++
	wantReq, answer := false, false
	fromMaster := d.Flags&wire.FlagMaster != 0
	if gap {
		s.st.Gaps++
		s.table.lost()
		wantReq = fromMaster
	}
	switch d.Type {
	case wire.TypeUpdate:
		s.st.Lag = now.Sub(time.Unix(0, d.SentNS))
		for i := range d.Entries {
			s.st.Received++
			s.table.update(&d.Entries[i], now)
		}
	case wire.TypeDelete:
		s.st.Lag = now.Sub(time.Unix(0, d.SentNS))
		for i := range d.Deletes {
			if s.table.remove(d.Deletes[i]) {
				s.st.Deleted++
			}
		}
	case wire.TypeFullBegin:
		s.table.beginFull()
		wantReq = false // this full table repairs the gap
		if s.beganAt.IsZero() {
			s.beganAt = now
		}
	case wire.TypeFullEnd:
		if removed, ok := s.table.endFull(); ok {
			s.st.Deleted += uint64(removed)
			s.st.FullSyncs++
			s.st.LastFullSync = now
			s.markSynced()
		} else {
			wantReq = fromMaster
			if !s.isSynced && !s.waitFrom.IsZero() {
				s.waitFrom = now // wait for the next one
			}
		}
		s.beganAt = time.Time{}
	case wire.TypeFullRequest:
		if s.master {
			s.wantFull, answer = true, true
		}
	}
	if s.master {
		wantReq = false
	}
	s.mu.Unlock()
	if wantReq {
		s.sendRequest()
	}
	if answer {
		s.wake()
	}
}

// fromPeer: with unicast peers only they are accepted; with a multicast
// group any address on the interface's subnets.
func (s *Syncer) fromPeer(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	if len(s.cfg.Peers) > 0 {
		return slices.Contains(s.cfg.Peers, a)
	}
	if a.Is6() && a.IsLinkLocalUnicast() {
		return true
	}
	for _, p := range s.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Install writes the copy into the kernel's conntrack table and returns
// how many of its entries the kernel now holds as synced.
//
// Every entry is created with its NAT bindings. Where the kernel already
// has a flow (this director carried it before, or picked it up mid-stream)
// one dump of the table decides: a flow with the synced translation is
// updated in place; a flow with another translation, or a stale flow whose
// reply tuple the synced one needs (an FNAT local port reused since), is
// deleted and the synced entry created. Every other flow of a synced
// service left in the kernel gets liberal TCP window tracking: the
// director's view of its sequence numbers is stale when the traffic went
// through another director meanwhile, and a strict check would make its
// next packet invalid (untranslated, answered with a reset).
func (s *Syncer) Install(ctx context.Context) (int, error) {
	s.instMu.Lock()
	defer s.instMu.Unlock()
	s.mu.Lock()
	entries := s.table.snapshot(time.Now())
	svcs := s.services
	s.mu.Unlock()
	n, err := s.install(ctx, entries, svcs)
	s.mu.Lock()
	s.st.Installed += uint64(n)
	if err != nil {
		s.st.LastError = err.Error()
	}
	s.mu.Unlock()
	if err != nil {
		s.logf("installed %d of %d entries: %v", n, len(entries), err)
	}
	return n, err
}

// replyKey finds a flow by its reply tuple.
type replyKey struct {
	proto uint8
	zone  uint16
	reply wire.Tuple
}

func (s *Syncer) install(ctx context.Context, entries []wire.Entry, svcs []Service) (int, error) {
	// One dump of the kernel's flows first: which synced entries are there
	// already, which collide with a stale flow, and which other flows need
	// liberal tracking. It costs little on a backup whose table is nearly
	// empty, the usual case.
	byOrig := map[wire.Key]wire.Tuple{}
	byReply := map[replyKey]wire.Key{}
	err := s.nlw.Dump(func(e *wire.Entry) {
		byOrig[e.Key] = e.Reply
		byReply[replyKey{e.Proto, e.Zone, e.Reply}] = e.Key
	})
	if err != nil {
		return 0, err
	}
	synced := make(map[wire.Key]bool, len(entries))
	var create, update, stale []wire.Entry
	for _, e := range entries {
		synced[e.Key] = true
		r, ok := byOrig[e.Key]
		if ok && r == e.Reply {
			update = append(update, e)
			continue
		}
		if ok {
			stale = append(stale, wire.Entry{Key: e.Key})
		}
		if k, ok := byReply[replyKey{e.Proto, e.Zone, e.Reply}]; ok && k != e.Key {
			stale = append(stale, wire.Entry{Key: k})
		}
		create = append(create, e)
	}
	var liberal []wire.Entry
	for k := range byOrig {
		if k.Proto == unix.IPPROTO_TCP && !synced[k] && matches(svcs, k.Proto, k.Orig.Dst, k.Orig.DstPort) {
			liberal = append(liberal, wire.Entry{Key: k})
		}
	}

	installed := 0
	var firstErr error
	keep := func(err error) {
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if _, err := s.nlw.Do(ctx, stale, (*ctnl.Msg).AppendDelete); err != nil {
		return 0, err
	}
	res, err := s.nlw.Do(ctx, update, (*ctnl.Msg).AppendUpdate)
	if err != nil {
		return 0, err
	}
	for i, e := range res {
		if e == 0 {
			installed++
		} else {
			// Gone or changed since the dump: created afresh.
			create = append(create, update[i])
		}
	}
	res, err = s.nlw.Do(ctx, create, (*ctnl.Msg).AppendCreate)
	if err != nil {
		return installed, err
	}
	var retry []wire.Entry
	for i, e := range res {
		switch e {
		case 0:
			installed++
		case unix.EEXIST:
			// A flow created since the dump (a packet picked up
			// mid-stream): the synced translation replaces it.
			retry = append(retry, create[i])
		default:
			keep(fmt.Errorf("ctsync: install %s %s:%d -> %s:%d: %w", protoName(create[i].Proto),
				create[i].Orig.Src, create[i].Orig.SrcPort, create[i].Orig.Dst, create[i].Orig.DstPort, e))
		}
	}
	if len(retry) > 0 {
		_, err := s.nlw.Do(ctx, retry, (*ctnl.Msg).AppendDelete)
		keep(err)
		res, err := s.nlw.Do(ctx, retry, (*ctnl.Msg).AppendCreate)
		keep(err)
		for i, e := range res {
			if e == 0 {
				installed++
			} else {
				keep(fmt.Errorf("ctsync: replace %s:%d -> %s:%d: %w", retry[i].Orig.Src, retry[i].Orig.SrcPort, retry[i].Orig.Dst, retry[i].Orig.DstPort, e))
			}
		}
	}
	_, err = s.nlw.Do(ctx, liberal, (*ctnl.Msg).AppendLiberal)
	keep(err)
	return installed, firstErr
}

func protoName(p uint8) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	case unix.IPPROTO_SCTP:
		return "sctp"
	}
	return fmt.Sprintf("proto %d", p)
}
