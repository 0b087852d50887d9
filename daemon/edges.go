package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"vigil/acceptmode"
	"vigil/addr"
	"vigil/bfd"
	"vigil/bfd/link"
	"vigil/bgp"
	"vigil/bgp/speaker"
	"vigil/check"
	"vigil/control"
	"vigil/ctsync"
	"vigil/dataplane/nft"
	"vigil/internal/beat"
	"vigil/internal/epoll"
	"vigil/internal/inet"
	"vigil/lb"
	"vigil/netio"
	"vigil/notify"
	"vigil/track"
)

// The daemon's OS edges. Everything the loop and its worker do to the host
// goes through one of the small interfaces below, held in Daemon.host:
// New puts the real ones there (hostEdges), and the daemon's unit tests a
// fake (fakeHost in edges_test.go) that records every call in order, so
// the loop's ordering rules are tested in plain `go test`, without root or
// namespaces, as doctor.Facts does for vigil doctor. A new OS edge is one
// more interface (or function) here, its real implementation in hostEdges
// (the code itself lives in netio, addr, nft or acceptmode, or in
// host_linux.go when it has no package of its own) and its fake in
// fakeHost; TestEveryEdgeIsSet holds both sides to the list, and
// TestHostOnlyThroughEdges the rest of the package to the edges.

// advertConn is one VRRP socket per (interface, family): netio.Socket.
type advertConn interface {
	Fd() int
	Recv(buf []byte) (netio.Packet, error)
	// Drained: the last Recv emptied the queue (netio.Socket.Drained).
	Drained() bool
	Send(payload []byte, src, dst netip.Addr) error
	JoinGroup() error
	Close() error
}

// addrManager owns the VIPs, virtual routes and rules and the VMAC
// interfaces: addr.Manager.
type addrManager interface {
	Add(addr.VIP) error
	Remove(addr.VIP) error
	RemoveStale([]addr.VIP) ([]addr.VIP, error)
	AddRoute(addr.Route) error
	RemoveRoute(addr.Route) error
	AddRule(addr.Rule) error
	RemoveRule(addr.Rule) error
	EnsureVMAC(parent string, vrid uint8, fam inet.Family, name string) (string, error)
	RemoveVMAC(name string) error
	RestoreSysctls() error
}

// announcer sends gratuitous ARPs and unsolicited NAs on one interface:
// netio.Announcer.
type announcer interface {
	Announce(ip netip.Addr) error
	Close() error
}

// dataplane holds the load balancer's rules: nft.Dataplane.
type dataplane interface {
	Apply(ctx context.Context, desired lb.Desired) error
	Flush(ctx context.Context) error
	Close() error
	Conns(ctx context.Context) ([]nft.Conn, error)
	// CountConns counts Conns' active connections per service and real
	// server, without the list.
	CountConns(ctx context.Context) (map[string]map[netip.AddrPort]int, error)
	Stats(ctx context.Context) (map[string]map[netip.AddrPort]nft.Stats, error)
	Sweep(ctx context.Context) (lingering int, err error)
	Lingering() int
}

// acceptFilter is no_accept's drop list: acceptmode.Filter.
type acceptFilter interface {
	Set(ctx context.Context, addrs []netip.Addr) error
	Clear(ctx context.Context) error
	String() string
}

// bgpSpeaker is one bgp_instance's speaker: speaker.Speaker (the
// vigil-bgp helper process and its sessions).
type bgpSpeaker interface {
	Config() speaker.Config
	Start(ctx context.Context) error
	Run(ctx context.Context)
	Set(routes []bgp.Route)
	Sync(ctx context.Context) error
	SetNeighbors(ctx context.Context, ns []speaker.Neighbor) error
	SetEnabled(ctx context.Context, addr netip.Addr, enabled bool, reason string) error
	Sessions() []speaker.Session
	Stop()
}

// syncer is connection sync's (lvs_sync_daemon) sender and receiver:
// ctsync.Syncer.
type syncer interface {
	Start(ctx context.Context) error
	Close() error
	SetServices(svcs []ctsync.Service)
	SetMaster(m bool)
	Synced() <-chan struct{}
	RequestFull()
	Status() ctsync.Status
	Install(ctx context.Context) (int, error)
}

