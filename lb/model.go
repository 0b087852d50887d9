package lb

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"vigil/internal/enum"
	"vigil/internal/inet"
)

// ServiceConfig is one virtual_server as the model needs it. The daemon
// maps config.VirtualServer to it (package lb does not import config); a
// virtual_server_group is expanded by the daemon into one ServiceConfig per
// member address or fwmark, each with the same real servers, and health
// results fanned out to all of them.
type ServiceConfig struct {
	Proto Proto
	// VIP and Port, or FwMark (then VIP stays invalid). Port 0 with a VIP
	// is keepalived's all-ports service, allowed only when persistent.
	VIP    netip.Addr
	Port   uint16
	FwMark uint32
	// Family of a fwmark service (ip_family; default IPv4). Ignored when
	// VIP is set: the VIP's family wins.
	Family inet.Family

	Method Method
	// Scheduler is lvs_sched/lb_algo; "" means wlc, keepalived's default.
	Scheduler string
	// SchedFlags are the scheduler flags: "sh-port"/"mh-port" (or
	// "flag-2") add the source port to the sh/mh hash; the fallback flags
	// need nothing here because unavailable servers are never in the pool.
	SchedFlags []string

	// Persistence is persistence_timeout (0: not persistent), and
	// PersistenceMask persistence_granularity as prefix bits (0: full
	// address).
	Persistence     time.Duration
	PersistenceMask int

	// Quorum is the minimum total weight of live real servers (0 means
	// keepalived's default of 1); Hysteresis the dampener around it.
	Quorum     int
	Hysteresis int
	// Omega asks for QuorumDown events from Shutdown.
	Omega bool

	// Sorry is the sorry_server (invalid address: none); SorryInhibit is
	// sorry_server_inhibit: keep it at weight 0 while the quorum holds.
	Sorry        netip.AddrPort
	SorryInhibit bool

	// LocalAddrs is the FNAT local address pool (required for FNAT).
	LocalAddrs []netip.Addr
	// Interface is the DR device the VIP arrives on.
	Interface string
	// FlowTimeout and FlowFinTimeout are DR's flow memory (see
	// Service.FlowTimeout); zero picks DefaultFlowTimeouts for Proto.
	FlowTimeout, FlowFinTimeout time.Duration
	// MaglevSize is the Maglev table size (a prime); 0 picks
	// MaglevSizeFor(number of real servers + sorry server), which depends
	// on the configuration only, so health changes never resize a table.
	MaglevSize int

	// Inactive starts the service inactive: its VIP belongs to a VRRP
	// instance that is not MASTER yet (see Model.SetActive).
	Inactive bool

	RealServers []RealServerConfig
}

// RealServerConfig is one real_server, with the virtual server's defaults
// already applied by the caller.
type RealServerConfig struct {
	Addr netip.Addr
	// Port 0 keeps the client's destination port (fwmark and all-ports
	// services).
	Port uint16
	// Weight is the configured weight (keepalived default 1); 0 is legal
	// and quiesces the server.
	Weight int
	// InhibitOnFailure keeps a failed server at weight 0 (draining)
	// instead of removing it.
	InhibitOnFailure bool
	// UThreshold and LThreshold are uthreshold/lthreshold: once the
	// server holds more than UThreshold connections (as SetConnCounts
	// reports) it takes no new flows until it holds fewer than LThreshold,
	// or 3/4 of UThreshold when LThreshold is 0 (ipvsadm's rule). 0: none.
	UThreshold, LThreshold int
	// Alpha starts the server down. The checker owns alpha: it starts
	// failed and reports the first success through SetHealth; this field
	// only makes the model's starting state agree with it, so that the
	// initial state raises no quorum event.
	Alpha bool
}

// Name is the stable name of the service this config describes (see
// Service.Name).
func (c *ServiceConfig) Name() string {
	if c.FwMark != 0 {
		n := "fwmark " + strconv.FormatUint(uint64(c.FwMark), 10) + "/" + c.Proto.String()
		if c.Family == inet.IPv6 {
			n += " ip6"
		}
		return n
	}
	return netip.AddrPortFrom(c.VIP, c.Port).String() + "/" + c.Proto.String()
}

// id makes the nft-safe identifier of a service (see Service.ID).
func (c *ServiceConfig) id() string {
	if c.FwMark != 0 {
		p := "fwm_"
		if c.Family == inet.IPv6 {
			p = "fwm6_"
		}
		return p + strconv.FormatUint(uint64(c.FwMark), 10) + "_" + c.Proto.String()
	}
	return "vs_" + NameOf(c.VIP) + "_" + strconv.Itoa(int(c.Port)) + "_" + c.Proto.String()
}

