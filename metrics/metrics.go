// Package metrics exposes a running vigil to Prometheus. It is a collector
// over daemon snapshots (the same control.Status document `vigil status`
// prints), so a scrape reads one consistent picture and the daemon keeps no
// second set of counters. The registry is passed in; nothing is global.
//
// The names follow Prometheus' conventions: a vigil_ prefix, _total for
// counters, base units (_seconds, _bytes), and no label called instance or
// job (Prometheus attaches those to every scraped series, so a metric's own
// would be renamed to exported_instance). VRRP instances are labelled
// iname, intf and vrid, as keepalived-exporter labels them, so dashboards
// and alerts written for keepalived-exporter translate label for label.
//
// Every metric vigil exports is listed in Defs; docs/operations.md
// documents each one, and a test holds the two together.
//
// The exposition (Prometheus' text format 0.0.4, written by text.go) is
// written here rather than with client_golang: linked into vigil, the
// client library with protobuf and procfs made every vigil process 3 MB
// larger in RSS, metrics or not (their package initialisation runs at
// every start; docs/benchmarks.md, footprint). The tests still parse and
// lint the output with client_golang and promtool.
//
// Server serves /metrics and /healthz for `vigil run --metrics` on the
// net package (net/http is not linked into the daemon, for memory), built
// so that idle or slow clients cannot hold a scrape or a probe off: a
// deadline for the request head apart from the answer's, and at the
// connection cap a newcomer displaces an idle connection (http.go).
package metrics

import (
	"slices"
	"strconv"
	"time"

	"vigil/control"
	"vigil/vrrp"
)

// Kind is a metric's Prometheus type.
type Kind string

const (
	Gauge   Kind = "gauge"
	Counter Kind = "counter"
)

// Def describes one metric family.
type Def struct {
	Name   string
	Kind   Kind
	Labels []string
	Help   string
}

// Label sets shared by many metrics.
var (
	instLabels = []string{"iname", "intf", "vrid"}
	vsLabels   = []string{"virtual_server"}
	rsLabels   = []string{"virtual_server", "real_server"}
)

