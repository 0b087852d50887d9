package link

import (
	"time"

	"vigil/bfd"
)

// The requests and events between a Process (in the daemon) and the BFD
// process (Serve), in internal/childproc's line protocol. Nothing crosses
// it while the sessions run undisturbed: only requests (configuration,
// scheduling, status) and state changes.
//
//	daemon → BFD process                       BFD process → daemon
//	{"id":1,"op":"sched","body":Scheduling}    {"id":1} or {"id":1,"err":"..."}
//	{"id":2,"op":"configure","body":[Session]} {"id":2,"body":{"up":{...}},"err":"..."}
//	{"id":3,"op":"status"}                     {"id":3,"body":statusBody}
//	{"id":4,"op":"stop"}                       {"id":4}, after the AdminDowns; then it exits
//	                                           {"op":"event","body":Event}
//	                                           {"op":"log","body":childproc.LogBody}
const (
	opSched     = "sched"
	opConfigure = "configure"
	opStatus    = "status"
	opStop      = "stop"
	opEvent     = "event"
)

// configureReply is whether each configured session is Up once Configure
// returned (a reload keeps Up sessions Up).
type configureReply struct {
	Up map[string]bool `json:"up"`
}

// statusBody is everything the daemon's status, metrics and doctor read.
type statusBody struct {
	Sessions   []bfd.Status      `json:"sessions"`
	Drops      map[string]uint64 `json:"drops"`
	Late       Lateness          `json:"late"`
	SendErrors map[string]string `json:"send_errors,omitempty"`
	Ports      map[string]uint16 `json:"ports,omitempty"`
}

// stopTimeout bounds the BFD process's stop (its AdminDowns) before it
// is killed; callTimeout any other request.
const (
	stopTimeout = 3 * time.Second
	callTimeout = 2 * time.Second
)
