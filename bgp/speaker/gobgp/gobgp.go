// Package gobgp is the BGP engine of vigil-bgp, the helper process that
// runs one bgp_instance's sessions (RFC 4271; RFC 4760 for IPv6 routes;
// RFC 2385 TCP MD5) on gobgp, used as a library. The daemon talks to it
// through bgp/speaker, which starts vigil-bgp only for a bgp_instance
// block: gobgp, gRPC, protobuf and viper live in that binary alone (their
// package initialisation alone cost the daemon 13.5 MB of RSS when they
// were linked into it, docs/benchmarks.md).
//
// vigil is an announcer, not a router: the engine originates host routes
// with next hop self, installs nothing it learns into the kernel (gobgp
// keeps what neighbors send in its RIB only; a global import policy would
// reject our own paths too, gobgp applies it to local routes), and never
// listens on TCP 179 (it dials its neighbors, so it can share a
// host with a routing daemon). IPv4 routes go to IPv4 neighbors and IPv6
// routes to IPv6 neighbors.
package gobgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	bgppkt "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"

	"vigil/bgp"
	"vigil/bgp/speaker"
)

// Engine is a running bgp_instance: gobgp's server and what vigil-bgp
// needs to answer the daemon. It implements speaker.Engine.
type Engine struct {
	cfg     speaker.Config
	log     *slog.Logger
	srv     *server.BgpServer
	changed func() // a session's state or last error changed

	mu       sync.Mutex
	sessions map[netip.Addr]*speaker.Session
	routes   []bgp.Route // announced, as last reconciled
}

// New returns an engine for cfg; it starts nothing. changed is called
// (from gobgp's goroutines) whenever Sessions would return something new.
func New(cfg speaker.Config, log *slog.Logger, changed func()) speaker.Engine {
	s := &Engine{cfg: cfg, log: log, changed: changed, sessions: map[netip.Addr]*speaker.Session{}}
	for _, n := range cfg.Neighbors {
		s.sessions[n.Addr] = &speaker.Session{Neighbor: n.Addr.String(), RemoteAS: n.RemoteAS, State: "Idle"}
	}
	return s
}

// Start starts gobgp and the neighbors. The engine runs until ctx ends or
// Stop.
func (s *Engine) Start(ctx context.Context) error {
	h := &logHook{next: s.log.Handler(), sp: s}
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelDebug) // the hook wants connection errors; it forwards Info and up
	s.srv = server.NewBgpServer(server.LoggerOption(slog.New(h), lvl))
	go s.srv.Serve()
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: s.cfg.LocalAS, RouterId: s.cfg.RouterID.String(), ListenPort: -1,
	}}); err != nil {
		s.srv.Stop()
		return fmt.Errorf("bgp_instance %s: start: %w", s.cfg.Name, err)
	}
	if err := s.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.peerEvent}, server.WatchPeer()); err != nil {
		s.srv.Stop()
		return fmt.Errorf("bgp_instance %s: watch peers: %w", s.cfg.Name, err)
	}
	for _, n := range s.cfg.Neighbors {
		if err := s.addPeer(ctx, n); err != nil {
			s.srv.Stop()
			return err
		}
	}
	return nil
}

func (s *Engine) addPeer(ctx context.Context, n speaker.Neighbor) error {
	hold := uint64(n.HoldTime / time.Second)
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Addr.String(), PeerAsn: n.RemoteAS, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{HoldTime: hold, KeepaliveInterval: max(hold/3, 1),
			ConnectRetry: uint64(max(s.cfg.ConnectRetry/time.Second, 1)), IdleHoldTimeAfterReset: 1}},
		Transport: &api.Transport{RemotePort: uint32(n.Port)},
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
		return fmt.Errorf("bgp_instance %s: neighbor %s: %w", s.cfg.Name, n.Addr, err)
	}
	return nil
}