// The metrics, in the order Defs lists them.
var (
	mInfo             = def("vigil_info", Gauge, "Always 1; the labels say which vigil runs and on which configuration file.", "version", "config_file")
	mReloadOK         = def("vigil_config_last_reload_successful", Gauge, "1 if the last configuration load (at start or by reload) succeeded, 0 if the last reload was rejected or applied with errors.")
	mReloadTime       = def("vigil_config_last_reload_success_timestamp_seconds", Gauge, "Unix time the running configuration was loaded: at start, or by the last reload that succeeded.")
	mLoopLag          = def("vigil_loop_lag_seconds", Gauge, "Largest delay, over the last one to two minutes, between a deadline of the event loop (advert timers) and the loop waking for it.")
	mLoopLagMax       = def("vigil_loop_lag_max_seconds", Gauge, "Largest event loop delay since vigil started.")
	mState            = def("vigil_vrrp_state", Gauge, "1 for the state the VRRP instance is in, 0 for the others.", append(instLabels, "state")...)
	mPrio             = def("vigil_vrrp_priority", Gauge, "Effective VRRP priority after tracking.", instLabels...)
	mBasePrio         = def("vigil_vrrp_base_priority", Gauge, "Configured VRRP priority.", instLabels...)
	mMasterPrio       = def("vigil_vrrp_master_priority", Gauge, "Priority of the master last heard (0 if none).", instLabels...)
	mVIPs             = def("vigil_vrrp_virtual_addresses", Gauge, "Number of virtual addresses configured on the instance.", instLabels...)
	mAdvertThread     = def("vigil_vrrp_advert_thread", Gauge, "1 while the master's steady-state adverts go out from its advert thread, 0 otherwise.", instLabels...)
	mAdvSent          = def("vigil_vrrp_adverts_sent_total", Counter, "VRRP advertisements sent.", instLabels...)
	mAdvRcvd          = def("vigil_vrrp_adverts_received_total", Counter, "VRRP advertisements received and accepted for the instance.", instLabels...)
	mPrio0Sent        = def("vigil_vrrp_priority_zero_sent_total", Counter, "Priority 0 advertisements sent (the master resigning).", instLabels...)
	mPrio0Rcvd        = def("vigil_vrrp_priority_zero_received_total", Counter, "Priority 0 advertisements received.", instLabels...)
	mBecameMaster     = def("vigil_vrrp_became_master_total", Counter, "Transitions into MASTER.", instLabels...)
	mReleasedMaster   = def("vigil_vrrp_released_master_total", Counter, "Transitions out of MASTER.", instLabels...)
	mDropped          = def("vigil_vrrp_adverts_dropped_total", Counter, "Advertisements dropped, by reason (ttl, checksum, auth, vrid list mismatch and so on).", append(instLabels, "reason")...)
	mForeign          = def("vigil_vrrp_foreign_adverts_total", Counter, "Advertisements received on an interface for a VRID no local instance runs there (another router sharing the segment).", "intf", "family", "vrid")
	mGARP             = def("vigil_vrrp_garp_sent_total", Counter, "Gratuitous ARP frames sent for the instance's IPv4 virtual addresses.", instLabels...)
	mNA               = def("vigil_vrrp_na_sent_total", Counter, "Unsolicited Neighbor Advertisements sent for the instance's IPv6 virtual addresses.", instLabels...)
	mAnnounceErr      = def("vigil_vrrp_announce_errors_total", Counter, "Gratuitous ARP or Neighbor Advertisements that could not be sent.", instLabels...)
	mGroupState       = def("vigil_vrrp_sync_group_state", Gauge, "1 for the state the sync group is in, 0 for the others.", "group", "state")
	mTrackerUp        = def("vigil_tracker_up", Gauge, "1 while the tracker passes (vrrp_script succeeding, interface up, process quorum met, file readable), 0 while it fails; absent until it has a result.", "kind", "name")
	mTrackerValue     = def("vigil_tracker_file_value", Gauge, "The number a vrrp_track_file currently holds.", "name")
	mVSActive         = def("vigil_virtual_server_active", Gauge, "1 when this director serves the virtual server (its VRRP instance is MASTER).", vsLabels...)
	mVSQuorum         = def("vigil_virtual_server_quorum", Gauge, "1 when the virtual server has its quorum of healthy real servers.", vsLabels...)
	mVSTable          = def("vigil_virtual_server_table_info", Gauge, "1, labelled with the digest of how the applied rules pick a new flow's real server (selection, hash, weights, Maglev table); directors sharing the virtual server over ECMP must show the same digest (vigil doctor --peer compares them).", append(vsLabels, "digest")...)
	mRSUp             = def("vigil_real_server_up", Gauge, "1 when the real server passes its health checks.", rsLabels...)
	mRSWeight         = def("vigil_real_server_weight", Gauge, "Weight the scheduler gives the real server.", rsLabels...)
	mVSConns          = def("vigil_virtual_server_connections_total", Counter, "Connections the virtual server has scheduled (DR: TCP SYNs forwarded).", vsLabels...)
	mVSPackets        = def("vigil_virtual_server_packets_total", Counter, "Packets of the virtual server's connections, by direction: in (client to real server) and out (replies; NAT and FNAT only, DR replies bypass the director).", append(vsLabels, "direction")...)
	mVSBytes          = def("vigil_virtual_server_bytes_total", Counter, "Bytes of the virtual server's connections, by direction, as vigil_virtual_server_packets_total.", append(vsLabels, "direction")...)
	mRSConns          = def("vigil_real_server_connections_total", Counter, "Connections scheduled to the real server, counted since it last joined the pool.", rsLabels...)
	mRSPackets        = def("vigil_real_server_packets_total", Counter, "Packets of the real server's connections, by direction (in, out).", append(rsLabels, "direction")...)
	mRSBytes          = def("vigil_real_server_bytes_total", Counter, "Bytes of the real server's connections, by direction (in, out).", append(rsLabels, "direction")...)
	mBFDUp            = def("vigil_bfd_session_up", Gauge, "1 while the BFD session is Up, 0 otherwise (AdminDown, Down, Init).", "session", "peer")
	mBFDState         = def("vigil_bfd_session_state", Gauge, "1 for the RFC 5880 state the BFD session is in, 0 for the others.", "session", "peer", "state")
	mBFDFlaps         = def("vigil_bfd_session_flaps_total", Counter, "Transitions of the BFD session from Up to Down.", "session", "peer")
	mBFDSent          = def("vigil_bfd_packets_sent_total", Counter, "BFD Control packets sent.", "session", "peer")
	mBFDRcvd          = def("vigil_bfd_packets_received_total", Counter, "BFD Control packets received for the session.", "session", "peer")
	mBFDDropped       = def("vigil_bfd_packets_dropped_total", Counter, "BFD Control packets dropped, by reason.", "session", "peer", "reason")
	mBFDDetect        = def("vigil_bfd_detect_time_seconds", Gauge, "The session's detection time: the peer's multiplier times the interval it sends at (0 until the peer is heard).", "session", "peer")
	mBFDTx            = def("vigil_bfd_tx_interval_seconds", Gauge, "The negotiated interval between the packets vigil sends (before jitter).", "session", "peer")
	mBFDRx            = def("vigil_bfd_rx_interval_seconds", Gauge, "The negotiated interval between the packets the peer sends.", "session", "peer")
	mBFDUnmatched     = def("vigil_bfd_unmatched_packets_dropped_total", Counter, "BFD Control packets dropped before a session could be named (malformed, unknown discriminator), by reason.", "reason")
	mBFDLateMax       = def("vigil_bfd_timer_late_max_seconds", Gauge, "The latest the BFD process's timer has fired for a deadline (transmit or detection) since that process started.")
	mBFDRestarts      = def("vigil_bfd_process_restarts_total", Counter, "BFD processes (vigil _bfd) that died and were started again since the daemon started; each time its sessions went down.")
	mBGPUp            = def("vigil_bgp_session_up", Gauge, "1 while the BGP session is Established, 0 otherwise.", "peer", "remote_as")
	mBGPAdvertised    = def("vigil_bgp_prefixes_advertised", Gauge, "Prefixes currently announced to the BGP peer.", "peer", "remote_as")
	mBGPFlaps         = def("vigil_bgp_session_flaps_total", Counter, "Transitions of the BGP session out of Established.", "peer", "remote_as")
	mBGPHeld          = def("vigil_bgp_session_held_down", Gauge, "1 while vigil keeps the BGP session down: its bfd_instance is not Up, or bfd_holddown runs after a flap.", "peer", "remote_as")
	mSyncUp           = def("vigil_conn_sync_up", Gauge, "1 while lvs_sync_daemon's connection sync runs, 0 when it is configured but could not start.", "intf", "iname")
	mSyncMaster       = def("vigil_conn_sync_master", Gauge, "1 while this director sends its connections (MASTER of the sync instance), 0 while it keeps a copy.", "intf", "iname")
	mSyncSynced       = def("vigil_conn_sync_synced", Gauge, "1 once the copy is complete after the sync started (or the hold bound passed); 0 while the instance is held from preempting.", "intf", "iname")
	mSyncEntries      = def("vigil_conn_sync_entries", Gauge, "Connection entries held: the copy on a backup, the flows tracked on the master.", "intf", "iname")
	mSyncSent         = def("vigil_conn_sync_entries_sent_total", Counter, "Connection entries sent to the peers.", "intf", "iname")
	mSyncReceived     = def("vigil_conn_sync_entries_received_total", Counter, "Connection entries received from the master.", "intf", "iname")
	mSyncInstalled    = def("vigil_conn_sync_entries_installed_total", Counter, "Connection entries written into the kernel's conntrack table at takeovers.", "intf", "iname")
	mSyncPktSent      = def("vigil_conn_sync_packets_sent_total", Counter, "Sync datagrams sent.", "intf", "iname")
	mSyncPktReceived  = def("vigil_conn_sync_packets_received_total", Counter, "Sync datagrams received and accepted.", "intf", "iname")
	mSyncDropped      = def("vigil_conn_sync_packets_dropped_total", Counter, "Sync datagrams dropped, by reason (auth, sync id, ttl, malformed and so on).", "intf", "iname", "reason")
	mSyncFull         = def("vigil_conn_sync_full_tables_received_total", Counter, "Complete tables received from the master (requests at start, gaps, periodic dumps).", "intf", "iname")
	mSyncGaps         = def("vigil_conn_sync_gaps_total", Counter, "Sequence gaps seen in the master's datagrams (each asks for the full table).", "intf", "iname")
	mSyncOverflow     = def("vigil_conn_sync_overflow_total", Counter, "Connection entries refused because the copy was full.", "intf", "iname")
	mSyncLag          = def("vigil_conn_sync_lag_seconds", Gauge, "Receipt time less send time of the latest entry datagram (the directors' clocks are assumed NTP-close).", "intf", "iname")
	mSyncPeerAge      = def("vigil_conn_sync_peer_last_seen_seconds", Gauge, "Seconds since a datagram of the sync peer was last accepted (every director sends one each second).", "intf", "iname", "peer")
	mSyncInstalls     = def("vigil_conn_sync_takeover_installs_total", Counter, "Takeovers that installed the synced copy before claiming the VIPs.", "intf", "iname")
	mSyncInstallFail  = def("vigil_conn_sync_takeover_install_failures_total", Counter, "Takeovers whose install of the synced copy failed (the VIPs were claimed anyway).", "intf", "iname")
	mSyncInstallTook  = def("vigil_conn_sync_takeover_install_seconds", Gauge, "How long the last takeover's install took (it delays the VIPs).", "intf", "iname")
	instanceCounters  = map[string]*metric{control.CounterAdvertsSent: mAdvSent, control.CounterAdvertsReceived: mAdvRcvd, control.CounterPriority0Sent: mPrio0Sent, control.CounterPriority0Received: mPrio0Rcvd, control.CounterBecameMaster: mBecameMaster, control.CounterReleasedMaster: mReleasedMaster}
	ignoredCounterKey = map[string]bool{
		control.CounterLoopLagMaxMs: true, // exported as vigil_loop_lag_max_seconds
		// The timing of the last takeover, for `vigil status` and the demo;
		// not exported (yet).
		control.CounterFirstAdvertUs: true, control.CounterVIPsClaimedUs: true,
	}
)

