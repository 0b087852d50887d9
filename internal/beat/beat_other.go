//go:build !(linux && amd64)

package beat

import (
	"errors"
	"time"
)

// Supported reports whether this build has the sender thread.
const Supported = false

// MaxMsgs bounds the messages of one Sender.
const MaxMsgs = 1024

// ErrUnsupported is Start's error where there is no sender thread.
var ErrUnsupported = errors.New("beat: no sender thread on this platform")

// ErrStuck is Stop's error when the thread did not go.
var ErrStuck = errors.New("beat: the sender thread did not stop")

// Sender is one sender thread; there is none here.
type Sender struct{}

// Start fails: the caller sends its adverts itself.
func Start(fd int, msgs []Msg, interval time.Duration, first, lease time.Time) (*Sender, error) {
	return nil, ErrUnsupported
}

func (s *Sender) Renew(until time.Time) {}
func (s *Sender) Running() bool         { return false }
func (s *Sender) State() State          { return State{} }
func (s *Sender) Stop() error           { return nil }