// SetNeighbors adds and removes neighbors to match ns (a reload); a
// neighbor whose settings changed is replaced.
func (s *Engine) SetNeighbors(ctx context.Context, ns []speaker.Neighbor) error {
	old := map[netip.Addr]speaker.Neighbor{}
	for _, n := range s.cfg.Neighbors {
		old[n.Addr] = n
	}
	var errs []error
	keep := map[netip.Addr]bool{}
	for _, n := range ns {
		keep[n.Addr] = true
		if speaker.Unchanged(s.cfg.Neighbors, ns, n.Addr) {
			continue
		}
		_, had := old[n.Addr]
		if had {
			if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: n.Addr.String()}); err != nil {
				errs = append(errs, err)
			}
		}
		if err := s.addPeer(ctx, n); err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		s.sessions[n.Addr] = &speaker.Session{Neighbor: n.Addr.String(), RemoteAS: n.RemoteAS, State: "Idle"}
		s.mu.Unlock()
	}
	for a := range old {
		if !keep[a] {
			if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
				errs = append(errs, err)
			}
			s.mu.Lock()
			delete(s.sessions, a)
			s.mu.Unlock()
		}
	}
	s.cfg.Neighbors = slices.Clone(ns)
	s.changed()
	return errors.Join(errs...)
}

// SetEnabled starts or tears down the session to neighbor addr: a BFD
// session that goes down takes the BGP session with it (the router drops
// our routes at once instead of after the hold time), and while it stays
// down the speaker does not reconnect.
//
// A neighbor enabled again is a new gobgp peer, not EnablePeer's: after an
// administrative stop gobgp's peer waits its idle hold (5 s) before its
// connect loop starts, so a session came back 7-9 s after its BFD session
// did (e2e TestBGPBFDHolddown); a new peer connects within its first
// connect retry (1.5-2 s). The damping is the daemon's (bfd_holddown).
func (s *Engine) SetEnabled(ctx context.Context, addr netip.Addr, enabled bool, reason string) error {
	var err error
	if enabled {
		i := slices.IndexFunc(s.cfg.Neighbors, func(n speaker.Neighbor) bool { return n.Addr == addr })
		if i < 0 {
			return fmt.Errorf("bgp_instance %s: no neighbor %s", s.cfg.Name, addr)
		}
		if err = s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err == nil {
			err = s.addPeer(ctx, s.cfg.Neighbors[i])
		}
	} else {
		err = s.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: addr.String(), Communication: reason})
	}
	if err == nil && !enabled {
		s.noteError(addr.String(), "disabled: "+reason, time.Now())
	}
	return err
}

// Reconcile announces and withdraws the difference between what is
// announced and want, and returns what is announced afterwards (a route
// gobgp refused stays out, a withdrawal it refused stays in).
func (s *Engine) Reconcile(want []bgp.Route) []bgp.Route {
	s.mu.Lock()
	old := s.routes
	s.mu.Unlock()
	ann, wd := bgp.Diff(old, want)
	kept := map[netip.Prefix]bgp.Route{}
	for _, r := range old {
		kept[r.Prefix] = r
	}
	if len(wd) > 0 {
		paths := make([]*apiutil.Path, 0, len(wd))
		for _, r := range wd {
			if p, err := path(r, true); err == nil {
				paths = append(paths, p)
			}
		}
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: paths}); err != nil {
			s.log.Error("bgp withdraw", "err", err)
		} else {
			for _, r := range wd {
				delete(kept, r.Prefix)
				s.log.Info("bgp withdrawn", "prefix", r.Prefix.String())
			}
		}
	}
	if len(ann) > 0 {
		paths := make([]*apiutil.Path, 0, len(ann))
		for _, r := range ann {
			p, err := path(r, false)
			if err != nil {
				s.log.Error("bgp announce", "prefix", r.Prefix.String(), "err", err)
				continue
			}
			paths = append(paths, p)
		}
		resps, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: paths})
		for i, r := range ann {
			if err != nil && (i >= len(resps) || resps[i].Error != nil) {
				continue
			}
			kept[r.Prefix] = r
			s.log.Info("bgp announced", "route", r.String())
		}
		if err != nil {
			s.log.Error("bgp announce", "err", err)
		}
	}
	routes := make([]bgp.Route, 0, len(kept))
	for _, r := range kept {
		routes = append(routes, r)
	}
	s.mu.Lock()
	s.routes = routes
	s.mu.Unlock()
	return routes
}

