package config

import (
	"net/netip"
	"slices"
	"strconv"
	"time"
	"vigil/internal/inet"
	"vigil/vrrp"
)

// Config is a whole keepalived.conf as typed values. Slices keep file order
// (so that output and reloads are deterministic); the lookup methods find
// named items. Every item carries the Pos of its keyword.
type Config struct {
	Global Global

	Scripts        []*VRRPScript
	TrackFiles     []*TrackFile
	TrackProcesses []*TrackProcess
	// BFDInstances are the bfd_instance blocks, in file order.
	BFDInstances []*BFDInstance
	Instances    []*Instance
	SyncGroups   []*SyncGroup

	VirtualServerGroups []*VirtualServerGroup
	VirtualServers      []*VirtualServer
	// LocalAddressGroups are DPVS local_address_group blocks: the source
	// addresses FNAT services translate to.
	LocalAddressGroups []*LocalAddressGroup
	// BGPInstances are vigil's bgp_instance blocks (keywords_bgp.go).
	BGPInstances []*BGPInstance

	// Static addresses, routes and rules stay on the host whatever the
	// VRRP state.
	StaticAddresses []*VIP
	StaticRoutes    []*Route
	StaticRules     []*Rule

	// SSL is the top-level SSL block for SSL_GET checkers, or nil.
	SSL *SSLConfig

	// GarpGroups are the garp_group blocks (keywords_garp.go).
	GarpGroups []*GarpGroup

	// idx maps names to items; Build fills it, so lookups on a loaded
	// Config are O(1); a miss falls back to a scan, so items appended
	// later (or a Config built by hand) are still found.
	idx *index
}

type index struct {
	scripts    map[string]*VRRPScript
	trackFiles map[string]*TrackFile
	trackProcs map[string]*TrackProcess
	instances  map[string]*Instance
}

func newIndex() *index {
	return &index{
		scripts:    map[string]*VRRPScript{},
		trackFiles: map[string]*TrackFile{},
		trackProcs: map[string]*TrackProcess{},
		instances:  map[string]*Instance{},
	}
}

// reindex rebuilds the index after items were dropped by validation.
func (c *Config) reindex() {
	c.idx = newIndex()
	for _, s := range c.Scripts {
		c.idx.scripts[s.Name] = s
	}
	for _, s := range c.TrackFiles {
		c.idx.trackFiles[s.Name] = s
	}
	for _, s := range c.TrackProcesses {
		c.idx.trackProcs[s.Name] = s
	}
	for _, s := range c.Instances {
		c.idx.instances[s.Name] = s
	}
}

// DropInstances forgets the vrrp_instance blocks (Instances and their
// index). A daemon calls it once it has built its instances from them and
// keeps what it still reads elsewhere: a block and its VIPs are about
// 1 KB each, and a loaded Config is otherwise kept for the daemon's life
// (issue #7). Instance then finds nothing.
func (c *Config) DropInstances() {
	c.Instances = nil
	if c.idx != nil {
		c.idx.instances = map[string]*Instance{}
	}
}

// Script returns the vrrp_script called name, or nil.
func (c *Config) Script(name string) *VRRPScript {
	return lookup(c.index().scripts, c.Scripts, name, func(x *VRRPScript) string { return x.Name })
}

// TrackFile returns the track_file called name, or nil.
func (c *Config) TrackFile(name string) *TrackFile {
	return lookup(c.index().trackFiles, c.TrackFiles, name, func(x *TrackFile) string { return x.Name })
}

// TrackProcess returns the vrrp_track_process called name, or nil.
func (c *Config) TrackProcess(name string) *TrackProcess {
	return lookup(c.index().trackProcs, c.TrackProcesses, name, func(x *TrackProcess) string { return x.Name })
}

// Instance returns the vrrp_instance called name, or nil.
func (c *Config) Instance(name string) *Instance {
	return lookup(c.index().instances, c.Instances, name, func(x *Instance) string { return x.Name })
}

// VirtualServerGroup returns the virtual_server_group called name, or nil.
func (c *Config) VirtualServerGroup(name string) *VirtualServerGroup {
	return lookup(nil, c.VirtualServerGroups, name, func(x *VirtualServerGroup) string { return x.Name })
}