type metric struct {
	Def
	index int // in all
}

var all []*metric

func def(name string, k Kind, help string, labels ...string) *metric {
	m := &metric{Def: Def{Name: name, Kind: k, Labels: labels, Help: help}, index: len(all)}
	all = append(all, m)
	return m
}

// Defs lists every metric family the collector exports (besides the Go
// runtime's go_* and the process' process_* families).
func Defs() []Def {
	out := make([]Def, len(all))
	for i, m := range all {
		out[i] = m.Def
	}
	return out
}

// CounterKnown reports whether the collector exports the instance counter
// named key (a key of control.InstanceStatus.Counters), so that a counter
// the daemon adds cannot go unexported unnoticed.
func CounterKnown(key string) bool {
	return instanceCounters[key] != nil || ignoredCounterKey[key] ||
		slices.ContainsFunc(vrrp.DropReasons(), func(r vrrp.DropReason) bool { return control.DropCounter(r) == key })
}

// Collector turns snapshots into metrics.
type Collector struct {
	snapshot func() (control.Status, bool)
}

// BFDStates are RFC 5880's session states, exported one-hot.
var BFDStates = []string{"AdminDown", "Down", "Init", "Up"}

// States are the VRRP states exported as one-hot vigil_vrrp_state series, so
// alerts can say `vigil_vrrp_state{state="MASTER"} == 1` on two nodes.
var States = []string{"INIT", "BACKUP", "MASTER", "FAULT"}

