// Package sim runs VRRP routers on a simulated LAN in virtual time.
//
// Every router holds one or more vrrp.Instance values (several make a sync
// group possible) and the network delivers the adverts they send to the
// others, with per-link loss and delay, partitions, one-way blocks (a
// firewall dropping protocol 112), stalls (SIGSTOP: the router neither
// sends nor processes; what arrives meanwhile is buffered and processed on
// resume), kills (kill -9: no shutdown advert, the VIPs stay) and restarts.
// Nothing sleeps: Run jumps from one deadline or delivery to the next, so a
// minute of protocol runs in microseconds, and a seeded math/rand decides
// losses, so every run of a scenario is the same.
//
// Everything that happens is written to a trace, one line per event with
// its virtual time; Script drives a Network from text commands, which the
// tests use for datadriven scenarios in testdata/*.txt (see script.go).
package sim

import (
	"fmt"
	"math/rand"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigil/internal/inet"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

// Epoch is the virtual time a Network starts at.
var Epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Network is a LAN segment and the routers on it.
type Network struct {
	now     time.Time
	rng     *rand.Rand
	routers []*Router
	queue   []delivery
	seq     uint64

	loss    map[[2]string]float64 // by sorted pair of router names
	delay   map[[2]string]time.Duration
	side    map[string]int     // partition: routers can talk when equal
	blocked map[[2]string]bool // one way: from, to

	// Quiet leaves adverts and announcements out of the trace.
	Quiet bool
	// Trace receives each line as it happens; nil keeps them in Lines only.
	Trace func(line string)
	lines []string
}

// Router is a host on the LAN.
type Router struct {
	Name  string
	Addr  netip.Addr
	cfgs  []vrrp.Config
	insts []*vrrp.Instance
	group *vrrp.Group
	gname string

	dead         bool
	stalledUntil time.Time
	backlog      []delivery
	vips         []netip.Prefix // installed, in order
}

type delivery struct {
	at  time.Time
	seq uint64
	to  *Router
	pkt vrrp.Packet
}

// New returns an empty network whose losses are drawn from seed.
func New(seed int64) *Network {
	return &Network{
		now:     Epoch,
		rng:     rand.New(rand.NewSource(seed)),
		loss:    map[[2]string]float64{},
		delay:   map[[2]string]time.Duration{},
		blocked: map[[2]string]bool{},
	}
}

// Now is the virtual time.
func (n *Network) Now() time.Time { return n.now }

// Elapsed is the virtual time since Epoch.
func (n *Network) Elapsed() time.Duration { return n.now.Sub(Epoch) }

// Lines returns the trace so far and forgets it.
func (n *Network) Lines() []string {
	l := n.lines
	n.lines = nil
	return l
}

func (n *Network) logf(format string, args ...any) {
	line := fmtTime(n.Elapsed()) + " " + fmt.Sprintf(format, args...)
	n.lines = append(n.lines, line)
	if n.Trace != nil {
		n.Trace(line)
	}
}

func fmtTime(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// Router returns the router called name, or nil.
func (n *Network) Router(name string) *Router {
	for _, r := range n.routers {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// Routers returns every router, in the order they were added.
func (n *Network) Routers() []*Router { return slices.Clone(n.routers) }

// Add starts a router with one instance per config at the current time.
// The router's address is the first config's SrcAddr.
func (n *Network) Add(name string, cfgs ...vrrp.Config) (*Router, error) {
	if n.Router(name) != nil {
		return nil, fmt.Errorf("router %s already exists", name)
	}
	if len(cfgs) == 0 {
		return nil, fmt.Errorf("router %s: no instances", name)
	}
	r := &Router{Name: name, Addr: cfgs[0].SrcAddr}
	for _, c := range cfgs {
		if err := r.addInstance(n, c); err != nil {
			return nil, err
		}
	}
	n.routers = append(n.routers, r)
	n.flush()
	return r, nil
}

// AddInstance starts one more instance on router r.
func (n *Network) AddInstance(r *Router, cfg vrrp.Config) error {
	if r.group != nil {
		return fmt.Errorf("router %s: instances cannot join an existing sync group", r.Name)
	}
	if err := r.addInstance(n, cfg); err != nil {
		return err
	}
	n.flush()
	return nil
}

func (r *Router) addInstance(n *Network, cfg vrrp.Config) error {
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("%s/%d", r.Name, cfg.VRID)
	}
	for _, c := range r.cfgs {
		if c.VRID == cfg.VRID {
			return fmt.Errorf("router %s already has vrid %d", r.Name, cfg.VRID)
		}
	}
	inst, err := vrrp.New(cfg, n.now)
	if err != nil {
		return err
	}
	r.cfgs = append(r.cfgs, cfg)
	r.insts = append(r.insts, inst)
	return nil
}

// SyncGroup ties all of r's instances into one vrrp_sync_group.
func (n *Network) SyncGroup(r *Router, name string) error {
	g, err := vrrp.NewGroup(name, r.insts...)
	if err != nil {
		return err
	}
	r.group, r.gname = g, name
	n.flush()
	return nil
}

// Instances returns r's instances.
func (r *Router) Instances() []*vrrp.Instance { return slices.Clone(r.insts) }

// Instance returns r's instance for vrid, or nil.
func (r *Router) Instance(vrid uint8) *vrrp.Instance {
	for _, in := range r.insts {
		if in.Config().VRID == vrid {
			return in
		}
	}
	return nil
}

// VIPs returns the addresses installed on r.
func (r *Router) VIPs() []netip.Prefix { return slices.Clone(r.vips) }

// Dead reports whether r was killed and not restarted.
func (r *Router) Dead() bool { return r.dead }

func (r *Router) label(in *vrrp.Instance) string {
	if len(r.insts) == 1 {
		return r.Name
	}
	return fmt.Sprintf("%s/%d", r.Name, in.Config().VRID)
}

func pair(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// SetLoss makes the link between a and b lose a fraction p of packets in
// each direction.
func (n *Network) SetLoss(a, b string, p float64) { n.loss[pair(a, b)] = p }

// SetDelay delays packets between a and b by d in each direction.
func (n *Network) SetDelay(a, b string, d time.Duration) { n.delay[pair(a, b)] = d }

// Partition splits the LAN: routers talk only within their side. Routers
// not named are on the first side.
func (n *Network) Partition(sides ...[]string) {
	n.side = map[string]int{}
	for k, s := range sides {
		for _, name := range s {
			n.side[name] = k
		}
	}
}

// Block drops every packet from one router to another (one way).
func (n *Network) Block(from, to string) { n.blocked[[2]string{from, to}] = true }

// Heal removes partitions and blocks (not losses or delays).
func (n *Network) Heal() {
	n.side = nil
	n.blocked = map[[2]string]bool{}
}

func (n *Network) connected(a, b string) bool {
	if n.blocked[[2]string{a, b}] {
		return false
	}
	return n.side == nil || n.side[a] == n.side[b]
}

// Stall freezes r for d, like SIGSTOP followed by SIGCONT.
func (n *Network) Stall(r *Router, d time.Duration) {
	r.stalledUntil = n.now.Add(d)
	n.logf("%s stalled until %s", r.Name, fmtTime(r.stalledUntil.Sub(Epoch)))
}

// Kill stops r at once, like kill -9: no advert, the VIPs stay installed.
func (n *Network) Kill(r *Router) {
	r.dead = true
	r.backlog = nil
	r.stalledUntil = time.Time{}
	n.logf("%s killed, vips left: %s", r.Name, prefixes(r.vips))
}

// Restart starts a killed router afresh with its configs, removing the
// stale VIPs first as keepalived does at startup.
func (n *Network) Restart(r *Router) error {
	for _, p := range r.vips {
		n.logf("%s -vip %v (stale)", r.Name, p)
	}
	r.vips = nil
	cfgs := r.cfgs
	r.cfgs, r.insts, r.dead = nil, nil, false
	r.stalledUntil, r.backlog = time.Time{}, nil
	n.logf("%s restarted", r.Name)
	for _, c := range cfgs {
		if err := r.addInstance(n, c); err != nil {
			return err
		}
	}
	if r.group != nil {
		g, err := vrrp.NewGroup(r.gname, r.insts...)
		if err != nil {
			return err
		}
		r.group = g
	}
	n.flush()
	return nil
}

// Step applies ev to r's instance for vrid (0: all of r's instances).
func (n *Network) Step(r *Router, vrid uint8, ev vrrp.Event) error {
	if r.dead {
		return fmt.Errorf("router %s is dead", r.Name)
	}
	var errs []string
	for _, in := range r.insts {
		if vrid != 0 && in.Config().VRID != vrid {
			continue
		}
		if err := in.Step(n.now, ev); err != nil {
			errs = append(errs, err.Error())
		}
	}
	n.flush()
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Inject hands a packet to r now, as if it had just arrived, and returns
// what the instance said (nil or a *vrrp.DropError).
func (n *Network) Inject(r *Router, p vrrp.Packet) error {
	if r.dead {
		return fmt.Errorf("router %s is dead", r.Name)
	}
	in := r.demux(p.Data)
	err := in.Step(n.now, p)
	n.flush()
	return err
}

// demux picks the instance a packet goes to by its VRID, as keepalived
// does; one for another VRID goes to the first instance, which counts it.
func (r *Router) demux(b []byte) *vrrp.Instance {
	if len(b) > 1 {
		if in := r.Instance(b[1]); in != nil {
			return in
		}
	}
	return r.insts[0]
}

// RunFor runs the network for d of virtual time.
func (n *Network) RunFor(d time.Duration) { n.RunUntil(n.now.Add(d)) }

// RunUntil runs the network until t, processing every timer and delivery
// due by then in time order; at equal times stall ends come first, then
// timers, then deliveries in the order they were sent.
func (n *Network) RunUntil(t time.Time) {
	for {
		at, r, what := n.nextEvent()
		if what == "" || at.After(t) {
			break
		}
		if at.After(n.now) {
			n.now = at
		}
		switch what {
		case "resume":
			n.resume(r)
		case "timer":
			for _, in := range r.insts {
				in.Advance(n.now)
			}
		case "deliver":
			d := n.queue[0]
			n.queue = n.queue[1:]
			n.deliver(d)
		}
		n.flush()
	}
	if t.After(n.now) {
		n.now = t
	}
}

func (n *Network) nextEvent() (time.Time, *Router, string) {
	var (
		at   time.Time
		who  *Router
		what string
	)
	consider := func(t time.Time, r *Router, w string) {
		if !t.IsZero() && (what == "" || t.Before(at)) {
			at, who, what = t, r, w
		}
	}
	for _, r := range n.routers {
		if !r.stalledUntil.IsZero() {
			consider(r.stalledUntil, r, "resume")
		}
	}
	for _, r := range n.routers {
		if r.dead || !r.stalledUntil.IsZero() {
			continue
		}
		for _, in := range r.insts {
			t := in.Next()
			if !t.IsZero() && t.Before(n.now) {
				panic(fmt.Sprintf("sim: %s: engine deadline %v is in the past (now %v)", r.label(in), t, n.now))
			}
			consider(t, r, "timer")
		}
	}
	if len(n.queue) > 0 {
		consider(n.queue[0].at, nil, "deliver")
	}
	return at, who, what
}

func (n *Network) resume(r *Router) {
	r.stalledUntil = time.Time{}
	n.logf("%s resumed, %d packets buffered", r.Name, len(r.backlog))
	backlog := r.backlog
	r.backlog = nil
	for _, d := range backlog {
		n.process(d)
		n.flush()
	}
	for _, in := range r.insts {
		in.Advance(n.now)
	}
}

func (n *Network) deliver(d delivery) {
	switch {
	case d.to.dead:
	case !d.to.stalledUntil.IsZero():
		d.to.backlog = append(d.to.backlog, d)
	default:
		n.process(d)
	}
}

func (n *Network) process(d delivery) {
	in := d.to.demux(d.pkt.Data)
	if len(d.pkt.Data) > 1 && in.Config().VRID != d.pkt.Data[1] {
		return // another virtual router's: the daemon's demux drops it silently
	}
	if err := in.Step(n.now, d.pkt); err != nil {
		n.logf("%s drop from %v: %v", d.to.label(in), d.pkt.Src, dropText(err))
	}
}

func dropText(err error) string {
	if de, ok := err.(*vrrp.DropError); ok {
		if de.Reason == vrrp.DropLength {
			// The codec's wording is not ours to pin in golden traces.
			return de.Reason.String()
		}
		return de.Reason.String() + ": " + de.Detail
	}
	return err.Error()
}

// send puts an advert from r on the wire.
func (n *Network) send(r *Router, o vrrp.Outbound) {
	for _, to := range n.routers {
		if to == r {
			continue
		}
		if !o.Dst.IsMulticast() && o.Dst != to.Addr {
			continue
		}
		if !n.connected(r.Name, to.Name) {
			continue
		}
		if p := n.loss[pair(r.Name, to.Name)]; p > 0 && n.rng.Float64() < p {
			if !n.Quiet {
				n.logf("%s lost %s -> %s", r.Name, r.Name, to.Name)
			}
			continue
		}
		n.seq++
		d := delivery{
			at:  n.now.Add(n.delay[pair(r.Name, to.Name)]),
			seq: n.seq,
			to:  to,
			pkt: vrrp.Packet{Data: o.Data, Src: r.Addr, Dst: o.Dst, TTL: 255},
		}
		// Keep the queue ordered by time, then by sending order.
		k, _ := slices.BinarySearchFunc(n.queue, d, func(a, b delivery) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return int(a.seq) - int(b.seq)
		})
		n.queue = slices.Insert(n.queue, k, d)
	}
}

// flush carries out what every live router's instances are ready to do.
func (n *Network) flush() {
	for _, r := range n.routers {
		if r.dead {
			continue
		}
		for _, in := range r.insts {
			rd := in.Ready()
			n.apply(r, in, rd)
		}
		if r.group != nil {
			for _, t := range r.group.Ready() {
				n.logf("%s group %s %v -> %v", r.Name, r.gname, t.From, t.To)
			}
		}
	}
}

func (n *Network) apply(r *Router, in *vrrp.Instance, rd vrrp.Ready) {
	l := r.label(in)
	for _, t := range rd.Transitions {
		n.logf("%s %v -> %v: %s (prio %d)", l, t.From, t.To, t.Reason, t.Priority)
	}
	for _, note := range rd.Notes {
		n.logf("%s note: %s", l, note)
	}
	for _, p := range rd.AddAddrs {
		if !slices.Contains(r.vips, p) {
			r.vips = append(r.vips, p)
		}
		n.logf("%s +vip %v", l, p)
	}
	if !n.Quiet {
		for _, a := range rd.Announce {
			n.logf("%s announce x%d %s (%s)", l, a.Repeat, addrs(a.Addrs), a.Reason)
		}
	}
	for _, o := range rd.Adverts {
		if !n.Quiet || o.Priority == 0 {
			n.logf("%s advert %s", l, describe(o, in.Config().Family))
		}
		n.send(r, o)
	}
	for _, p := range rd.DelAddrs {
		r.vips = slices.DeleteFunc(r.vips, func(q netip.Prefix) bool { return q == p })
		n.logf("%s -vip %v", l, p)
	}
}

func describe(o vrrp.Outbound, fam inet.Family) string {
	a, err := wire.Parse(o.Data, fam)
	if err != nil {
		return fmt.Sprintf("unparsable (%v) -> %v", err, o.Dst)
	}
	ival := fmt.Sprintf("%ds", a.Interval)
	if a.Version == 3 {
		ival = fmt.Sprintf("%dcs", a.Interval)
	}
	return fmt.Sprintf("v%d vrid %d prio %d int %s -> %v", a.Version, a.VRID, a.Priority, ival, o.Dst)
}

func addrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for k, a := range as {
		s[k] = a.String()
	}
	return strings.Join(s, ",")
}

func prefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for k, p := range ps {
		s[k] = p.String()
	}
	return strings.Join(s, ",")
}

// Holders returns, for each VIP installed anywhere, the routers holding it:
// more than one is a split brain.
func (n *Network) Holders() map[netip.Prefix][]string {
	h := map[netip.Prefix][]string{}
	for _, r := range n.routers {
		for _, p := range r.vips {
			h[p] = append(h[p], r.Name)
		}
	}
	return h
}