// LocalAddressGroup returns the local_address_group called name, or nil.
func (c *Config) LocalAddressGroup(name string) *LocalAddressGroup {
	return lookup(nil, c.LocalAddressGroups, name, func(x *LocalAddressGroup) string { return x.Name })
}

// noIndex is the index of a Config built by hand: every lookup scans.
var noIndex index

func (c *Config) index() *index {
	if c.idx == nil {
		return &noIndex
	}
	return c.idx
}

// lookup returns the item called name: the one idx maps it to, else the
// first of list whose nameOf is name, else nil.
func lookup[T any](idx map[string]*T, list []*T, name string, nameOf func(*T) string) *T {
	if x := idx[name]; x != nil {
		return x
	}
	if i := slices.IndexFunc(list, func(x *T) bool { return nameOf(x) == name }); i >= 0 {
		return list[i]
	}
	return nil
}

// OptBool is a boolean that remembers whether it was configured, for
// settings whose default comes from elsewhere (a global, or the state).
type OptBool struct {
	Set   bool
	Value bool
}

// Or returns the value when set, def otherwise.
func (o OptBool) Or(def bool) bool {
	if o.Set {
		return o.Value
	}
	return def
}

// Command is a script to run: a notify script, a vrrp_script, a MISC_CHECK.
type Command struct {
	Pos Pos
	// Raw is the command as written, for messages.
	Raw string
	// Args is the command split shell-like; Args[0] is the program.
	Args []string
	// User and Group to run as; empty means the global script_user.
	User  string
	Group string
}

// Path is the program to run, or "" for an empty command.
func (c *Command) Path() string {
	if c == nil || len(c.Args) == 0 {
		return ""
	}
	return c.Args[0]
}

// Fifo is a notify FIFO with an optional script that reads it.
type Fifo struct {
	Pos    Pos
	Path   string
	User   string
	Group  string
	Script *Command
}

// Garp holds the gratuitous ARP / unsolicited NA timing of an instance
// (or the global default): the engine's schedule of bursts (vrrp.GARP,
// whose fields it promotes: vrrp_garp_master_delay and the rest) and the
// pacing of the messages within a burst, which is the announcer's.
type Garp struct {
	vrrp.GARP
	// Interval is the gap between two ARPs, NAInterval between two NAs.
	Interval   time.Duration
	NAInterval time.Duration
}

// DefaultGarp is keepalived's default announcement timing.
var DefaultGarp = Garp{GARP: vrrp.DefaultGARP()}

