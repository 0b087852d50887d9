package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"vigil/internal/inet"
	"vigil/vrrp/wire"
)

// Instance is one virtual router. It is not safe for concurrent use: the
// daemon's event loop owns it.
//
// Its size is kept in check (issue #7; TestInstanceSize): 1,112 bytes
// once, in the runtime's 1,152-byte size class, 512 now, in the 512
// class: up to 512 bytes an object has no header, one byte more puts it
// in the 576 class with the 8-byte header the runtime puts before a larger
// object with pointers. What did it: the one-byte fields kept together
// (State is one byte) and sharing two words with the two-byte ones; the
// advert destinations and the password derived when used; the pending
// output is the adverts and a pointer to the rest, allocated when there is
// some (output); what only some instances have, and most only for a while
// (the drop counters, the words of a tracking fault or a bfd_takeover,
// the delayed GARP bursts), allocated when there is some (drops, rare);
// the times kept as 8-byte instants on the instance's clock, not 24-byte
// time.Times (clock.go); no receive scratch (wire.ParseHeader reads the
// header, wire.HasAddr the addresses where they are); the addresses the
// caller holds as a flag, not a slice (held).
type Instance struct {
	cfg Config
	// origin is the instance's clock (see instant); now is the latest
	// time the engine has been given.
	origin time.Time
	now    instant

	state      State
	prio       uint8 // effective priority
	masterPrio uint8
	// Causes of FAULT; the instance is in FAULT while any holds.
	ifDown     bool
	trackFault bool
	groupFault bool
	// wantMaster: the down timer expired but a sync group holds us back.
	wantMaster bool
	// ivalMismatch: the last advert had a version 3 interval other than
	// ours; it is noted only when this changes.
	ivalMismatch bool
	// oldUnicastSum: send pre-1.3.6 keepalived unicast checksums
	// (configured, or detected in a peer's advert).
	oldUnicastSum bool
	// wantVIPs and holdsVIPs: see out.
	wantVIPs  bool
	holdsVIPs bool
	// masterAdverCs is the Master_Adver_Interval the down timer uses, in
	// centiseconds (masterAdverInt): a version 3 advert carries
	// centiseconds, a version 2 instance's is its own whole seconds. Two
	// bytes rather than a Duration's eight fit beside the one-byte fields.
	masterAdverCs uint16
	// delta is the tracking weights (Tracking.Delta), kept within ±255:
	// EffectivePriority is the same beyond.
	delta int16

	masterAddr netip.Addr

	// Timers; 0 is a timer that does not run. The delayed GARP bursts
	// are in rare.
	downAt    instant // BACKUP: Master_Down_Timer
	advertAt  instant // MASTER: Adver_Timer
	refreshAt instant // MASTER: periodic GARP refresh
	preemptAt instant // BACKUP: when a pending preempt delay ends (not a timer)

	// rare holds what only some instances have, most of them for a
	// while: nil when there is none of it (rareFields).
	rare *rareFields

	since instant
	why   because

	counters counts
	// drops are Counters.Dropped, nil until the first drop: a dropped
	// advert is rare and allocates its DropError anyway, and the 112
	// bytes of an array kept in every instance took it over a size
	// class.
	drops *[numDropReasons]uint64
	group *Group

	// Output pending for Ready. Addresses are declarative: wantVIPs is
	// whether the state calls for own, holdsVIPs whether the caller was
	// last told to have it (or, after a reload, out.more.held what it
	// has), and Ready hands over the difference (held, wanted).
	out output
	// own are the addresses a master holds, the VIPs then the excluded
	// VIPs: one array, of which cfg.VIPs and cfg.ExcludedVIPs are the two
	// parts. One allocation per instance where there were three (the two
	// lists and a copy of both as the addresses installed; 56 bytes less
	// per instance with one VIP).
	own []netip.Prefix

	// adverts are the last adverts built, one per destination, shared
	// read only with the caller: a master sends the same bytes every
	// Adver_Timer while its priority and configuration stay (RFC 5798
	// section 5.2 and RFC 3768 section 5.3: an advert's fields are the
	// configuration's and the priority, its checksum is over them and
	// the addresses it goes from and to). Nil but while MASTER. With
	// them a steady-state advert sent allocates nothing; before, every
	// master kept a spare buffer, the slice that held it and the
	// Outbound slice the caller handed back to be refilled (104-112
	// bytes) beside the 80-88 these take.
	adverts []Outbound
}