// path builds a host route with next hop self: 0.0.0.0 or :: is replaced
// by the session's local address.
func path(r bgp.Route, withdraw bool) (*apiutil.Path, error) {
	nlri, err := bgppkt.NewIPAddrPrefix(r.Prefix)
	if err != nil {
		return nil, err
	}
	attrs := []bgppkt.PathAttributeInterface{bgppkt.NewPathAttributeOrigin(bgppkt.BGP_ORIGIN_ATTR_TYPE_IGP)}
	fam := bgppkt.RF_IPv4_UC
	if r.Prefix.Addr().Is4() {
		nh, err := bgppkt.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nh)
	} else {
		fam = bgppkt.RF_IPv6_UC
		mp, err := bgppkt.NewPathAttributeMpReachNLRI(fam, []bgppkt.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	if r.HasMED {
		attrs = append(attrs, bgppkt.NewPathAttributeMultiExitDisc(r.MED))
	}
	if len(r.Communities) > 0 {
		attrs = append(attrs, bgppkt.NewPathAttributeCommunities(r.Communities))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw}, nil
}

// Sessions returns the neighbors' states, in configuration order.
func (s *Engine) Sessions() []speaker.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	v4, v6 := 0, 0
	for _, r := range s.routes {
		if r.Prefix.Addr().Is4() {
			v4++
		} else {
			v6++
		}
	}
	out := make([]speaker.Session, 0, len(s.cfg.Neighbors))
	for _, n := range s.cfg.Neighbors {
		if ss := s.sessions[n.Addr]; ss != nil {
			c := *ss
			if c.State == "Established" {
				c.Announced = v4
				if n.Addr.Is6() {
					c.Announced = v6
				}
			}
			out = append(out, c)
		}
	}
	return out
}

func stateName(st bgppkt.FSMState) string {
	switch st {
	case bgppkt.BGP_FSM_IDLE:
		return "Idle"
	case bgppkt.BGP_FSM_CONNECT:
		return "Connect"
	case bgppkt.BGP_FSM_ACTIVE:
		return "Active"
	case bgppkt.BGP_FSM_OPENSENT:
		return "OpenSent"
	case bgppkt.BGP_FSM_OPENCONFIRM:
		return "OpenConfirm"
	case bgppkt.BGP_FSM_ESTABLISHED:
		return "Established"
	}
	return "unknown"
}

func (s *Engine) peerEvent(ev *apiutil.WatchEventMessage_PeerEvent, at time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := stateName(ev.Peer.State.SessionState)
	s.mu.Lock()
	ss := s.sessions[ev.Peer.State.NeighborAddress]
	if ss == nil || ss.State == st {
		s.mu.Unlock()
		return
	}
	was := ss.State
	ss.State, ss.Since = st, at
	if was == "Established" {
		ss.Flaps++
		if r := ev.Peer.State.DisconnectReason; r != api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
			ss.LastError, ss.LastErrorAt = disconnectText(r, ev.Peer.State.DisconnectMessage), at
		}
	}
	s.mu.Unlock()
	s.changed()
	if st == "Established" || was == "Established" {
		s.log.Info("bgp session", "neighbor", ss.Neighbor, "from", was, "to", st)
	} else {
		s.log.Debug("bgp session", "neighbor", ss.Neighbor, "from", was, "to", st)
	}
}

func disconnectText(r api.PeerState_DisconnectReason, msg string) string {
	name := r.String()
	const p = "DISCONNECT_REASON_"
	if len(name) > len(p) && name[:len(p)] == p {
		name = name[len(p):]
	}
	if msg != "" {
		return name + ": " + msg
	}
	return name
}

// noteError records why a neighbor's session failed, from gobgp's log.
func (s *Engine) noteError(neighbor, text string, at time.Time) {
	a, err := netip.ParseAddr(neighbor)
	if err != nil {
		return
	}
	s.mu.Lock()
	ss := s.sessions[a]
	if ss != nil {
		ss.LastError, ss.LastErrorAt = text, at
	}
	s.mu.Unlock()
	if ss != nil {
		s.changed()
	}
}