// Global is the global_defs block.
type Global struct {
	Pos Pos

	RouterID string

	NotificationEmail     []string
	NotificationEmailFrom string
	// SMTPServer is an address or a host name; SMTPPort defaults to 25.
	SMTPServer         string
	SMTPPort           uint16
	SMTPHeloName       string
	SMTPConnectTimeout time.Duration
	SMTPAlert          OptBool
	SMTPAlertVRRP      OptBool
	SMTPAlertChecker   OptBool
	NoEmailFaults      bool
	CheckerLogAllFails bool

	ScriptUser           string
	ScriptGroup          string
	EnableScriptSecurity bool
	StartupScript        *Command
	ShutdownScript       *Command
	StartupTimeout       time.Duration
	ShutdownTimeout      time.Duration

	NotifyFifo     *Fifo
	VRRPNotifyFifo *Fifo
	LVSNotifyFifo  *Fifo

	DefaultInterface string

	VRRPVersion          int
	VRRPStrict           bool
	VRRPCheckUnicastSrc  bool
	VRRPSkipCheckAdvAddr bool
	VRRPMcastGroup4      netip.Addr
	VRRPMcastGroup6      netip.Addr
	VRRPMinGarp          bool
	Garp                 Garp
	// VRRPGarpExtraIf is the period of GARPs on interfaces other than the
	// instance's; 0 is off.
	VRRPGarpExtraIf       time.Duration
	VRRPGarpExtraIfAll    bool
	VRRPLowerPrioNoAdvert OptBool
	VRRPHigherPrioSendAdv OptBool
	VRRPDownTimerAdverts  int
	VRRPStartupDelay      time.Duration
	VRRPNotifyPriority    bool
	// Scheduling of the thread that sends and receives adverts (vigil's
	// event loop), as keepalived applies them to its VRRP process.
	// MaxAutoPriority: 0 off, -1 off without the warning, 1..99 the
	// highest SCHED_RR priority the loop raises itself to when it wakes
	// MinAutoPriorityDelay (default 1 s) late. VRRPRTPriority: SCHED_RR
	// priority 1..99, 0 none. VRRPPriority: nice value when VRRPPrioritySet.
	// VRRPNoSwap: lock the process's memory.
	MaxAutoPriority      int
	MinAutoPriorityDelay time.Duration
	VRRPRTPriority       int
	VRRPPriority         int
	VRRPPrioritySet      bool
	VRRPNoSwap           bool
	// The same for BFD's own thread (bfd/link's Runner), as keepalived
	// applies them to its BFD process: BFDRTPriority SCHED_RR 1..99 (0
	// none), BFDPriority a nice value when BFDPrioritySet (else vigil's
	// default, -10), BFDNoSwap locks the process's memory, BFDProcessName
	// names the thread (default vigil_bfd).
	BFDRTPriority  int
	BFDPriority    int
	BFDPrioritySet bool
	BFDNoSwap      bool
	BFDProcessName string

	// Nftables is the table name keepalived would use; vigil owns its own
	// tables and keeps this only to report it.
	Nftables          string
	DynamicInterfaces bool
	VmacPrefix        string
	VmacAddrPrefix    string

	LVSFlush       bool
	LVSFlushOnStop bool
	LVSTimeouts    LVSTimeouts
	// LVSSyncDaemon is lvs_sync_daemon, with the vigil extension
	// lvs_sync_auth_key(_file) folded in; nil when connection sync is off.
	LVSSyncDaemon *SyncDaemon
	// lvsSyncAuth is lvs_sync_auth_key or lvs_sync_auth_key_file as read,
	// folded into LVSSyncDaemon by validation (either keyword may come
	// first).
	lvsSyncAuth    syncAuth
	RSInitNotifies bool
	NoCheckerEmail bool
}

// SyncDaemon is lvs_sync_daemon: the NAT and FNAT connections of this
// director are synced to its peers (package ctsync), sent by whichever
// director is MASTER of Instance and received by the others, so that a new
// master forwards established flows as the old one did. Defaults are
// applied by validation.
type SyncDaemon struct {
	Pos       Pos
	Interface string // the sync packets' interface
	Instance  string // the vrrp_instance whose MASTER sends
	// ID is the sync id 0..255 carried in every packet (keepalived's
	// default: the instance's VRID); a receiver drops other ids.
	ID     int
	MaxLen int // largest UDP payload; 0: from the interface's MTU
	Port   int // UDP port, default 8848 (IPVS's)
	TTL    int // default 1
	// Group is the multicast group; unset: IPVS's 224.0.0.81 (ff02::81
	// from an IPv6 source), or none when the instance has unicast peers
	// on the sync interface, which the sync then uses too.
	Group netip.Addr
	// AuthKey (vigil extension lvs_sync_auth_key or lvs_sync_auth_key_file)
	// authenticates every sync packet with HMAC-SHA256; empty: none.
	AuthKey []byte
	// AuthKeyFile is where AuthKey was read from, if from a file.
	AuthKeyFile string
	AuthPos     Pos // the auth keyword, when set
}

// Sync defaults, as IPVS's sync daemon has them.
const (
	DefaultSyncPort = 8848
	DefaultSyncTTL  = 1
	// MinSyncAuthKey is the shortest lvs_sync_auth_key accepted, in bytes.
	MinSyncAuthKey = 16
)

type syncAuth struct {
	pos  Pos
	key  []byte
	file string
	set  bool
}

// LVSTimeouts are IPVS's connection timeouts (keepalived's lvs_timeouts);
// zero means unchanged. vigil applies them to what a DR director
// remembers of each flow (lb.Service.FlowTimeout); NAT and FNAT flows
// live in conntrack, whose timeouts are the host's.
type LVSTimeouts struct {
	TCP, TCPFin, UDP time.Duration
	Pos              Pos // of the keyword; zero when it is absent
}

