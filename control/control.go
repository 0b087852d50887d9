// Package control is vigil's local management interface: a JSON request and
// a JSON reply per connection over a unix socket (default
// /run/vigil/vigil.sock), in the spirit of keepalived's USR1/USR2 data and
// stats dumps but queryable at any time and machine-readable.
//
// The daemon serves it; `vigil status`, `vigil conns` and `vigil doctor` are
// clients. The documents are plain data so that other tools can read them
// with `socat - UNIX-CONNECT:/run/vigil/vigil.sock <<< '{"cmd":"status"}'`.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// DefaultPath is where the daemon listens unless told otherwise.
const DefaultPath = "/run/vigil/vigil.sock"

// Request is one command to the daemon.
type Request struct {
	Cmd string `json:"cmd"` // "status", "conns", "reload"
}

// Response is the daemon's answer. Exactly one of the payload fields is set
// for a successful command; Error is set otherwise.
type Response struct {
	Error  string        `json:"error,omitempty"`
	Status *Status       `json:"status,omitempty"`
	Conns  []Conn        `json:"conns,omitempty"`
	Reload *ReloadResult `json:"reload,omitempty"`
}

// Status is a snapshot of a running daemon.
type Status struct {
	Version    string        `json:"version"`
	PID        int           `json:"pid"`
	Started    time.Time     `json:"started"`
	ConfigFile string        `json:"config_file"`
	LastReload *ReloadResult `json:"last_reload,omitempty"`
	// ConfigLoaded is when the running configuration was loaded: at start,
	// or by the last reload that succeeded.
	ConfigLoaded time.Time        `json:"config_loaded"`
	LoopLag      LoopLag          `json:"loop_lag"`
	Instances    []InstanceStatus `json:"instances"`
	Groups       []GroupStatus    `json:"sync_groups,omitempty"`
	Services     []ServiceStatus  `json:"virtual_servers,omitempty"`
	Trackers     []TrackerStatus  `json:"trackers,omitempty"`
	// BFD and BGP are the sessions of the BFD and BGP speakers, empty until
	// the daemon runs them: package metrics already exports whatever the
	// daemon puts here (vigil_bfd_*, vigil_bgp_*).
	BFD []BFDSessionStatus `json:"bfd,omitempty"`
	BGP []BGPPeerStatus    `json:"bgp,omitempty"`
	// BFDRunner is the BFD process's own health; nil without sessions.
	BFDRunner *BFDRunnerStatus `json:"bfd_runner,omitempty"`
	// BGPInstances are the bgp_instances (a vigil extension) with what
	// each announces and why; BGP above lists their sessions flat.
	BGPInstances []BGPStatus `json:"bgp_instances,omitempty"`
	// Sync is lvs_sync_daemon's connection sync; nil when not configured.
	Sync *SyncStatus `json:"connection_sync,omitempty"`
}

// BFDSessionStatus is one BFD session (RFC 5880; keepalived's
// bfd_instance).
type BFDSessionStatus struct {
	Name  string `json:"name"`
	Peer  string `json:"peer"`
	Local string `json:"local,omitempty"`
	// State is RFC 5880's: AdminDown, Down, Init or Up.
	State    string            `json:"state"`
	Since    time.Time         `json:"since"`
	Sent     uint64            `json:"sent"`
	Received uint64            `json:"received"`
	Flaps    uint64            `json:"flaps"` // transitions from Up to Down
	Drops    map[string]uint64 `json:"drops,omitempty"`

	Port        int    `json:"source_port,omitempty"`
	RemoteState string `json:"remote_state"`
	LocalDisc   uint32 `json:"local_discriminator"`
	RemoteDisc  uint32 `json:"remote_discriminator"`
	// TxInterval is the negotiated transmit interval, RxInterval the one
	// the peer sends at; DetectTime is the peer's multiplier times it.
	TxInterval Duration `json:"tx_interval"`
	RxInterval Duration `json:"rx_interval"`
	DetectTime Duration `json:"detect_time"`
	// What we ask for (min_rx, min_tx, multiplier) and what the peer asks.
	MinRx            Duration  `json:"min_rx"`
	MinTx            Duration  `json:"min_tx"`
	Multiplier       int       `json:"multiplier"`
	RemoteMinRx      Duration  `json:"remote_min_rx"`
	RemoteMinTx      Duration  `json:"remote_min_tx"`
	RemoteMultiplier int       `json:"remote_multiplier"`
	LastRx           time.Time `json:"last_rx,omitzero"`
	// LastDown is the latest change to Down: the diagnostic and the reason.
	LastDown     string    `json:"last_down,omitempty"`
	LastDownDiag int       `json:"last_down_diag,omitempty"`
	LastDownAt   time.Time `json:"last_down_at,omitzero"`
	SendError    string    `json:"send_error,omitempty"`
}