// The multicast destinations, shared by every instance (read only).
var groupV4, groupV6 = []netip.Addr{wire.GroupV4}, []netip.Addr{wire.GroupV6}

// advertDsts are where adverts go: the unicast peers, or the group.
func (i *Instance) advertDsts() []netip.Addr {
	switch {
	case len(i.cfg.Peers) > 0:
		return i.cfg.Peers
	case i.cfg.Family == inet.IPv6:
		return groupV6
	}
	return groupV4
}

// authData is the version 2 authentication data: the password, padded.
func (i *Instance) authData() [8]byte {
	if i.cfg.AuthType != wire.AuthPass {
		return [8]byte{}
	}
	return wire.Password(i.cfg.AuthPass)
}

// addrsOf are the addresses of prefixes.
func addrsOf(prefixes []netip.Prefix) []netip.Addr {
	a := make([]netip.Addr, len(prefixes))
	for k, p := range prefixes {
		a[k] = p.Addr()
	}
	return a
}

// rareFields is Instance.rare: the words of a tracking fault and of a
// bfd_takeover, and a master's delayed GARP bursts (every new master has
// one, for vrrp_garp_master_delay, 5 s by default). Kept in every
// instance they took 64 bytes of it (issue #7: two strings took it over
// the 768-byte size class once, the bursts' slice over the 512 one);
// here they cost an allocation when the first of them comes, and none
// once they are all gone (tidyRare).
type rareFields struct {
	// trackWhy is what holds the instance in FAULT by tracking, while
	// trackFault.
	trackWhy string
	// takeover is why the down timer was brought forward by PeerDown;
	// empty when it runs its ordinary course.
	takeover string
	// bursts are MASTER's delayed GARP bursts.
	bursts []burst
	// pace is MASTER's Adver_Timer while the caller runs it (Pace).
	pace pacing
}

// more is i.rare, made if there is none.
func (i *Instance) more() *rareFields {
	if i.rare == nil {
		i.rare = new(rareFields)
	}
	return i.rare
}

// tidyRare lets i.rare go once it holds nothing.
func (i *Instance) tidyRare() {
	if r := i.rare; r != nil && r.trackWhy == "" && r.takeover == "" && len(r.bursts) == 0 && r.pace.adverts == nil {
		i.rare = nil
	}
}

// setTakeover and setTrackWhy set a rareFields word; clearing one
// allocates nothing.
func (i *Instance) setTakeover(w string) {
	if w != "" {
		i.more().takeover = w
	} else if i.rare != nil {
		i.rare.takeover = ""
		i.tidyRare()
	}
}

func (i *Instance) setTrackWhy(w string) {
	if w != "" {
		i.more().trackWhy = w
	} else if i.rare != nil {
		i.rare.trackWhy = ""
		i.tidyRare()
	}
}

func (i *Instance) takeover() string {
	if i.rare == nil {
		return ""
	}
	return i.rare.takeover
}

// bursts are the delayed GARP bursts pending.
func (i *Instance) bursts() []burst {
	if i.rare == nil {
		return nil
	}
	return i.rare.bursts
}

func (i *Instance) addBurst(b burst) {
	r := i.more()
	r.bursts = append(r.bursts, b)
}

func (i *Instance) stopBursts() {
	if i.rare != nil {
		i.rare.bursts = nil
		i.tidyRare()
	}
}

// masterAdverInt is the Master_Adver_Interval the down timer uses.
func (i *Instance) masterAdverInt() time.Duration {
	return time.Duration(i.masterAdverCs) * 10 * time.Millisecond
}

// setMasterAdverInt sets it to d, a whole number of centiseconds (a
// validated advert_int, or a version 3 advert's interval).
func (i *Instance) setMasterAdverInt(d time.Duration) {
	i.masterAdverCs = uint16(d / (10 * time.Millisecond))
}