// VRRPScript is a vrrp_script block.
type VRRPScript struct {
	Pos      Pos
	Name     string
	Script   *Command
	Interval time.Duration // default 1s
	Timeout  time.Duration // default Interval
	Weight   int           // -253..253; 0 means failure => FAULT
	Reverse  bool
	Rise     int // default 1
	Fall     int // default 1
	User     string
	Group    string
	InitFail bool
}

// TrackFile is a track_file (vrrp_track_file) block.
type TrackFile struct {
	Pos       Pos
	Name      string
	File      string
	Weight    int // default 1
	Reverse   bool
	InitFile  bool
	InitValue int
	Overwrite bool
}

// TrackProcess is a vrrp_track_process block.
type TrackProcess struct {
	Pos            Pos
	Name           string
	Process        []string // name and optional parameters
	ParamMatch     string   // "", "initial" or "partial"
	Weight         int      // default 1
	Reverse        bool
	Quorum         int // default 1
	QuorumMax      int // -1 when unset
	ForkDelay      time.Duration
	TerminateDelay time.Duration
	FullCommand    bool
}

// State is the initial state of an instance.
type State int

const (
	StateBackup State = iota
	StateMaster
)

func (s State) String() string {
	if s == StateMaster {
		return "MASTER"
	}
	return "BACKUP"
}

// AuthType is the VRRPv2 authentication type.
type AuthType int

const (
	AuthNone AuthType = iota
	AuthPass
	AuthAH // rejected: vigil does not implement IPsec AH
)

func (a AuthType) String() string {
	switch a {
	case AuthPass:
		return "PASS"
	case AuthAH:
		return "AH"
	}
	return "none"
}

// Auth is an authentication block.
type Auth struct {
	Pos  Pos
	Type AuthType
	// Pass is at most 8 bytes; the wire pads it with zeros.
	Pass string
}

// VIP is one line of virtual_ipaddress, virtual_ipaddress_excluded or
// static_ipaddress: an address with `ip address add` style options.
type VIP struct {
	Pos Pos
	// Prefix is the address and its length (default /32 or /128).
	Prefix netip.Prefix
	// Brd is the broadcast address; BrdSet/BrdClear stand for `brd +`/`brd -`.
	Brd          netip.Addr
	BrdSet       bool
	BrdClear     bool
	Dev          string
	Scope        string
	Label        string
	Peer         netip.Prefix
	Home         bool
	NoDAD        bool
	MngTmpAddr   bool
	NoPrefixRt   bool
	AutoJoin     bool
	NoTrack      bool
	UseVMAC      bool
	PreferredLft string // "" (default), "forever" or seconds
	TrackGroup   string // static addresses only
}

// Addr is the VIP's address.
func (v *VIP) Addr() netip.Addr { return v.Prefix.Addr() }

// Route is one line of virtual_routes or static_routes. The words are
// kept as written for the addr package to hand to netlink; the common
// fields are typed.
type Route struct {
	Pos     Pos
	Words   []string
	Dest    netip.Prefix
	Src     netip.Addr
	Via     netip.Addr
	Dev     string
	Table   string
	Type    string // blackhole, unreachable, prohibit, ... or ""
	NoTrack bool
}

// Rule is one line of virtual_rules or static_rules, kept as words with
// the common selectors typed.
type Rule struct {
	Pos     Pos
	Words   []string
	From    netip.Prefix
	To      netip.Prefix
	Table   string
	IIf     string
	OIf     string
	NoTrack bool
}

// UnicastPeer is one unicast_peer entry.
type UnicastPeer struct {
	Pos    Pos
	Addr   netip.Addr
	MinTTL int // -1 when unset
	MaxTTL int // -1 when unset
}

// BFDInstance is a bfd_instance block: one BFD session (RFC 5880, 5881)
// with keepalived's defaults applied.
type BFDInstance struct {
	Pos      Pos
	Name     string
	Neighbor netip.Addr // neighbor_ip
	Source   netip.Addr // source_ip; invalid: the kernel's choice
	// MinRx, MinTx and IdleTx are min_rx, min_tx and idle_tx (written in
	// milliseconds with microsecond resolution): defaults 10 ms, 10 ms, 1 s.
	MinRx, MinTx, IdleTx time.Duration
	Multiplier           int  // default 5
	Passive              bool // passive
	// TTL is the IPv4 TTL, HopLimit the IPv6 hop limit sent (255 unless
	// set: RFC 5881 section 5 requires 255 for single hop).
	TTL, HopLimit int
	// MaxHops is the largest TTL reduction accepted (default 0: 255
	// required; 255 turns the check off).
	MaxHops int
	// Weight and Reverse are the default tracking weight of track_bfd
	// lines that give none.
	Weight  int
	Reverse bool
	// VRRP and Checker restrict the session's events to VRRP tracking or
	// to BFD_CHECK; neither set means both.
	VRRP, Checker bool

	bad bool // a malformed neighbor: the block is dropped
}