// NameOf spells a in the characters nft allows in a name: an IPv4
// address with underscores for dots, an IPv6 one as 32 hex digits. Service
// IDs and the data plane's per-real-server names use it.
func NameOf(a netip.Addr) string {
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "_")
	}
	b := a.As16()
	return hex.EncodeToString(b[:])
}

// EventKind names a quorum transition.
type EventKind int

const (
	// QuorumUp: the live weight reached quorum + hysteresis (run
	// quorum_up); the real servers replace the sorry server.
	QuorumUp EventKind = iota + 1
	// QuorumDown: the live weight fell below quorum − hysteresis, or to 0
	// (run quorum_down); the sorry server, if any, replaces the pool.
	QuorumDown
)

var eventKindNames = []string{QuorumUp: "quorum up", QuorumDown: "quorum down"}

func (k EventKind) String() string { return enum.Name(eventKindNames, k, "EventKind") }

// Event is a quorum transition of a service for the daemon to act on
// (quorum_up / quorum_down scripts, logs, SMTP alerts).
type Event struct {
	Service string // Service.Name
	Kind    EventKind
	// Weight is the live weight that caused it; Quorum and Hysteresis
	// the thresholds in force.
	Weight, Quorum, Hysteresis int
}

func (e Event) String() string {
	return fmt.Sprintf("%s: %s (weight %d, quorum %d±%d)", e.Service, e.Kind, e.Weight, e.Quorum, e.Hysteresis)
}

// MaxWeight is the largest real server weight, keepalived's.
const MaxWeight = 1<<31 - 1

// DefaultFlowTimeouts are IPVS's connection timeouts, which keepalived
// leaves in place when lvs_timeouts does not set them: 900 s for an
// established TCP connection (SCTP alike), 120 s once it closes, 300 s
// for UDP (no close).
func DefaultFlowTimeouts(p Proto) (idle, fin time.Duration) {
	if p == UDP {
		return 300 * time.Second, 0
	}
	return 900 * time.Second, 120 * time.Second
}

// ErrUnknown is wrapped by errors about a service or real server the model
// does not have.
var ErrUnknown = errors.New("unknown")

// Model is the load-balancing state: configuration plus what health
// checks, VRRP and conntrack have reported. It is a plain value stepped by
// the daemon's loop (not safe for concurrent use); Desired derives the data
// plane from it. Build one with New.
type Model struct {
	services map[string]*service
	names    []string // in Desired's order
	macs     map[netip.Addr]MAC
	gen      uint64
}

type service struct {
	cfg      ServiceConfig // normalised copy
	name, id string
	family   inet.Family
	sched    sched
	rs       []*realServer // sorted by (Addr, Port)
	byAddr   map[netip.AddrPort]*realServer
	quorumUp bool
	active   bool
	counts   map[netip.AddrPort]int // conntrack counts; nil: none reported
	maglev   maglevCache
}

type realServer struct {
	cfg        RealServerConfig
	up         bool
	dyn        int  // dynamic weight, -1: use cfg.Weight
	overloaded bool // above UThreshold, not yet below the lower threshold
}

// updateOverload applies the connection thresholds to a new count c.
func (r *realServer) updateOverload(c int) {
	u, l := r.cfg.UThreshold, r.cfg.LThreshold
	if l == 0 {
		l = u * 3 / 4
	}
	switch {
	case u == 0:
		r.overloaded = false
	case c > u:
		r.overloaded = true
	case c < l:
		r.overloaded = false
	}
}

func (r *realServer) key() netip.AddrPort { return netip.AddrPortFrom(r.cfg.Addr, r.cfg.Port) }

func (r *realServer) weight() int {
	if r.dyn >= 0 {
		return r.dyn
	}
	return r.cfg.Weight
}

// New builds a model from the configured services. Real servers start up,
// or down with Alpha; each service's quorum starts as its live weight
// dictates, without an event.
func New(cfgs []ServiceConfig) (*Model, error) {
	m := &Model{services: map[string]*service{}, macs: map[netip.Addr]MAC{}}
	if _, err := m.Configure(cfgs); err != nil {
		return nil, err
	}
	return m, nil
}