// bfdRunner holds the BFD sessions: link.Process, which runs them in the
// BFD process. Run returns link.ErrNotRespawned when the BFD process died
// and --dont-respawn forbids starting another.
type bfdRunner interface {
	Run(ctx context.Context) error
	Configure(sessions []link.Session) error
	SetScheduling(s link.Scheduling) error
	Subscribe(name string, fn func(link.Event)) (cancel func())
	Up(name string) (up, ok bool)
	Status() ([]bfd.Status, map[string]uint64, link.Lateness)
	SendErrors() map[string]string
	Port(name string) (uint16, bool)
}

// notifier runs the notify scripts (notify_master, notify, notify_up,
// ...) in order per instance and writes the notify FIFOs:
// notify.Notifier with the notify.Fifos it feeds (hostNotifier).
type notifier interface {
	Notify(ev notify.Event, s notify.Scripts)
	Exec(orderKey, keyword string, c notify.Command)
	Run(ctx context.Context) error
}

// runner runs until ctx ends: the health checks (check.Runner), the
// trackers (track.Tracker).
type runner interface {
	Run(ctx context.Context) error
}

// loopWait is what the loop blocks in: the advert sockets, a timer armed
// for the loop's next deadline and a wake-up the bridge goroutine writes
// (epoll.Set, parked in the runtime's poller; poll_linux.go). Run calls
// the loop's pass with the ready tags (a socket's descriptor,
// epoll.TagTimer or epoll.TagWake) until it stops (epoll.Set.Run). The
// fake in the tests returns them in virtual time.
type loopWait interface {
	Add(fd, tag int) error
	Del(fd int)
	Arm(due, detect time.Time)
	Run(pass func([]unix.EpollEvent) (quiet, stop bool)) error
	TimerFired()
	Wake()
	Close()
}

// ticker is the loop's 2 s housekeeping tick (periodic.go): a
// time.Ticker, or one fired by virtual time in the tests.
type ticker interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

// realTicker is a time.Ticker as a ticker.
type realTicker struct{ *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.Ticker.C }

// threads sets the scheduling of vigil's own threads (sched.go:
// vrrp_rt_priority, vrrp_priority, max_auto_priority, vrrp_no_swap):
// hostThreads.
type threads interface {
	// LockMemory locks the process's pages in memory.
	LockMemory() error
	// List returns the ids of the process's threads.
	List() ([]int, error)
	// SetRT puts a thread in SCHED_RR at prio (reset on fork); SetNice
	// gives it a nice value.
	SetRT(tid, prio int) error
	SetNice(tid, nice int) error
}

// edges are the daemon's ways onto the host.
type edges struct {
	// now is the loop's clock, newTicker its housekeeping tick and
	// newWait what it waits in: with fakes, a test runs Run itself in
	// virtual time.
	now       func() time.Time
	newTicker func(d time.Duration) ticker
	newWait   func() (loopWait, error)
	threads   threads
	// signals delivers the signals named until stop (signal.Notify).
	signals func(sigs ...os.Signal) (c <-chan os.Signal, stop func())
	// writeFile writes a file whole (the dumps): beside it, then renamed
	// over it.
	writeFile func(path string, write func(io.Writer) error) error
	// serveControl serves the control socket at path until ctx ends.
	serveControl func(ctx context.Context, path string, h control.Handler, log *slog.Logger) error
	openSocket   func(ifname string, fam inet.Family, opts netio.Options) (advertConn, error)
	// startBeat starts a sender thread for a master's steady-state
	// adverts on conn (netio.Socket.Beat); nil: none (daemon/beat.go).
	startBeat     func(conn advertConn, payloads [][]byte, src netip.Addr, dsts []netip.Addr, interval time.Duration, first, lease time.Time) (advertBeat, error)
	openAnnouncer func(ifname string) (announcer, error)
	addrs         func() addrManager
	openDataplane func(log *slog.Logger) (dataplane, error)
	// openAcceptFilter fails where nft is missing; no_accept is then
	// reported, not enforced.
	openAcceptFilter func() (acceptFilter, error)
	newChecks        func(servers []check.Server, opts check.RunnerOptions) (runner, error)
	newSpeaker       func(cfg speaker.Config, log *slog.Logger) bgpSpeaker
	newSyncer        func(cfg ctsync.Config) (syncer, error)
	newBFD           func(log *slog.Logger, noRespawn bool) bfdRunner
	// newNotifier opens the notify FIFOs (notify_fifo, vrrp_notify_fifo);
	// one that cannot be opened is logged and left out.
	newNotifier func(fifos []notify.FifoConfig, log *slog.Logger, onResult func(notify.Result)) notifier
	// newTrackers watches the vrrp_script, track_file, track_process and
	// track_interface trackers.
	newTrackers func(cfg track.Config, report func(track.Event)) (runner, error)
	// linkUp tells whether an interface is up and running; watchLinks
	// reports changes until ctx ends.
	linkUp     func(ifname string) (bool, error)
	watchLinks func(ctx context.Context, onErr func(error)) (<-chan addr.LinkState, error)
	// neighbours looks up (and starts resolving) the MACs of DR real
	// servers; ifaceAddrs lists an interface's addresses (the advert
	// source when none is configured).
	neighbours func([]netip.Addr) (map[netip.Addr][6]byte, error)
	ifaceAddrs addrLookup
	// routeDevice is the interface the route to an address leaves by;
	// credential a user's (and group's) ids. The translation of the
	// virtual servers asks them (lbLookups).
	routeDevice func(netip.Addr) (string, error)
	credential  func(user, group string) (*check.Credential, error)
	// routeSource is the source address of the route to an address (a
	// bgp_instance's default router ID).
	routeSource func(netip.Addr) (netip.Addr, error)
}