// ToVRRP reports whether track_bfd and bfd_takeover follow the session.
func (b *BFDInstance) ToVRRP() bool { return b.VRRP || !b.Checker }

// ToChecker reports whether BFD_CHECK follows the session.
func (b *BFDInstance) ToChecker() bool { return b.Checker || !b.VRRP }

// BFDInstance returns the named bfd_instance, or nil.
func (c *Config) BFDInstance(name string) *BFDInstance {
	return lookup(nil, c.BFDInstances, name, func(x *BFDInstance) string { return x.Name })
}

// TrackRef is one line of a track_interface/track_script/track_file/
// track_process/track_bfd block: a name and an optional weight.
type TrackRef struct {
	Pos       Pos
	Name      string
	Weight    int
	WeightSet bool
	Reverse   bool

	// late is set when the tracked object was not yet defined where the
	// reference was read: keepalived resolves references while reading.
	late bool
}

// Notify holds an instance's or sync group's notify scripts.
type Notify struct {
	Master           *Command
	Backup           *Command
	Fault            *Command
	Stop             *Command
	Deleted          *Command
	Any              *Command // `notify`
	MasterRxLowerPri *Command
}

// Instance is a vrrp_instance block, with defaults applied and
// cross-references resolved by validation.
type Instance struct {
	Pos       Pos
	Name      string
	State     State
	Interface string
	// VRID is 1..255; 0 means it was missing or invalid (an error).
	VRID int
	// Priority is 1..255, default 100; 255 is the address owner. As in
	// keepalived, `state MASTER` without a priority means 255.
	Priority int
	// AdvertInt is the advert interval: whole seconds for v2,
	// centiseconds for v3.
	AdvertInt time.Duration
	// Version is the effective VRRP version (2 or 3): the instance's
	// `version`, else the global vrrp_version, and always 3 for IPv6.
	Version int
	// Family is the family of the VIPs (the first VIP decides).
	Family inet.Family
	Auth   *Auth

	VIPs         []*VIP
	ExcludedVIPs []*VIP
	Routes       []*Route
	Rules        []*Rule

	// McastSrcIP is the multicast source (unset: the interface's primary
	// address); McastDstIP the group, resolved to the global
	// vrrp_mcast_group4/6 when not configured.
	McastSrcIP   netip.Addr
	McastDstIP   netip.Addr
	UnicastSrcIP netip.Addr
	UnicastPeers []*UnicastPeer
	UnicastTTL   int // default 255
	// UnicastFaultNoPeer: without peers go to FAULT instead of multicast.
	UnicastFaultNoPeer bool

	Nopreempt    bool
	PreemptDelay time.Duration
	// Accept is accept mode, resolved by validation (Set is then always
	// true): on unless no_accept, except in strict mode where it follows
	// being the address owner.
	Accept OptBool
	Garp   Garp
	// DownTimerAdverts is the number of advert intervals in the master down
	// timer (default 3).
	DownTimerAdverts     int
	LowerPrioNoAdvert    bool
	HigherPrioSendAdvert bool

	TrackInterfaces []*TrackRef
	TrackScripts    []*TrackRef
	TrackFiles      []*TrackRef
	TrackProcesses  []*TrackRef
	TrackBFD        []*TrackRef
	// BFDTakeover (vigil extension bfd_takeover) names bfd_instances whose
	// going Down makes a backup take over at once when their neighbor is
	// the current master.
	BFDTakeover    []string
	BFDTakeoverPos []Pos

	Notify                Notify
	NotifyPriorityChanges OptBool
	SMTPAlert             OptBool

	UseVMAC      bool
	VMACName     string
	VMACAddr     string
	VMACXmitBase bool

	StrictMode         bool
	DontTrackPrimary   bool
	CheckUnicastSrc    bool
	SkipCheckAdvAddr   bool
	PromoteSecondaries bool
	TrackSrcIP         bool

	// SyncGroup is the name of the sync group this instance belongs to.
	SyncGroup string

	// BGPAnnounce lists the bgp_instances that announce the VIPs while
	// the instance is MASTER (vigil extension).
	BGPAnnounce []*BGPAnnounce

	ipvlan, ipvlanAddr bool
	dropped            bool          // unusable: removed at the end of validation
	kw                 *keyPositions // for validation's messages; dropped when Build returns

	has fieldSet
}