// New returns a collector that calls snapshot on every scrape. snapshot
// reports false when the daemon did not answer; the scrape then carries
// only the Go and process metrics (and the scrape's own up).
func New(snapshot func() (control.Status, bool)) *Collector {
	return &Collector{snapshot: snapshot}
}

// Collect writes the vigil_ families of one snapshot to ch (nothing when
// the daemon did not answer).
func (c *Collector) Collect(ch *Families) {
	s, ok := c.snapshot()
	if !ok {
		return
	}
	ch.emit(mInfo, 1, s.Version, s.ConfigFile)
	reloadOK := s.LastReload == nil || s.LastReload.OK
	ch.emit(mReloadOK, b2f(reloadOK))
	if !s.ConfigLoaded.IsZero() {
		ch.emit(mReloadTime, unixSeconds(s.ConfigLoaded))
	}
	ch.emit(mLoopLag, time.Duration(s.LoopLag.Recent).Seconds())
	ch.emit(mLoopLagMax, time.Duration(s.LoopLag.Max).Seconds())
	type sockKey struct{ intf, fam, vrid string }
	foreign := map[sockKey]uint64{}
	for _, in := range s.Instances {
		labels := []string{in.Name, in.Interface, itoa(in.VRID)}
		ch.oneHot(mState, in.State, States, labels...)
		ch.emit(mPrio, float64(in.Priority), labels...)
		ch.emit(mBasePrio, float64(in.BasePriority), labels...)
		ch.emit(mMasterPrio, float64(in.MasterPriority), labels...)
		ch.emit(mVIPs, float64(len(in.VIPs)), labels...)
		ch.emit(mAdvertThread, b2f(in.AdvertThread), labels...)
		ch.emit(mGARP, float64(in.GARPSent), labels...)
		ch.emit(mNA, float64(in.NASent), labels...)
		ch.emit(mAnnounceErr, float64(in.AnnounceErrors), labels...)
		for key, v := range in.Counters {
			if m := instanceCounters[key]; m != nil {
				ch.emit(m, float64(v), labels...)
			}
		}
		for _, r := range vrrp.DropReasons() {
			if v, ok := in.Counters[control.DropCounter(r)]; ok {
				ch.emit(mDropped, float64(v), append(labels, control.DropLabel(r))...)
			}
		}
		for vrid, v := range in.ForeignVRIDs {
			// The count belongs to the interface's socket, which every
			// instance on it reports: export it once.
			foreign[sockKey{in.Interface, in.Family, itoa(vrid)}] = v
		}
	}
	for k, v := range foreign {
		ch.emit(mForeign, float64(v), k.intf, k.fam, k.vrid)
	}
	for _, g := range s.Groups {
		ch.oneHot(mGroupState, g.State, States, g.Name)
	}
	for _, t := range s.Trackers {
		if !t.Known {
			continue
		}
		ch.emit(mTrackerUp, b2f(t.OK), t.Kind, t.Name)
		if t.Kind == "file" {
			ch.emit(mTrackerValue, float64(t.Value), t.Name)
		}
	}
	for _, b := range s.BFD {
		ch.emit(mBFDUp, b2f(b.State == "Up"), b.Name, b.Peer)
		ch.oneHot(mBFDState, b.State, BFDStates, b.Name, b.Peer)
		ch.emit(mBFDFlaps, float64(b.Flaps), b.Name, b.Peer)
		ch.emit(mBFDSent, float64(b.Sent), b.Name, b.Peer)
		ch.emit(mBFDRcvd, float64(b.Received), b.Name, b.Peer)
		for r, n := range b.Drops {
			ch.emit(mBFDDropped, float64(n), b.Name, b.Peer, r)
		}
		ch.emit(mBFDDetect, time.Duration(b.DetectTime).Seconds(), b.Name, b.Peer)
		ch.emit(mBFDTx, time.Duration(b.TxInterval).Seconds(), b.Name, b.Peer)
		ch.emit(mBFDRx, time.Duration(b.RxInterval).Seconds(), b.Name, b.Peer)
	}
	if r := s.BFDRunner; r != nil {
		perSession := map[string]uint64{}
		for _, b := range s.BFD {
			for k, n := range b.Drops {
				perSession[k] += n
			}
		}
		for k, n := range r.Drops {
			if n > perSession[k] {
				ch.emit(mBFDUnmatched, float64(n-perSession[k]), k)
			}
		}
		ch.emit(mBFDLateMax, time.Duration(r.WakeLateMax).Seconds())
		ch.emit(mBFDRestarts, float64(r.Restarts))
	}
	for _, p := range s.BGP {
		as := strconv.FormatUint(uint64(p.RemoteAS), 10)
		ch.emit(mBGPUp, b2f(p.State == "Established"), p.Peer, as)
		ch.emit(mBGPAdvertised, float64(p.Advertised), p.Peer, as)
		ch.emit(mBGPFlaps, float64(p.Flaps), p.Peer, as)
		ch.emit(mBGPHeld, b2f(p.HeldDown != ""), p.Peer, as)
	}
	syncMetrics(ch, s.Sync)
	for _, vs := range s.Services {
		ch.emit(mVSActive, b2f(vs.Active), vs.Name)
		ch.emit(mVSQuorum, b2f(vs.Quorum), vs.Name)
		if vs.TableDigest != "" {
			ch.emit(mVSTable, 1, vs.Name, vs.TableDigest)
		}
		traffic(ch, vs.Stats, mVSConns, mVSPackets, mVSBytes, vs.Name)
		for _, r := range vs.RealServers {
			ch.emit(mRSUp, b2f(r.Up), vs.Name, r.Addr)
			ch.emit(mRSWeight, float64(r.Weight), vs.Name, r.Addr)
			traffic(ch, r.Stats, mRSConns, mRSPackets, mRSBytes, vs.Name, r.Addr)
		}
	}
}