// output is what the engine queues for Ready; Ready adds the address
// changes and the next deadline. A steady-state master queues adverts
// and nothing else, so the rest is allocated when there is some: 24 bytes
// of an Instance instead of 96 (issue #7), for an allocation per
// transition, announcement or note, which allocate their contents anyway.
type output struct {
	Adverts []Outbound
	more    *outputMore
}

type outputMore struct {
	Announce    []Announcement
	Transitions []Transition
	Notes       []string
	// held is what the caller has when a reload changed own: the own
	// of the configuration before (or nothing), until Ready.
	held     []netip.Prefix
	reloaded bool
}

// rest is the output other than adverts, made when first needed.
func (o *output) rest() *outputMore {
	if o.more == nil {
		o.more = new(outputMore)
	}
	return o.more
}

func (o *output) empty() bool { return len(o.Adverts) == 0 && o.more == nil }

// counts are Counters but the drops (Instance.drops).
type counts struct {
	Received, Sent                     uint64
	PriorityZeroRcvd, PriorityZeroSent uint64
	BecameMaster, ReleasedMaster       uint64
}

// countDrop counts a packet dropped for r.
func (i *Instance) countDrop(r DropReason) {
	if i.drops == nil {
		i.drops = new([numDropReasons]uint64)
	}
	i.drops[r]++
}

type burst struct {
	at        instant
	repeat    int
	reason    string
	lowerPrio bool
}

// New checks cfg and starts the instance at now (RFC 5798 section 6.4.1):
// an address owner (priority 255) configured `state MASTER` becomes MASTER
// at once, any other instance BACKUP with the Master_Down_Timer set (FAULT
// comes later, with InterfaceDown or Tracking).
func New(cfg Config, now time.Time) (*Instance, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	i := &Instance{origin: now.Add(-1), prio: cfg.Priority}
	i.now = i.instantOf(now)
	i.since = i.now
	if err := i.setConfig(cfg); err != nil {
		return nil, err
	}
	i.startup(fixed(CauseStartup), true)
	return i, nil
}

// setConfig installs a normalized cfg and what derives from it.
func (i *Instance) setConfig(cfg Config) error {
	// An empty list stays as it was (nil or not): a reload compares
	// configurations with reflect.DeepEqual.
	nv := len(cfg.VIPs)
	own := slices.Concat(cfg.VIPs, cfg.ExcludedVIPs)
	if nv > 0 {
		cfg.VIPs = own[:nv:nv]
	}
	if len(own) > nv {
		cfg.ExcludedVIPs = own[nv:]
	}
	// An advert that cannot be marshalled would make a silent master;
	// find out now rather than at the first transition.
	n := &Instance{cfg: cfg}
	if _, err := n.marshal(255, n.advertDsts()[0]); err != nil {
		return fmt.Errorf("%w %q: %w", ErrConfig, cfg.Name, err)
	}
	i.cfg, i.own = cfg, own
	i.oldUnicastSum = i.oldUnicastSum || cfg.OldUnicastChecksum
	i.adverts = nil // built for the old configuration
	return nil
}

// Reload applies a new configuration to the running instance at now,
// keeping its state and timers, as keepalived does on SIGHUP. The VRID,
// family and version cannot change (an error wrapping ErrConfig: replace
// the instance instead). A master's addresses are diffed: Ready adds and
// announces the new ones, deletes the old ones, and an advert with the
// new priority and list goes out at once. Other settings (preemption,
// authentication, peers, the GARP schedule) apply from the next event.
func (i *Instance) Reload(cfg Config, now time.Time) error {
	i.advance(now)
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	if cfg.VRID != i.cfg.VRID || cfg.Family != i.cfg.Family || cfg.Version != i.cfg.Version {
		return fmt.Errorf("%w %q: a reload cannot change the vrid, family or version (%d %v v%d to %d %v v%d); replace the instance",
			ErrConfig, cfg.Name, i.cfg.VRID, i.cfg.Family, i.cfg.Version, cfg.VRID, cfg.Family, cfg.Version)
	}
	old, held := i.own, i.held()
	if err := i.setConfig(cfg); err != nil {
		return err
	}
	if m := i.out.more; i.holdsVIPs && (m == nil || !m.reloaded) {
		// The caller holds the old own until Ready tells it otherwise.
		r := i.out.rest()
		r.held, r.reloaded = held, true
	}
	i.prio = EffectivePriority(cfg.Priority, int(i.delta))
	switch i.state {
	case StateBackup:
		if cfg.Version == 2 {
			i.setMasterAdverInt(cfg.AdvertInterval)
		}
	case StateMaster:
		i.masterPrio = i.prio
		var fresh []netip.Addr
		for _, p := range i.own {
			if !slices.ContainsFunc(old, func(o netip.Prefix) bool { return o.Addr() == p.Addr() }) {
				fresh = append(fresh, p.Addr())
			}
		}
		if len(fresh) > 0 && cfg.GARP.MasterRepeat > 0 {
			r := i.out.rest()
			r.Announce = append(r.Announce, Announcement{Addrs: fresh, Repeat: cfg.GARP.MasterRepeat, Reason: "reload"})
		}
		i.sendAdvert(i.prio)
		i.advertAt = i.after(cfg.AdvertInterval)
		switch {
		case cfg.GARP.MasterRefresh <= 0:
			i.refreshAt = 0
		case i.refreshAt == 0:
			i.refreshAt = i.after(cfg.GARP.MasterRefresh)
		}
	}
	i.checkPace()
	return nil
}