// Unicast reports whether the instance sends adverts to unicast peers.
func (i *Instance) Unicast() bool { return len(i.UnicastPeers) > 0 }

// VMACIfname is the name of the use_vmac interface: use_vmac's argument,
// else keepalived's vrrp.<VRID>.
func (i *Instance) VMACIfname() string {
	if i.VMACName != "" {
		return i.VMACName
	}
	return "vrrp." + strconv.Itoa(int(i.VRID))
}

// AddressOwner reports whether the instance has priority 255.
func (i *Instance) AddressOwner() bool { return i.Priority == 255 }

// SyncGroup is a vrrp_sync_group block.
type SyncGroup struct {
	Pos             Pos
	Name            string
	Members         []string
	MemberPos       []Pos
	TrackInterfaces []*TrackRef
	TrackScripts    []*TrackRef
	TrackFiles      []*TrackRef
	TrackProcesses  []*TrackRef
	TrackBFD        []*TrackRef
	Notify          Notify
	NotifyPriority  OptBool
	SMTPAlert       OptBool
	GlobalTracking  bool
	TrackingWeight  bool // sync_group_tracking_weight
}

// Protocol is a virtual server's L4 protocol.
type Protocol int

const (
	ProtoNone Protocol = iota
	TCP
	UDP
	SCTP
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "none"
}

// Method is a forwarding method (lb_kind / lvs_method).
type Method int

const (
	MethodUnset Method = iota
	NAT
	DR
	TUN // rejected: vigil does not build tunnels yet
	// FNAT is the DPVS full-NAT extension: DNAT plus SNAT to a local
	// address pool.
	FNAT
)

func (m Method) String() string {
	switch m {
	case NAT:
		return "NAT"
	case DR:
		return "DR"
	case TUN:
		return "TUN"
	case FNAT:
		return "FNAT"
	}
	return "unset"
}

// Schedulers lists the lb_algo / lvs_sched names vigil understands.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// VSKind says how a virtual server is addressed.
type VSKind int

const (
	VSAddr   VSKind = iota // IP [PORT]
	VSFwmark               // fwmark N
	VSGroup                // group NAME
)

// VirtualServer is a virtual_server block with defaults applied.
type VirtualServer struct {
	Pos    Pos
	Kind   VSKind
	Addr   netip.Addr // VSAddr
	Port   uint16     // VSAddr; 0 only for persistent services
	Fwmark uint32     // VSFwmark
	Group  string     // VSGroup
	// Family is the address family of the service (fwmark: from the real
	// servers or ip_family).
	Family inet.Family

	Protocol  Protocol
	Scheduler string // default "wlc"
	// SchedFlags are flag-1..3, sh-port, sh-fallback, mh-port, mh-fallback.
	SchedFlags []string
	OPS        bool
	Method     Method // default NAT

	DelayLoop              time.Duration // default 60s
	PersistenceTimeout     time.Duration // 0 is not persistent
	PersistenceGranularity netip.Prefix  // a netmask, as a prefix of 0.0.0.0/len
	PersistenceEngine      string

	Quorum     int // default 1
	Hysteresis int
	QuorumUp   *Command
	QuorumDown *Command

	SorryServer        *SorryServer
	SorryServerInhibit bool

	InhibitOnFailure bool
	Alpha            bool
	Omega            bool
	HASuspend        bool
	Virtualhost      string
	SMTPAlert        OptBool

	// LaddrGroupName names the local_address_group of an FNAT service.
	LaddrGroupName string

	// Checker defaults inherited by real servers and their checkers.
	ConnectTimeout   time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	Warmup           time.Duration

	RealServers []*RealServer

	// BGPAnnounce lists the bgp_instances that announce the service's
	// address (vigil extension).
	BGPAnnounce []*BGPAnnounce

	has    fieldSet
	timers checkTimers
	kw     *keyPositions // for validation's messages; dropped when Build returns
}