// Configure replaces the configuration (a reload). Services and real
// servers that keep their name keep their health, dynamic weight,
// connection counts, active state and quorum state; new ones start as in
// New. A quorum state that the new thresholds contradict changes, with an
// event. On error the model is unchanged.
func (m *Model) Configure(cfgs []ServiceConfig) ([]Event, error) {
	next := make(map[string]*service, len(cfgs))
	for i := range cfgs {
		s, err := newService(cfgs[i])
		if err != nil {
			return nil, err
		}
		if next[s.name] != nil {
			return nil, fmt.Errorf("service %q configured twice", s.name)
		}
		next[s.name] = s
	}
	var evs []Event
	names := make([]string, 0, len(next))
	for name, s := range next {
		names = append(names, name)
		old := m.services[name]
		if old == nil {
			s.quorumUp = s.liveWeight() >= s.cfg.Quorum
			continue
		}
		for _, r := range s.rs {
			if o := old.byAddr[r.key()]; o != nil {
				r.up, r.dyn, r.overloaded = o.up, o.dyn, o.overloaded
				if old.counts != nil {
					r.updateOverload(old.counts[r.key()])
				} else {
					r.overloaded = false
				}
			}
		}
		s.active, s.counts, s.quorumUp = old.active, old.counts, old.quorumUp
		s.maglev = old.maglev
		if e, ok := s.updateQuorum(); ok {
			evs = append(evs, e)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return next[a].compare(next[b]) })
	m.services, m.names = next, names
	m.gen++
	sortEvents(evs)
	return evs, nil
}

// compare orders services as Desired lists them: address services by
// (VIP, port, protocol), then fwmark services by (family, mark, protocol).
func (s *service) compare(o *service) int {
	a, b := &s.cfg, &o.cfg
	isMark := func(c *ServiceConfig) int {
		if c.FwMark != 0 {
			return 1
		}
		return 0
	}
	return cmp.Or(
		cmp.Compare(isMark(a), isMark(b)),
		a.VIP.Compare(b.VIP), cmp.Compare(a.Port, b.Port),
		cmp.Compare(s.family, o.family), cmp.Compare(a.FwMark, b.FwMark),
		cmp.Compare(a.Proto, b.Proto))
}

func sortEvents(evs []Event) {
	slices.SortFunc(evs, func(a, b Event) int { return strings.Compare(a.Service, b.Service) })
}

