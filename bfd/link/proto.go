package link

import (
	"encoding/json"
	"log/slog"
	"time"

	"vigil/bfd"
)

// The protocol between a Process (in the daemon) and the BFD process
// (Serve): one JSON object per line over a unix stream socketpair, fd 3 in
// the BFD process. Requests carry an id and get exactly one reply with that
// id (err empty on success); messages without an id are events. Both ends
// are this package in the same binary, so there is no version negotiation.
// Nothing crosses it while the sessions run undisturbed: only requests
// (configuration, scheduling, status) and state changes.
//
//	daemon → BFD process                       BFD process → daemon
//	{"id":1,"op":"sched","body":Scheduling}    {"id":1} or {"id":1,"err":"..."}
//	{"id":2,"op":"configure","body":[Session]} {"id":2,"body":{"up":{...}},"err":"..."}
//	{"id":3,"op":"status"}                     {"id":3,"body":statusBody}
//	{"id":4,"op":"stop"}                       {"id":4}, after the AdminDowns; then it exits
//	                                           {"op":"event","body":Event}
//	                                           {"op":"log","body":logBody}
type msg struct {
	ID   uint64          `json:"id,omitempty"`
	Op   string          `json:"op,omitempty"`
	Err  string          `json:"err,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

const (
	opSched     = "sched"
	opConfigure = "configure"
	opStatus    = "status"
	opStop      = "stop"
	opEvent     = "event"
	opLog       = "log"
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

// logBody is one log record of the BFD process, logged again by the
// daemon's logger.
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

// stopTimeout bounds the BFD process's stop (its AdminDowns) before it
// is killed; callTimeout any other request.
const (
	stopTimeout = 3 * time.Second
	callTimeout = 2 * time.Second
)
