//go:build !(linux && amd64)

package beat

import (
	"errors"
	"time"
)

// Supported reports whether this build has the sender thread.
const Supported = false

// ErrUnsupported is Start's error where there is no sender thread.
var ErrUnsupported = errors.New("beat: no sender thread on this platform")

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