func newService(c ServiceConfig) (*service, error) {
	c.VIP = c.VIP.Unmap()
	name := c.Name()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("service %q: "+format, append([]any{name}, a...)...)
	}
	switch {
	case c.FwMark != 0 && c.VIP.IsValid():
		return nil, bad("both a VIP and a fwmark")
	case c.FwMark == 0 && !c.VIP.IsValid():
		return nil, bad("neither a VIP nor a fwmark")
	case c.Proto < TCP || c.Proto > SCTP:
		return nil, bad("unknown protocol %d", int(c.Proto))
	case c.Family != 0 && !c.Family.Valid():
		return nil, bad("unknown family %d", int(c.Family))
	case c.Method < NAT || c.Method > DR:
		return nil, bad("unknown method %d", int(c.Method))
	case c.VIP.IsValid() && c.Port == 0 && c.Persistence <= 0:
		return nil, bad("port 0 (all ports) needs persistence_timeout")
	case c.Quorum < 0 || c.Hysteresis < 0:
		return nil, bad("negative quorum %d or hysteresis %d", c.Quorum, c.Hysteresis)
	case c.Persistence < 0:
		return nil, bad("negative persistence_timeout %v", c.Persistence)
	case c.FlowTimeout < 0 || c.FlowFinTimeout < 0:
		return nil, bad("negative flow timeout %v or %v", c.FlowTimeout, c.FlowFinTimeout)
	case c.Method == FNAT && len(c.LocalAddrs) == 0:
		return nil, bad("FNAT needs local addresses (laddr_group_name)")
	}
	fam := cmp.Or(c.Family, inet.IPv4)
	if c.VIP.IsValid() {
		fam = inet.IPv4
		if c.VIP.Is6() {
			fam = inet.IPv6
		}
	}
	bits := 32
	if fam == inet.IPv6 {
		bits = 128
	}
	if c.PersistenceMask == 0 {
		c.PersistenceMask = bits
	}
	if c.PersistenceMask < 0 || c.PersistenceMask > bits {
		return nil, bad("persistence_granularity /%d out of range for %s", c.PersistenceMask, fam)
	}
	if c.Quorum == 0 {
		c.Quorum = 1
	}
	if c.Method == DR {
		tcp, fin := DefaultFlowTimeouts(c.Proto)
		c.FlowTimeout, c.FlowFinTimeout = cmp.Or(c.FlowTimeout, tcp), cmp.Or(c.FlowFinTimeout, fin)
		if c.Proto == UDP {
			c.FlowFinTimeout = 0
		}
	} else {
		c.FlowTimeout, c.FlowFinTimeout = 0, 0
	}
	if c.Scheduler == "" {
		c.Scheduler = DefaultScheduler
	}
	sc, err := schedFor(c.Scheduler, c.SchedFlags)
	if err != nil {
		return nil, bad("%w", err)
	}
	isFam := func(a netip.Addr) bool { return a.Is4() == (fam == inet.IPv4) }
	c.LocalAddrs = slices.Clone(c.LocalAddrs)
	for i, a := range c.LocalAddrs {
		c.LocalAddrs[i] = a.Unmap()
		if !isFam(c.LocalAddrs[i]) {
			return nil, bad("local address %v is not %s", a, fam)
		}
	}
	slices.SortFunc(c.LocalAddrs, netip.Addr.Compare)
	c.LocalAddrs = slices.Compact(c.LocalAddrs)
	if c.Method != FNAT {
		c.LocalAddrs = nil
	}
	if c.Method != DR {
		c.Interface = ""
	}
	if c.Sorry.Addr().IsValid() {
		c.Sorry = netip.AddrPortFrom(c.Sorry.Addr().Unmap(), c.Sorry.Port())
		if !isFam(c.Sorry.Addr()) {
			return nil, bad("sorry server %v is not %s", c.Sorry, fam)
		}
	}
	s := &service{name: name, id: c.id(), family: fam, sched: sc, active: !c.Inactive,
		byAddr: make(map[netip.AddrPort]*realServer, len(c.RealServers))}
	for _, rc := range c.RealServers {
		rc.Addr = rc.Addr.Unmap()
		r := &realServer{cfg: rc, up: !rc.Alpha, dyn: -1}
		k := r.key()
		switch {
		case !rc.Addr.IsValid():
			return nil, bad("real server with no address")
		case !isFam(rc.Addr):
			return nil, bad("real server %v is not %s", k, fam)
		case rc.UThreshold < 0 || rc.LThreshold < 0:
			return nil, bad("real server %v: negative connection threshold", k)
		case rc.Weight < 0 || rc.Weight > MaxWeight:
			return nil, bad("real server %v: weight %d not in 0..%d", k, rc.Weight, MaxWeight)
		case s.byAddr[k] != nil:
			return nil, bad("real server %v configured twice", k)
		case k == c.Sorry:
			return nil, bad("real server %v is also the sorry server", k)
		}
		s.byAddr[k] = r
		s.rs = append(s.rs, r)
	}
	c.RealServers = nil // the real servers live in s.rs
	slices.SortFunc(s.rs, func(a, b *realServer) int { return a.key().Compare(b.key()) })
	n := len(s.rs)
	if c.Sorry.Addr().IsValid() {
		n++
	}
	if c.MaglevSize == 0 {
		c.MaglevSize = MaglevSizeFor(n)
	} else if c.MaglevSize > MaxMaglevSize || !isPrime(c.MaglevSize) {
		return nil, bad("Maglev table size %d is not a prime up to %d", c.MaglevSize, MaxMaglevSize)
	} else if c.MaglevSize < n {
		return nil, bad("Maglev table size %d is smaller than its %d servers", c.MaglevSize, n)
	}
	s.cfg = c
	return s, nil
}

// liveWeight is the quorum's measure: the sum of the weights of the real
// servers that are up (the sorry server does not count).
func (s *service) liveWeight() int {
	w := 0
	for _, r := range s.rs {
		if r.up {
			w += r.weight()
		}
	}
	return w
}

// updateQuorum applies keepalived's hysteresis: the quorum is lost when
// the live weight drops below quorum − hysteresis (or to nothing at all,
// whatever the hysteresis) and regained only at quorum + hysteresis, so a
// weight hovering around the quorum does not flap the sorry server.
func (s *service) updateQuorum() (Event, bool) {
	w, q, h := s.liveWeight(), s.cfg.Quorum, s.cfg.Hysteresis
	switch {
	case s.quorumUp && (w == 0 || w < q-h):
		s.quorumUp = false
		return Event{Service: s.name, Kind: QuorumDown, Weight: w, Quorum: q, Hysteresis: h}, true
	case !s.quorumUp && w >= q+h:
		s.quorumUp = true
		return Event{Service: s.name, Kind: QuorumUp, Weight: w, Quorum: q, Hysteresis: h}, true
	}
	return Event{}, false
}