// syncMetrics exports lvs_sync_daemon's connection sync, if configured.
func syncMetrics(ch *Families, y *control.SyncStatus) {
	if y == nil {
		return
	}
	l := []string{y.Interface, y.Instance}
	ch.emit(mSyncUp, b2f(y.Running), l...)
	ch.emit(mSyncMaster, b2f(y.Master), l...)
	ch.emit(mSyncSynced, b2f(y.Synced), l...)
	ch.emit(mSyncEntries, float64(y.Entries), l...)
	ch.emit(mSyncSent, float64(y.Sent), l...)
	ch.emit(mSyncReceived, float64(y.Received), l...)
	ch.emit(mSyncInstalled, float64(y.Installed), l...)
	ch.emit(mSyncPktSent, float64(y.SentPackets), l...)
	ch.emit(mSyncPktReceived, float64(y.ReceivedPackets), l...)
	for r, n := range y.Dropped {
		ch.emit(mSyncDropped, float64(n), append(l, r)...)
	}
	ch.emit(mSyncFull, float64(y.FullSyncs), l...)
	ch.emit(mSyncGaps, float64(y.Gaps), l...)
	ch.emit(mSyncOverflow, float64(y.Overflow), l...)
	ch.emit(mSyncLag, time.Duration(y.Lag).Seconds(), l...)
	for _, p := range y.Peers {
		if !p.LastSeen.IsZero() {
			ch.emit(mSyncPeerAge, time.Duration(p.Age).Seconds(), append(l, p.Addr)...)
		}
	}
	ch.emit(mSyncInstalls, float64(y.Installs), l...)
	ch.emit(mSyncInstallFail, float64(y.InstallFailures), l...)
	ch.emit(mSyncInstallTook, time.Duration(y.LastInstall.Took).Seconds(), l...)
}

// traffic exports one virtual or real server's counts, if it has any.
func traffic(ch *Families, t *control.Traffic, conns, packets, bytes *metric, labels ...string) {
	if t == nil {
		return
	}
	ch.emit(conns, float64(t.Conns), labels...)
	ch.emit(packets, float64(t.InPackets), append(labels, "in")...)
	ch.emit(packets, float64(t.OutPackets), append(labels, "out")...)
	ch.emit(bytes, float64(t.InBytes), append(labels, "in")...)
	ch.emit(bytes, float64(t.OutBytes), append(labels, "out")...)
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func itoa(i int) string { return strconv.Itoa(i) }