// Config returns the instance's configuration with defaults filled in.
func (i *Instance) Config() Config { return i.cfg }

// State returns the current state.
func (i *Instance) State() State { return i.state }

// Priority returns the effective priority.
func (i *Instance) Priority() uint8 { return i.prio }

// Step applies ev at now, after running the timers due by now. It returns a
// *DropError for a packet that failed a receive check, and an error for an
// event it does not know.
func (i *Instance) Step(now time.Time, ev Event) error {
	i.advance(now)
	var err error
	switch ev := ev.(type) {
	case Packet:
		err = i.receive(ev)
	case InterfaceDown:
		i.ifDown = true
		i.checkFault(fixed(CauseInterfaceDown))
	case InterfaceUp:
		i.ifDown = false
		i.checkFault(fixed(CauseInterfaceUp))
	case Tracking:
		i.track(ev)
	case Shutdown:
		i.shutdown()
		if i.group != nil {
			i.group.refresh(fixed(CauseShutdown))
		}
	case PeerDown:
		i.peerDown(ev)
	case Startup:
		if i.state == StateInit {
			if i.group != nil {
				i.group.refresh(fixed(CauseStartup)) // a member may be in FAULT
			}
			i.startup(fixed(CauseStartup), true)
			if i.group != nil && i.state == StateMaster {
				i.group.follow(i, StateMaster)
			}
		}
	default:
		// The event's type is not in the message: handing ev to fmt
		// would move every event, each received advert included, to
		// the heap (one allocation per advert).
		return fmt.Errorf("vrrp %s: unknown event", i.cfg.Name)
	}
	i.checkPace()
	return err
}

// Advance runs the timers due by now.
func (i *Instance) Advance(now time.Time) {
	i.advance(now)
	i.checkPace()
}

// Ready returns what to do and forgets it. Its Adverts, and their Data,
// are shared with the engine, which hands the same ones out again while
// they stay right: read only.
func (i *Instance) Ready() Ready {
	rd := Ready{Adverts: i.out.Adverts}
	if !i.addrsSettled() {
		rd.AddAddrs, rd.DelAddrs = i.addrDiff()
	}
	if m := i.out.more; m != nil {
		rd.Announce, rd.Transitions, rd.Notes = m.Announce, m.Transitions, m.Notes
	}
	i.out = output{}
	i.holdsVIPs = i.wantVIPs
	rd.Next = i.next()
	return rd
}

// HasReady reports whether Ready has anything to do.
func (i *Instance) HasReady() bool {
	return !i.out.empty() || !i.addrsSettled()
}

// held are the addresses the caller was last told to have.
func (i *Instance) held() []netip.Prefix {
	if m := i.out.more; m != nil && m.reloaded {
		return m.held
	}
	if i.holdsVIPs {
		return i.own
	}
	return nil
}

// wanted are the addresses the state calls for.
func (i *Instance) wanted() []netip.Prefix {
	if i.wantVIPs {
		return i.own
	}
	return nil
}

// addrsSettled reports, without allocating, whether the addresses held
// are what the state calls for (addrDiff would be empty).
func (i *Instance) addrsSettled() bool {
	return slices.Equal(i.held(), i.wanted())
}