func (m *Model) service(name string) (*service, error) {
	s := m.services[name]
	if s == nil {
		return nil, fmt.Errorf("service %q: %w", name, ErrUnknown)
	}
	return s, nil
}

// SetHealth records a checker verdict for one real server of a service:
// up or down, and weight, either -1 for the configured weight or the
// dynamic weight a MISC_CHECK with misc_dynamic reported. The daemon
// passes the aggregate of all checkers of the server (up only when every
// one is up), as package check reports it. It returns the quorum
// transition this causes, if any.
func (m *Model) SetHealth(svc string, rs netip.AddrPort, up bool, weight int) ([]Event, error) {
	s, err := m.service(svc)
	if err != nil {
		return nil, err
	}
	r := s.byAddr[netip.AddrPortFrom(rs.Addr().Unmap(), rs.Port())]
	if r == nil {
		return nil, fmt.Errorf("service %q: real server %v: %w", svc, rs, ErrUnknown)
	}
	if weight < -1 || weight > MaxWeight {
		return nil, fmt.Errorf("service %q: real server %v: weight %d not in -1..%d", svc, rs, weight, MaxWeight)
	}
	if r.up == up && r.dyn == weight {
		return nil, nil
	}
	r.up, r.dyn = up, weight
	m.gen++
	if e, ok := s.updateQuorum(); ok {
		return []Event{e}, nil
	}
	return nil, nil
}

// SetActive marks every service whose VIP is vip active or not: the daemon
// calls it when the VRRP instance holding vip becomes MASTER (true) or
// leaves MASTER (false). It returns how many services matched.
func (m *Model) SetActive(vip netip.Addr, active bool) int {
	vip = vip.Unmap()
	n := 0
	for _, name := range m.names {
		s := m.services[name]
		if s.cfg.VIP == vip {
			n++
			if s.active != active {
				s.active = active
				m.gen++
			}
		}
	}
	return n
}

// SetServiceActive is SetActive for one service by name (fwmark services,
// which have no VIP, follow whichever VRRP instance the operator ties them
// to).
func (m *Model) SetServiceActive(svc string, active bool) error {
	s, err := m.service(svc)
	if err != nil {
		return err
	}
	if s.active != active {
		s.active = active
		m.gen++
	}
	return nil
}

// SetConnCounts gives the number of conntrack entries per backend of a
// service, for the lc/wlc/sed/nq/twos/ovf approximations (see the package
// documentation) and the uthreshold/lthreshold limits. Backends missing
// from counts have none; nil forgets the counts. The keys are the real
// servers' configured address and port (port 0 for fwmark and all-ports
// services whose real servers have none).
func (m *Model) SetConnCounts(svc string, counts map[netip.AddrPort]int) error {
	s, err := m.service(svc)
	if err != nil {
		return err
	}
	if counts == nil {
		if s.counts != nil {
			s.counts = nil
			for _, r := range s.rs {
				r.overloaded = false
			}
			m.gen++
		}
		return nil
	}
	c := make(map[netip.AddrPort]int, len(counts))
	for k, v := range counts {
		if v < 0 {
			return fmt.Errorf("service %q: backend %v: negative connection count %d", svc, k, v)
		}
		if v > 0 {
			v = min(v, maxConns)
			c[netip.AddrPortFrom(k.Addr().Unmap(), k.Port())] = v
		}
	}
	if !maps.Equal(s.counts, c) || s.counts == nil {
		s.counts = c
		for _, r := range s.rs {
			r.updateOverload(c[r.key()])
		}
		m.gen++
	}
	return nil
}

// SetMAC records the link-layer address of a real server's IP address
// from the neighbour table (DR needs it to forward frames); a zero MAC
// forgets it. It reports whether anything changed.
func (m *Model) SetMAC(addr netip.Addr, mac MAC) bool {
	addr = addr.Unmap()
	if m.macs[addr] == mac {
		return false
	}
	if mac.IsZero() {
		delete(m.macs, addr)
	} else {
		m.macs[addr] = mac
	}
	m.gen++
	return true
}