// hostEdges are the real edges.
func hostEdges() edges {
	return edges{
		now:          time.Now,
		newTicker:    func(d time.Duration) ticker { return realTicker{time.NewTicker(d)} },
		newWait:      func() (loopWait, error) { return opened[loopWait](epoll.NewParked()) },
		threads:      hostThreads{},
		signals:      notifySignals,
		writeFile:    writeFileAtomic,
		serveControl: serveControl,
		openSocket: func(ifname string, fam inet.Family, opts netio.Options) (advertConn, error) {
			return opened[advertConn](netio.OpenSocket(ifname, fam, opts))
		},
		startBeat: func(conn advertConn, payloads [][]byte, src netip.Addr, dsts []netip.Addr, interval time.Duration, first, lease time.Time) (advertBeat, error) {
			s, ok := conn.(*netio.Socket)
			if !ok || !beat.Supported {
				return nil, errNoBeat
			}
			return opened[advertBeat](s.Beat(payloads, src, dsts, interval, first, lease))
		},
		openAnnouncer: func(ifname string) (announcer, error) {
			return opened[announcer](netio.OpenAnnouncer(ifname, netio.AnnouncerConfig{}))
		},
		addrs: func() addrManager { return addr.New(nil) },
		openDataplane: func(log *slog.Logger) (dataplane, error) {
			return opened[dataplane](nft.New(nft.Config{Logger: log}))
		},
		openAcceptFilter: func() (acceptFilter, error) { return opened[acceptFilter](acceptmode.New()) },
		newChecks: func(servers []check.Server, opts check.RunnerOptions) (runner, error) {
			return opened[runner](check.NewRunner(servers, opts))
		},
		newSpeaker: func(cfg speaker.Config, log *slog.Logger) bgpSpeaker {
			return speaker.New(cfg, log)
		},
		newSyncer: func(cfg ctsync.Config) (syncer, error) {
			return opened[syncer](ctsync.New(cfg))
		},
		newBFD: func(log *slog.Logger, noRespawn bool) bfdRunner {
			p := link.NewProcess(log)
			p.NoRespawn = noRespawn
			return p
		},
		newNotifier: newHostNotifier,
		newTrackers: func(cfg track.Config, report func(track.Event)) (runner, error) {
			return opened[runner](track.New(cfg, report))
		},
		linkUp:      addr.LinkUp,
		watchLinks:  addr.WatchLinks,
		neighbours:  addr.Neighbours,
		ifaceAddrs:  addr.InterfaceAddrs,
		routeDevice: addr.RouteDevice,
		credential:  lookupCredential,
		routeSource: addr.RouteSource,
	}
}

// opened returns v as the interface I, and a nil I (not a nil *T inside a
// non-nil I) with an error, so that the daemon's nil checks stay true.
func opened[I any, T any](v *T, err error) (I, error) {
	var zero I
	if err != nil || v == nil {
		return zero, err
	}
	return any(v).(I), nil
}
