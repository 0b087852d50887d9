package speaker

import (
	"net/netip"

	"vigil/bgp"
)

// The requests and events between a Speaker (in the daemon) and vigil-bgp
// (Serve), in internal/childproc's line protocol:
//
//	daemon → helper                        helper → daemon
//	{"id":1,"op":"start","body":Config}    {"id":1} or {"id":1,"err":"..."}
//	{"op":"set","body":routesBody}         {"op":"applied","body":routesBody}
//	{"id":2,"op":"set_neighbors",...}      {"id":2}
//	{"id":3,"op":"set_enabled",...}        {"id":3}
//	{"id":4,"op":"stop"}                   {"id":4}, then the helper exits
//	                                       {"op":"sessions","body":[Session]}
//	                                       {"op":"log","body":childproc.LogBody}
const (
	opStart        = "start"
	opSet          = "set"
	opSetNeighbors = "set_neighbors"
	opSetEnabled   = "set_enabled"
	opStop         = "stop"
	opApplied      = "applied"
	opSessions     = "sessions"
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