// Shutdown returns the QuorumDown events omega asks for: one for each
// service with Omega whose quorum is up. It changes nothing.
func (m *Model) Shutdown() []Event {
	var evs []Event
	for _, name := range m.names {
		s := m.services[name]
		if s.cfg.Omega && s.quorumUp {
			evs = append(evs, Event{Service: name, Kind: QuorumDown, Weight: s.liveWeight(), Quorum: s.cfg.Quorum, Hysteresis: s.cfg.Hysteresis})
		}
	}
	return evs
}

// Generation increases with every change that can alter Desired, so the
// daemon can skip applying an unchanged state.
func (m *Model) Generation() uint64 { return m.gen }

// Services lists the service names, in Desired's order.
func (m *Model) Services() []string { return slices.Clone(m.names) }

// QuorumUp reports whether the named service has its quorum.
func (m *Model) QuorumUp(svc string) (bool, error) {
	s, err := m.service(svc)
	if err != nil {
		return false, err
	}
	return s.quorumUp, nil
}

// Desired derives the data plane from the model's state. It is
// deterministic: the same state gives a deep-equal value, whatever the
// order of the calls that built it.
func (m *Model) Desired() Desired {
	d := Desired{Services: make([]Service, 0, len(m.names))}
	for _, name := range m.names {
		d.Services = append(d.Services, m.services[name].desired(m.macs))
	}
	return d
}

func (s *service) desired(macs map[netip.Addr]MAC) Service {
	c := &s.cfg
	out := Service{
		Name: s.name, ID: s.id, Proto: c.Proto, Family: s.family,
		VIP: c.VIP, Port: c.Port, FwMark: c.FwMark, Method: c.Method,
		Scheduler: c.Scheduler, Selection: s.sched.sel, Hash: s.sched.hash,
		Persistence: c.Persistence, PersistenceMask: c.PersistenceMask,
		LocalAddrs: c.LocalAddrs, Interface: c.Interface, Active: s.active,
		FlowTimeout: c.FlowTimeout, FlowFinTimeout: c.FlowFinTimeout,
	}
	if c.Method == DR {
		// A flow's first packet must find the same backend on every
		// director from its headers alone (the directors share no flow
		// state): a Maglev table, keyed by the scheduler's own hash when
		// it has one, by the client when the service is persistent, by
		// the whole flow otherwise.
		out.Selection = SelectMaglev
		if out.Hash == HashNone {
			out.Hash = HashFlow
			if c.Persistence > 0 {
				out.Hash = HashSourceAddr
			}
		}
	}
	mac := func(b Backend) Backend {
		if c.Method == DR {
			b.MAC = macs[b.Addr]
		}
		return b
	}
	hasSorry := c.Sorry.Addr().IsValid()
	sorry := Backend{Addr: c.Sorry.Addr(), Port: c.Sorry.Port(), Sorry: true}
	var live []Backend
	if !s.quorumUp && hasSorry {
		// The sorry server replaces the whole pool; real servers that
		// inhibit on failure stay at weight 0 so their flows finish.
		out.Sorry = true
		sorry.Weight = 1
		out.Backends = []Backend{mac(sorry)}
		for _, r := range s.rs {
			if r.cfg.InhibitOnFailure {
				out.Draining = append(out.Draining, mac(Backend{Addr: r.cfg.Addr, Port: r.cfg.Port}))
			}
		}
	} else {
		// Without a sorry server a lost quorum only raises the event: the
		// servers still up keep serving.
		for _, r := range s.rs {
			b := mac(Backend{Addr: r.cfg.Addr, Port: r.cfg.Port})
			switch {
			case r.up && r.weight() > 0 && !r.overloaded:
				b.Weight = r.weight()
				live = append(live, b)
			case r.up || r.cfg.InhibitOnFailure:
				out.Draining = append(out.Draining, b)
			}
		}
		out.Backends, out.Draining = s.sched.weigh(live, out.Draining, s.counts)
		fitTotal(out.Backends)
		if hasSorry && c.SorryInhibit {
			out.Draining = append(out.Draining, mac(sorry))
			sortBackends(out.Draining)
		}
	}
	if out.Selection == SelectMaglev && len(out.Backends) > 0 {
		out.Maglev = s.maglev.get(out.Backends, c.MaglevSize)
	}
	return out
}

func sortBackends(bs []Backend) {
	slices.SortFunc(bs, func(a, b Backend) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
}