// BGPPeerStatus is one BGP session (RFC 4271).
type BGPPeerStatus struct {
	Peer     string `json:"peer"`
	RemoteAS uint32 `json:"remote_as"`
	// State is RFC 4271's: Idle, Connect, Active, OpenSent, OpenConfirm or
	// Established.
	State string    `json:"state"`
	Since time.Time `json:"since"`
	// Advertised is the number of prefixes (the VIPs of master instances)
	// announced to the peer now.
	Advertised int    `json:"advertised"`
	Flaps      uint64 `json:"flaps"` // transitions out of Established
	// Instance is the bgp_instance the session belongs to.
	Instance string `json:"instance,omitempty"`
	// LastError is the last reason the session failed or could not be
	// opened (a NOTIFICATION sent or received, a connection error).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// HeldDown says why vigil keeps the session down, if it does: the
	// neighbor's bfd_instance is not Up, or its bfd_holddown runs.
	HeldDown string `json:"held_down,omitempty"`
}

// LoopLag is how late the daemon's event loop woke for its deadlines: a
// host that stalls (CPU starvation, a VM pause) shows here before the VRRP
// peers notice.
type LoopLag struct {
	// Recent is the largest lag of the last minute or so (LoopLagWindow).
	Recent Duration `json:"recent"`
	// Max is the largest lag since the daemon started.
	Max Duration `json:"max"`
}

// LoopLagWindow is the span LoopLag.Recent covers, at least.
const LoopLagWindow = time.Minute

// TrackerStatus is one tracked object (vrrp_script, track_interface,
// vrrp_track_file, vrrp_track_process) and its current result.
type TrackerStatus struct {
	Kind string `json:"kind"` // script, interface, file, process
	Name string `json:"name"`
	// Known is false until the tracker has a result (a vrrp_script that
	// has not run yet).
	Known bool `json:"known"`
	OK    bool `json:"ok"`
	// Value is a track_file's number (0 for the other kinds).
	Value int `json:"value,omitempty"`
}

// BFDRunnerStatus is the BFD process's record: packets dropped by reason
// (all sessions, and those that matched none), and how late its timer
// fired.
type BFDRunnerStatus struct {
	Drops            map[string]uint64 `json:"drops,omitempty"`
	WakeLateMax      Duration          `json:"wake_late_max"`
	Wakes            uint64            `json:"wakes"`
	LateOverInterval uint64            `json:"late_over_interval"`
	RxOverflow       uint64            `json:"rx_overflow"`
	// PID is the BFD process's (0 while none runs), Restarts counts the
	// ones that died and were started again, and HandoffMax is the
	// longest a session's state change took from the BFD process's step
	// to the daemon.
	PID        int      `json:"pid,omitempty"`
	Restarts   uint64   `json:"restarts,omitempty"`
	HandoffMax Duration `json:"handoff_max"`
}

// BGPStatus is one bgp_instance (a vigil extension): its sessions and
// every prefix some block asks it to announce, with why it is or is not.
type BGPStatus struct {
	Name     string          `json:"name"`
	LocalAS  uint32          `json:"local_as"`
	RouterID string          `json:"router_id"`
	Sessions []BGPPeerStatus `json:"sessions"`
	Routes   []BGPRoute      `json:"routes"`
}

// BGPRoute is one prefix and the decision about it.
type BGPRoute struct {
	Prefix      string   `json:"prefix"`
	Announced   bool     `json:"announced"`
	Communities []string `json:"communities,omitempty"`
	MED         *uint32  `json:"med,omitempty"`
	Reasons     []string `json:"reasons"`
}

// InstanceStatus is one vrrp_instance.
type InstanceStatus struct {
	Name           string   `json:"name"`
	Interface      string   `json:"interface"`
	VRID           int      `json:"vrid"`
	Version        int      `json:"version"`
	Family         string   `json:"family"` // "ipv4" or "ipv6"
	State          string   `json:"state"`
	Priority       int      `json:"priority"` // effective
	BasePriority   int      `json:"base_priority"`
	AdvertInterval Duration `json:"advert_interval"`
	// AdvertThread: a thread outside the Go runtime sends the master's
	// steady-state adverts (vigil's internal/beat; the counters include
	// them).
	AdvertThread   bool      `json:"advert_thread,omitempty"`
	MasterAddr     string    `json:"master_addr,omitempty"`
	MasterPriority int       `json:"master_priority,omitempty"`
	VIPs           []string  `json:"vips"`
	Since          time.Time `json:"since"`
	Reason         string    `json:"reason,omitempty"` // why it entered State, in words
	// Cause is why it entered State as a stable name (vrrp.Cause's
	// String: "master_down", "higher_priority", ...), for programs.
	Cause string `json:"cause,omitempty"`
	// Counters are keyed by the Counter* constants and DropCounter.
	Counters map[string]uint64 `json:"counters,omitempty"`
	// ForeignVRIDs counts, by VRID, the adverts received on the
	// instance's socket (interface and family) for VRIDs no local instance
	// runs there: another virtual router shares the segment.
	ForeignVRIDs map[int]uint64 `json:"foreign_vrids,omitempty"`
	// GARPSent and NASent count the gratuitous ARP and unsolicited
	// Neighbor Advertisement frames sent for the instance's VIPs;
	// AnnounceErrors the announcements that could not be sent.
	GARPSent       uint64 `json:"garp_sent"`
	NASent         uint64 `json:"na_sent"`
	AnnounceErrors uint64 `json:"announce_errors,omitempty"`
}

