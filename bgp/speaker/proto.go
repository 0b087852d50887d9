package speaker

import (
	"encoding/json"
	"log/slog"
	"net/netip"

	"vigil/bgp"
)

// The protocol between a Speaker (in the daemon) and vigil-bgp (Serve):
// one JSON object per line over a unix stream socketpair, fd 3 in the
// helper. Requests carry an id and get exactly one reply with that id (err
// empty on success); messages without an id are events. Both ends are this
// package, built from the same tree, so there is no version negotiation.
//
//	daemon → helper                        helper → daemon
//	{"id":1,"op":"start","body":Config}    {"id":1} or {"id":1,"err":"..."}
//	{"op":"set","body":routesBody}         {"op":"applied","body":routesBody}
//	{"id":2,"op":"set_neighbors",...}      {"id":2}
//	{"id":3,"op":"set_enabled",...}        {"id":3}
//	{"id":4,"op":"stop"}                   {"id":4}, then the helper exits
//	                                       {"op":"sessions","body":[Session]}
//	                                       {"op":"log","body":logBody}
type msg struct {
	ID   uint64          `json:"id,omitempty"`
	Op   string          `json:"op,omitempty"`
	Err  string          `json:"err,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

const (
	opStart        = "start"
	opSet          = "set"
	opSetNeighbors = "set_neighbors"
	opSetEnabled   = "set_enabled"
	opStop         = "stop"
	opApplied      = "applied"
	opSessions     = "sessions"
	opLog          = "log"
)

// startBody configures the helper.
type startBody struct {
	Config Config `json:"config"`
	// Debug asks for gobgp's debug lines too; otherwise the helper sends
	// only what the daemon's logger would print.
	Debug bool `json:"debug,omitempty"`
}

// routesBody is a Set (the routes to announce, generation gen) or its
// result (what is announced once generation gen was reconciled).
type routesBody struct {
	Gen    uint64      `json:"gen"`
	Routes []bgp.Route `json:"routes"`
}

type enabledBody struct {
	Addr    netip.Addr `json:"addr"`
	Enabled bool       `json:"enabled"`
	Reason  string     `json:"reason,omitempty"`
}

// logBody is one log record of the helper, re-emitted by the daemon's
// logger (which adds bgp_instance).
type logBody struct {
	Level slog.Level  `json:"level"`
	Msg   string      `json:"msg"`
	Attrs [][2]string `json:"attrs,omitempty"`
}

func newMsg(id uint64, op string, body any) (msg, error) {
	m := msg{ID: id, Op: op}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return m, err
		}
		m.Body = b
	}
	return m, nil
}