// Key is a short human name, keepalived style: [IP]:proto:port, FWM n,
// or [group].
func (vs *VirtualServer) Key() string {
	switch vs.Kind {
	case VSFwmark:
		return "FWM " + itoa(int(vs.Fwmark))
	case VSGroup:
		return "[" + vs.Group + "]"
	}
	return "[" + vs.Addr.String() + "]:" + lower(vs.Protocol.String()) + ":" + itoa(int(vs.Port))
}

// NeedsForwarding reports whether the service relies on the kernel routing
// translated packets to its real servers (lb_kind NAT or FNAT, for the
// service or any of its real servers); DR frames are sent out by the data
// plane itself.
func (vs *VirtualServer) NeedsForwarding() bool {
	return vs.forwardingMethod() != MethodUnset
}

func (vs *VirtualServer) forwardingMethod() Method {
	if vs.Method == NAT || vs.Method == FNAT {
		return vs.Method
	}
	for _, rs := range vs.RealServers {
		if rs.Method == NAT || rs.Method == FNAT {
			return rs.Method
		}
	}
	return MethodUnset
}

// SorryServer is the server used when the quorum is lost.
type SorryServer struct {
	Pos    Pos
	Addr   netip.Addr
	Port   uint16
	Method Method
}

// RealServer is a real_server block, with the virtual server's defaults
// applied.
type RealServer struct {
	Pos  Pos
	Addr netip.Addr
	// Port defaults to the virtual server's port; 0 for fwmark services.
	Port   uint16
	Weight int // default 1
	Method Method

	InhibitOnFailure bool
	NotifyUp         *Command
	NotifyDown       *Command
	UThreshold       uint32
	LThreshold       uint32
	Virtualhost      string
	SMTPAlert        OptBool
	Alpha            bool

	ConnectTimeout   time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	Warmup           time.Duration
	DelayLoop        time.Duration

	Checkers []*Checker
	// BFDChecks are the bfd_instance names of BFD_CHECK blocks: the server
	// is down while any of those sessions is not Up.
	BFDChecks []string

	has    fieldSet
	timers checkTimers
}

// CheckerType is the kind of a health checker block.
type CheckerType int

const (
	CheckTCP CheckerType = iota
	CheckHTTP
	CheckSSL
	CheckMisc
	CheckDNS
	CheckUDP
	CheckPing
	CheckSMTP
	CheckFile
	CheckBFD // read into RealServer.BFDChecks
	// CheckDRPath is DR_PATH_CHECK, a vigil extension: frames with a
	// foreign IP source, as the director forwards them, reach the real
	// server (package internal/drpath).
	CheckDRPath

	numCheckerTypes // not a type: how many there are (a new one goes above)
)