// GroupStatus is one vrrp_sync_group.
type GroupStatus struct {
	Name    string   `json:"name"`
	State   string   `json:"state"`
	Members []string `json:"members"`
}

// ServiceStatus is one virtual_server.
type ServiceStatus struct {
	Name        string       `json:"name"` // "192.0.2.100:80/tcp", "fwmark 1", "group web"
	Scheduler   string       `json:"scheduler"`
	Kind        string       `json:"kind"` // NAT, DR, FNAT
	Active      bool         `json:"active"`
	Quorum      bool         `json:"quorum"`
	RealServers []RealStatus `json:"real_servers"`
	// TableDigest fingerprints how the rules in the kernel pick a new
	// flow's real server (lb.Service.TableDigest): directors that share a
	// virtual server over ECMP must show the same one. Empty before the
	// first apply and while no real server can take flows.
	TableDigest string `json:"table_digest,omitempty"`
	// Stats sums the traffic of every real server (and sorry server);
	// nil when the data plane does not count the service (fwmark).
	Stats *Traffic `json:"stats,omitempty"`
}

// Traffic is what `ipvsadm --stats` shows for a virtual or real server:
// connections, and packets and bytes from clients (in) and to them (out),
// counted since the real server was added (or vigil started).
type Traffic struct {
	Conns      uint64 `json:"conns"`
	InPackets  uint64 `json:"in_packets"`
	InBytes    uint64 `json:"in_bytes"`
	OutPackets uint64 `json:"out_packets"`
	OutBytes   uint64 `json:"out_bytes"`
}

// RealStatus is one real_server of a virtual server.
type RealStatus struct {
	Addr   string `json:"addr"`
	Weight int    `json:"weight"`
	Up     bool   `json:"up"`
	Detail string `json:"detail,omitempty"`
	// Stats is nil when the data plane does not count the service.
	Stats *Traffic `json:"stats,omitempty"`
}

// Conn is one load-balanced connection, like a line of `ipvsadm -lnc`.
type Conn struct {
	Proto   string   `json:"proto"`
	State   string   `json:"state"`
	Expires Duration `json:"expires"`
	Client  string   `json:"client"`
	Virtual string   `json:"virtual"`
	Local   string   `json:"local,omitempty"` // FNAT local address
	Real    string   `json:"real"`
}

// ReloadResult says what a reload did, or why it kept the running config.
type ReloadResult struct {
	At      time.Time `json:"at"`
	OK      bool      `json:"ok"`
	Errors  []string  `json:"errors,omitempty"`
	Changes []string  `json:"changes,omitempty"`
}

// Duration marshals as a Go duration string ("1s", "100ms").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Handler answers one request. It runs on the connection's goroutine, so it
// must be safe for concurrent use.
type Handler func(ctx context.Context, req Request) Response

// Server serves a Handler on a unix socket.
type Server struct {
	Path    string
	Handler Handler
	Log     *slog.Logger
}

// maxRequest bounds what a client may send, so a stray writer cannot make
// the daemon buffer without limit.
const maxRequest = 64 << 10

// Run listens and serves until ctx ends, then removes the socket.
func (s *Server) Run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	// A socket file left by a killed daemon would make Listen fail; one that
	// still answers belongs to a live daemon and must not be stolen.
	if c, err := net.DialTimeout("unix", s.Path, 200*time.Millisecond); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another vigil is listening there", s.Path)
	}
	_ = os.Remove(s.Path)
	ln, err := net.Listen("unix", s.Path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(s.Path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("control socket: %w", err)
	}
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			wg.Wait()
			_ = os.Remove(s.Path)
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control socket: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(ctx, c)
		}()
	}
}

func (s *Server) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req Request
	var resp Response
	if err := json.NewDecoder(io.LimitReader(c, maxRequest)).Decode(&req); err != nil {
		resp.Error = fmt.Sprintf("bad request: %v (expected one JSON object like {\"cmd\":\"status\"})", err)
	} else {
		resp = s.Handler(ctx, req)
	}
	if err := json.NewEncoder(c).Encode(resp); err != nil && s.Log != nil {
		s.Log.Debug("control reply not delivered", "err", err)
	}
}

// Call sends one request to the daemon at path and returns its response.
func Call(ctx context.Context, path string, req Request) (Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Response{}, fmt.Errorf("no vigil is running with control socket %s (start `vigil run`, or pass --control)", path)
		}
		return Response{}, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return Response{}, fmt.Errorf("control socket %s: send: %w", path, err)
	}
	var resp Response
	if err := json.NewDecoder(bufio.NewReader(c)).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("control socket %s: reply: %w", path, err)
	}
	if resp.Error != "" {
		return resp, errors.New(resp.Error)
	}
	return resp, nil
}