// addrDiff is what the caller must add and delete to go from the
// addresses held to what the state calls for.
func (i *Instance) addrDiff() (add, del []netip.Prefix) {
	held, want := i.held(), i.wanted()
	for _, p := range want {
		if !slices.Contains(held, p) {
			add = append(add, p)
		}
	}
	for _, p := range held {
		if !slices.Contains(want, p) {
			del = append(del, p)
		}
	}
	return add, del
}

// Next is when Advance must next be called, as Ready.Next.
func (i *Instance) Next() time.Time { return i.next() }

// Status returns a snapshot.
func (i *Instance) Status() Status {
	s := Status{
		Name:                i.cfg.Name,
		VRID:                i.cfg.VRID,
		Version:             i.cfg.Version,
		State:               i.state,
		Since:               i.timeOf(i.since),
		Reason:              i.why.text,
		Cause:               i.why.cause,
		Priority:            i.prio,
		BasePriority:        i.cfg.Priority,
		OwnsVIPs:            i.wantVIPs,
		AcceptTraffic:       i.state == StateMaster && (i.prio == 255 || !i.cfg.NoAccept),
		MasterAddr:          i.masterAddr,
		MasterPriority:      i.masterPrio,
		AdvertInterval:      i.cfg.AdvertInterval,
		MasterAdverInterval: i.masterAdverInt(),
		MasterDownInterval:  i.downInterval(),
		MasterDownAt:        i.timeOf(i.downAt),
		NextAdvertAt:        i.timeOf(i.advertAt),
		Paced:               i.Pacing(),
		PreemptAt:           i.timeOf(i.preemptAt),
		Counters: Counters{
			Received: i.counters.Received, Sent: i.counters.Sent,
			PriorityZeroRcvd: i.counters.PriorityZeroRcvd, PriorityZeroSent: i.counters.PriorityZeroSent,
			BecameMaster: i.counters.BecameMaster, ReleasedMaster: i.counters.ReleasedMaster,
		},
	}
	if s.Paced {
		s.NextAdvertAt = i.timeOf(i.paceTick(i.now))
	}
	if i.drops != nil {
		s.Counters.Dropped = *i.drops
	}
	if i.ifDown {
		s.Faults = append(s.Faults, "interface down")
	}
	if i.trackFault {
		s.Faults = append(s.Faults, i.rare.trackWhy)
	}
	if i.groupFault {
		s.Faults = append(s.Faults, "sync group "+i.group.name)
	}
	return s
}

func (i *Instance) downInterval() time.Duration {
	return MasterDownInterval(i.cfg.Version, i.prio, i.masterAdverInt())
}

func (i *Instance) skew() time.Duration {
	return SkewTime(i.cfg.Version, i.prio, i.masterAdverInt())
}

func (i *Instance) next() time.Time {
	var n instant
	earlier := func(t instant) {
		if t != 0 && (n == 0 || t < n) {
			n = t
		}
	}
	earlier(i.downAt)
	earlier(i.advertAt)
	earlier(i.refreshAt)
	for _, b := range i.bursts() {
		earlier(b.at)
	}
	return i.timeOf(n)
}

// advance runs the timers due by now. Time never goes backwards for the
// engine: an earlier now is taken as the last one seen.
func (i *Instance) advance(t time.Time) {
	i.setNow(t)
	now := i.now
	switch i.state {
	case StateBackup:
		if due(i.downAt, now) {
			why := fixed(CauseMasterDown)
			if w := i.takeover(); w != "" {
				// bfd_takeover: the timer was brought forward (PeerDown).
				why = because{CauseBFDTakeover, w}
			}
			i.tryMaster(why)
		}
	case StateMaster:
		// One advert however late we are: a stalled master catching up
		// must not burst (RFC 5798 section 6.4.3 restarts the timer).
		if due(i.advertAt, now) {
			i.sendAdvert(i.prio)
			i.advertAt = i.after(i.cfg.AdvertInterval)
		}
		if bs := i.bursts(); len(bs) > 0 {
			kept := bs[:0]
			for _, b := range bs {
				if due(b.at, now) {
					i.announce(b.repeat, b.reason)
				} else {
					kept = append(kept, b)
				}
			}
			if len(kept) == 0 {
				i.stopBursts() // let the array go too
			} else {
				i.rare.bursts = kept
			}
		}
		if due(i.refreshAt, now) {
			i.announce(i.cfg.GARP.MasterRefreshRepeat, "refresh")
			i.refreshAt = i.after(i.cfg.GARP.MasterRefresh)
		}
	}
}