// Stop withdraws every route (a NOTIFICATION Cease to each neighbor, so
// the routers drop our routes at once) and stops gobgp.
func (s *Engine) Stop() {
	if s.srv == nil {
		return
	}
	s.srv.Stop()
	s.mu.Lock()
	s.routes = nil
	for _, ss := range s.sessions {
		ss.State = "Idle"
	}
	s.mu.Unlock()
	s.changed()
}

// notificationText names an RFC 4271 6.x NOTIFICATION code and subcode.
func notificationText(code, sub int) string {
	codes := map[int]string{1: "message header error", 2: "OPEN message error", 3: "UPDATE message error", 4: "hold timer expired",
		5: "finite state machine error", 6: "cease"}
	subs := map[[2]int]string{{2, 1}: "unsupported version number", {2, 2}: "bad peer AS", {2, 3}: "bad BGP identifier",
		{2, 4}: "unsupported optional parameter", {2, 6}: "unacceptable hold time", {2, 7}: "unsupported capability",
		{6, 1}: "maximum number of prefixes reached", {6, 2}: "administrative shutdown", {6, 3}: "peer de-configured",
		{6, 4}: "administrative reset", {6, 5}: "connection rejected", {6, 6}: "other configuration change",
		{6, 7}: "connection collision resolution", {6, 8}: "out of resources"}
	t := codes[code]
	if t == "" {
		t = "code " + strconv.Itoa(code)
	}
	if st, ok := subs[[2]int{code, sub}]; ok {
		t += ": " + st
	} else if sub != 0 {
		t += ", subcode " + strconv.Itoa(sub)
	}
	return t
}

// logHook forwards gobgp's log to the daemon's (Info as Debug: the
// speaker logs session changes itself) and notes the errors a session
// hits, which gobgp's API does not report: connection failures and
// NOTIFICATIONs.
type logHook struct {
	next  slog.Handler
	sp    *Engine
	attrs []slog.Attr
}

func (h *logHook) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHook) Handle(ctx context.Context, r slog.Record) error {
	var key, oldState, newState, reason string
	var code, sub int
	var errText string
	look := func(a slog.Attr) bool {
		switch a.Key {
		case "Key":
			key = a.Value.String()
		case "Code":
			code = int(a.Value.Int64())
		case "Subcode":
			sub = int(a.Value.Int64())
		case "Error":
			errText = a.Value.String()
		case "old":
			oldState = a.Value.String()
		case "new":
			newState = a.Value.String()
		case "reason":
			reason = a.Value.String()
		}
		return true
	}
	for _, a := range h.attrs {
		look(a)
	}
	r.Attrs(look)
	switch r.Message {
	case "received notification":
		h.sp.noteError(key, "notification received: "+notificationText(code, sub), r.Time)
	case "sent notification":
		if code != 6 { // a Cease we send is our own doing
			h.sp.noteError(key, "notification sent: "+notificationText(code, sub), r.Time)
		}
	case "failed to connect":
		h.sp.noteError(key, "connect: "+errText, r.Time)
	case "state changed":
		// gobgp drops a NOTIFICATION that arrives in OpenConfirm without
		// logging it: the router refused our OPEN.
		if oldState == "BGP_FSM_OPENCONFIRM" && newState == "BGP_FSM_IDLE" && reason == "invalid-msg" {
			h.sp.noteError(key, "the router refused our OPEN (a NOTIFICATION right after it; most often local_as is not the AS it expects for us)", r.Time)
		}
	}
	lvl := r.Level
	if lvl < slog.LevelWarn {
		lvl = slog.LevelDebug
		if !h.next.Enabled(ctx, lvl) {
			return nil
		}
	}
	nr := slog.NewRecord(r.Time, lvl, "gobgp: "+r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(a); return true })
	return h.next.WithAttrs(h.attrs).Handle(ctx, nr)
}

func (h *logHook) WithAttrs(as []slog.Attr) slog.Handler {
	return &logHook{next: h.next, sp: h.sp, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *logHook) WithGroup(string) slog.Handler { return h }