// checkerNames are the block keywords of the checker types;
// TestEveryCheckerTypeIsAKeyword fails on a type without one.
var checkerNames = [numCheckerTypes]string{"TCP_CHECK", "HTTP_GET", "SSL_GET", "MISC_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "SMTP_CHECK", "FILE_CHECK", "BFD_CHECK", "DR_PATH_CHECK"}

// CheckerTypes lists every checker type.
func CheckerTypes() []CheckerType {
	ts := make([]CheckerType, numCheckerTypes)
	for i := range ts {
		ts[i] = CheckerType(i)
	}
	return ts
}

func (t CheckerType) String() string {
	if int(t) < len(checkerNames) {
		return checkerNames[t]
	}
	return "checker(" + itoa(int(t)) + ")"
}

// Checker is one health checker of a real server, with every inherited
// setting resolved: ConnectIP/ConnectPort default to the real server's
// address and port, timers to the real server's, which default to the
// virtual server's.
type Checker struct {
	Pos  Pos
	Type CheckerType

	ConnectIP   netip.Addr
	ConnectPort uint16
	BindTo      netip.Addr
	BindPort    uint16
	BindIf      string
	Fwmark      uint32

	ConnectTimeout   time.Duration // default 5s
	Retry            int           // default 1 (DNS 3, MISC 0)
	DelayBeforeRetry time.Duration // default 1s (HTTP/SSL 3s, DNS delay_loop)
	Warmup           time.Duration // default delay_loop
	DelayLoop        time.Duration // default the real server's
	Alpha            bool
	LogAllFailures   OptBool

	HTTP *HTTPCheck
	Misc *MiscCheck
	DNS  *DNSCheck
	UDP  *UDPCheck
	SMTP *SMTPCheck
	File *FileCheck
	// DRPath is set for DR_PATH_CHECK: the service's VIP.
	DRPath *DRPathCheck

	has    fieldSet
	timers checkTimers
}

// HTTPCheck is the HTTP_GET / SSL_GET specific part.
type HTTPCheck struct {
	URLs         []*URLCheck
	Protocol     string // "1.0", "1.0C" or "1.1"; default "1.0"
	Virtualhost  string
	EnableSNI    bool
	FastRecovery bool
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Min, Max int }

// URLCheck is one url block.
type URLCheck struct {
	Pos          Pos
	Path         string
	Digest       string
	StatusCodes  []StatusRange // default 200-299
	Virtualhost  string
	Regex        string
	RegexNoMatch bool
	// RegexMinOffset and RegexMaxOffset are regex_min_offset and
	// regex_max_offset (0: no limit).
	RegexMinOffset int
	RegexMaxOffset int
}

// MatchStatus reports whether an HTTP status code is accepted.
func (u *URLCheck) MatchStatus(code int) bool {
	for _, r := range u.StatusCodes {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}

// MiscCheck is the MISC_CHECK specific part.
type MiscCheck struct {
	Path    *Command
	Timeout time.Duration // default delay_loop
	Dynamic bool
}

// DNSCheck is the DNS_CHECK specific part.
type DNSCheck struct {
	Type string // A, NS, CNAME, SOA (default), MX, TXT, AAAA
	Name string // default "."
}

// UDPCheck is the UDP_CHECK specific part.
type UDPCheck struct {
	Payload      []byte
	RequireReply bool
	// ReplyPattern is the expected reply; ReplyMask has 0x0f/0xf0 cleared
	// for nibbles written as X.
	ReplyPattern   []byte
	ReplyMask      []byte
	MinReplyLength int
	MaxReplyLength int // default 255
}

// SMTPCheck is the SMTP_CHECK specific part.
type SMTPCheck struct {
	HeloName string
	// Hosts are extra host {} blocks, each a checker of its own target.
	Hosts []*Checker
}

// DRPathCheck is the DR_PATH_CHECK specific part, filled in from the
// virtual server: the SYNs go to VIP:ConnectPort through the real
// server's MAC.
type DRPathCheck struct {
	VIP netip.Addr
}

// FileCheck is the FILE_CHECK specific part.
type FileCheck struct {
	TrackFile string
	Weight    int
	WeightSet bool
	Reverse   bool
	Dynamic   bool
}

// VirtualServerGroup is a virtual_server_group block.
type VirtualServerGroup struct {
	Pos     Pos
	Name    string
	Entries []*VSGroupEntry
}

// VSGroupEntry is one line of a virtual_server_group: an address range
// and port, or a fwmark.
type VSGroupEntry struct {
	Pos Pos
	// First and Last bound an inclusive address range (First == Last for
	// one address); invalid for a fwmark entry.
	First, Last netip.Addr
	Port        uint16
	Fwmark      uint32
	IsFwmark    bool
	Family      inet.Family // inet.IPv4 (the default of fwmark entries) or inet.IPv6
}

// LocalAddressGroup is a DPVS local_address_group: source addresses for
// FNAT, each optionally bound to an interface.
type LocalAddressGroup struct {
	Pos     Pos
	Name    string
	Entries []*LocalAddress
}

// LocalAddress is an address or range in a local_address_group.
type LocalAddress struct {
	Pos         Pos
	First, Last netip.Addr
	Dev         string
}

// Count returns how many addresses the entry stands for (saturating).
func (l *LocalAddress) Count() int { return rangeCount(l.First, l.Last) }