// peerDown brings the Master_Down_Timer forward to Skew_Time from now when
// the router found unreachable is our master (see PeerDown).
func (i *Instance) peerDown(ev PeerDown) {
	a := ev.Addr.Unmap().WithZone("")
	if i.state != StateBackup || !a.IsValid() || a != i.masterAddr || i.masterPrio == 0 {
		return
	}
	at := i.after(i.skew())
	if i.downAt == 0 || at < i.downAt {
		i.downAt = at
		w := "takeover: " + ev.Reason
		if ev.Reason == "" {
			w = fmt.Sprintf("takeover: master %v unreachable", a)
		}
		i.setTakeover(w)
	}
}

// tryMaster is RFC 5798 section 6.4.2's Master_Down_Timer firing.
func (i *Instance) tryMaster(reason because) {
	i.wantMaster = true
	if i.group != nil && !i.group.allWantMaster(i) {
		// keepalived prefers BACKUP to thrashing: wait for the others,
		// checking again a Master_Down_Interval later.
		i.downAt = i.after(i.downInterval())
		i.setTakeover("") // the next expiry is the ordinary timer's
		return
	}
	i.becomeMaster(reason)
	if i.group != nil {
		i.group.follow(i, StateMaster)
	}
}

// startup enters BACKUP, or FAULT. Only at process start (initial), an
// address owner configured `state MASTER` goes MASTER at once; this is
// keepalived 2.2.7's reading of RFC 5798 section 6.4.1 (observed: priority
// 255 with state BACKUP, and any owner leaving FAULT, wait for the
// Master_Down_Timer like everyone else).
func (i *Instance) startup(reason because, initial bool) {
	i.setMasterAdverInt(i.cfg.AdvertInterval)
	i.preemptAt = 0
	i.masterAddr, i.masterPrio = netip.Addr{}, 0
	if i.faulty() {
		i.transition(StateFault, reason)
		return
	}
	if initial && i.prio == 255 && i.cfg.InitialState == StateMaster {
		i.becomeMaster(fixed(CauseAddressOwner))
		return
	}
	i.becomeBackup(reason)
}

func (i *Instance) faulty() bool { return i.ownFault() || i.groupFault }

// ownFault: a cause of FAULT of the instance's own, not its sync group's.
func (i *Instance) ownFault() bool { return i.ifDown || i.trackFault }

// checkFault enters or leaves FAULT as the causes say.
func (i *Instance) checkFault(reason because) {
	if i.group != nil {
		i.group.refresh(reason)
		return
	}
	i.settleFault(reason)
}

func (i *Instance) track(ev Tracking) {
	reason := because{CauseTracking, ev.Reason}
	if reason.text == "" {
		reason.text = "tracking"
	}
	i.trackFault = ev.Fault
	if ev.Fault {
		i.setTrackWhy(reason.text)
	} else {
		i.setTrackWhy("") // read only while trackFault
	}
	i.delta = int16(max(-255, min(255, ev.Delta)))
	i.prio = EffectivePriority(i.cfg.Priority, ev.Delta)
	i.checkFault(reason)
}

func (i *Instance) shutdown() {
	if i.state == StateInit {
		return
	}
	if i.state == StateMaster {
		i.sendAdvert(0)
	}
	i.stopTimers()
	i.wantVIPs = false
	i.transition(StateInit, fixed(CauseShutdown))
}

func (i *Instance) stopTimers() {
	i.setTakeover("")
	i.downAt, i.advertAt, i.refreshAt, i.preemptAt = 0, 0, 0, 0
	i.stopBursts()
	i.wantMaster = false
}

