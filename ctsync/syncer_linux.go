package ctsync

import (
	"context"
	"errors"
)

// Syncer is one lvs_sync_daemon: its sockets, the backup's copy, counters.
//
// STILL MISSING (being built on branch ctsync): everything behind these
// signatures; New returns an error until then.
type Syncer struct {
	synced chan struct{}
}

var errNotYet = errors.New("ctsync: not implemented yet")

// New opens the Syncer's sockets in the caller's network namespace; it
// starts no goroutine.
func New(cfg Config) (*Syncer, error) { return nil, errNotYet }

// Start starts the Syncer's goroutines; they end with ctx or Close.
func (s *Syncer) Start(ctx context.Context) error { return errNotYet }

// SetServices sets the virtual servers whose flows are synced.
func (s *Syncer) SetServices([]Service) {}

// SetMaster switches between sending (master) and receiving (backup).
func (s *Syncer) SetMaster(bool) {}

// Install writes the copy into the kernel's conntrack table.
func (s *Syncer) Install(ctx context.Context) (int, error) { return 0, errNotYet }

// RequestFull asks the peers for their whole table.
func (s *Syncer) RequestFull() {}

// Synced is closed once a full table was received or no peer answered.
func (s *Syncer) Synced() <-chan struct{} { return s.synced }

// Status returns a snapshot.
func (s *Syncer) Status() Status { return Status{} }

// Close closes the sockets and stops the goroutines.
func (s *Syncer) Close() error { return nil }