func (i *Instance) becomeMaster(reason because) {
	i.stopTimers()
	i.transition(StateMaster, reason)
	i.counters.BecameMaster++
	i.wantVIPs = true
	i.masterAddr, i.masterPrio = i.cfg.SrcAddr, i.prio
	// RFC 5798 section 6.4.2: send an ADVERTISEMENT, announce, start the
	// Adver_Timer.
	i.announce(i.cfg.GARP.MasterRepeat, "became master")
	i.sendAdvert(i.prio)
	i.advertAt = i.after(i.cfg.AdvertInterval)
	if i.cfg.GARP.MasterDelay > 0 {
		i.addBurst(burst{at: i.after(i.cfg.GARP.MasterDelay), repeat: i.cfg.GARP.MasterRepeat, reason: "became master, delayed"})
	}
	if i.cfg.GARP.MasterRefresh > 0 {
		i.refreshAt = i.after(i.cfg.GARP.MasterRefresh)
	}
}

func (i *Instance) becomeBackup(reason because) {
	if i.state == StateMaster {
		i.counters.ReleasedMaster++
	}
	i.stopTimers()
	i.wantVIPs = false
	i.transition(StateBackup, reason)
	i.downAt = i.after(i.downInterval())
}

func (i *Instance) becomeFault(reason because) {
	if i.state == StateMaster {
		i.counters.ReleasedMaster++
		if !i.ifDown {
			i.sendAdvert(0)
		}
	}
	i.stopTimers()
	i.wantVIPs = false
	i.transition(StateFault, reason)
}

func (i *Instance) transition(to State, reason because) {
	if to == i.state {
		return
	}
	r := i.out.rest()
	r.Transitions = append(r.Transitions, Transition{At: i.timeOf(i.now), From: i.state, To: to, Cause: reason.cause, Reason: reason.text, Priority: i.prio})
	if i.state == StateMaster {
		i.adverts = nil // a backup keeps no adverts
	}
	i.state, i.since, i.why = to, i.now, reason
}

func (i *Instance) announce(repeat int, reason string) {
	if repeat <= 0 || len(i.own) == 0 {
		return
	}
	r := i.out.rest()
	r.Announce = append(r.Announce, Announcement{Addrs: addrsOf(i.own), Repeat: repeat, Reason: reason})
}

func (i *Instance) marshal(prio uint8, dst netip.Addr) ([]byte, error) {
	ival, err := wire.EncodeInterval(uint8(i.cfg.Version), i.cfg.AdvertInterval)
	if err != nil {
		return nil, err
	}
	a := wire.Advert{
		Version:  uint8(i.cfg.Version),
		Type:     wire.TypeAdvertisement,
		VRID:     i.cfg.VRID,
		Priority: prio,
		Interval: ival,
		Addrs:    addrsOf(i.cfg.VIPs),
	}
	if i.cfg.Version == 2 {
		a.AuthType = i.cfg.AuthType
		a.AuthData = i.authData()
	}
	sumDst := dst
	if i.oldUnicastSum && a.Version == 3 && dst.Is4() && !dst.IsMulticast() {
		sumDst = wire.GroupV4
	}
	return a.Marshal(i.cfg.SrcAddr, sumDst, i.cfg.ChecksumMode)
}

// sendAdvert queues an advert with priority prio to each destination:
// the ones built last time if they have that priority, or new ones.
func (i *Instance) sendAdvert(prio uint8) {
	if len(i.adverts) == 0 || i.adverts[0].Priority != prio {
		dsts := i.advertDsts()
		i.adverts = make([]Outbound, len(dsts))
		for k, dst := range dsts {
			b, err := i.marshal(prio, dst)
			if err != nil {
				// New marshalled the same fields successfully.
				panic(fmt.Sprintf("vrrp %s: marshal advert: %v", i.cfg.Name, err))
			}
			i.adverts[k] = Outbound{Dst: dst, Data: b, Priority: prio}
		}
	}
	if i.out.Adverts == nil {
		// The full slice expression: an append to Adverts (a second
		// advert in the same turn) copies rather than writes into
		// i.adverts.
		i.out.Adverts = i.adverts[:len(i.adverts):len(i.adverts)]
	} else {
		i.out.Adverts = append(i.out.Adverts, i.adverts...)
	}
	n := uint64(len(i.adverts))
	i.counters.Sent += n
	if prio == 0 {
		i.counters.PriorityZeroSent += n
	}
}
