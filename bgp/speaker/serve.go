package speaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"vigil/bgp"
	"vigil/internal/childproc"
)

// Engine is the BGP implementation vigil-bgp runs for one bgp_instance
// (bgp/speaker/gobgp). Serve drives it from the daemon's requests; its
// methods are called from one goroutine, except Reconcile, which has its
// own, and Sessions.
type Engine interface {
	Start(ctx context.Context) error
	SetNeighbors(ctx context.Context, ns []Neighbor) error
	SetEnabled(ctx context.Context, addr netip.Addr, enabled bool, reason string) error
	// Reconcile makes the announced routes equal want as far as it can
	// and returns what is announced.
	Reconcile(want []bgp.Route) []bgp.Route
	Sessions() []Session
	Stop()
}

// NewEngine makes an Engine; it calls changed whenever Sessions would
// return something new.
type NewEngine func(cfg Config, log *slog.Logger, changed func()) Engine

// Serve is vigil-bgp's main loop on conn, the daemon's end of the
// socketpair: it reads the start request, starts the engine, then serves
// requests until a stop request (nil) or until the daemon's end closes
// (an error: the daemon is gone, and the caller exits at once so that the
// kernel closes the BGP sessions, as it would have in the daemon).
func Serve(conn net.Conn, newEngine NewEngine) error {
	w := writer{childproc.NewWriter(conn)}
	dec := childproc.NewReader(conn)
	m, err := dec.Next()
	if err != nil {
		return fmt.Errorf("read start: %w", err)
	}
	var sb startBody
	if m.Op != opStart || json.Unmarshal(m.Body, &sb) != nil {
		return fmt.Errorf("first request is %q, want %q", m.Op, opStart)
	}
	level := slog.LevelInfo
	if sb.Debug {
		level = slog.LevelDebug
	}
	log := w.Logger(level)

	// Session changes are coalesced: one snapshot per burst.
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	e := newEngine(sb.Config, log, notify)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Start(ctx); err != nil {
		w.reply(m.ID, err)
		return err
	}
	w.reply(m.ID, nil)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				w.send(opSessions, e.Sessions())
			}
		}
	}()
	notify()

	// Reconciles run on their own goroutine, latest wanted set first: a
	// thousand prefixes never hold up a BFD-driven disable.
	want := make(chan routesBody, 1)
	reconciled := make(chan struct{})
	go func() {
		defer close(reconciled)
		for {
			select {
			case <-ctx.Done():
				return
			case rb := <-want:
				got := e.Reconcile(rb.Routes)
				w.send(opApplied, routesBody{Gen: rb.Gen, Routes: got})
				notify() // the announced counts changed
			}
		}
	}()

	for {
		m, err := dec.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("the daemon closed the connection")
			}
			return err
		}
		switch m.Op {
		case opSet:
			var rb routesBody
			if err := json.Unmarshal(m.Body, &rb); err != nil {
				return fmt.Errorf("set: %w", err)
			}
			select {
			case <-want:
			default:
			}
			want <- rb
		case opSetNeighbors:
			var ns []Neighbor
			err := json.Unmarshal(m.Body, &ns)
			if err == nil {
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				err = e.SetNeighbors(rctx, ns)
				rcancel()
			}
			w.reply(m.ID, err)
		case opSetEnabled:
			var eb enabledBody
			err := json.Unmarshal(m.Body, &eb)
			if err == nil {
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				err = e.SetEnabled(rctx, eb.Addr, eb.Enabled, eb.Reason)
				rcancel()
			}
			w.reply(m.ID, err)
		case opStop:
			e.Stop()
			cancel()
			<-reconciled
			w.reply(m.ID, nil)
			return nil
		default:
			w.reply(m.ID, fmt.Errorf("unknown request %q", m.Op))
		}
	}
}

// writer is the socket to the daemon; a failed write is said on stderr
// (the daemon is gone; Serve's read fails too and the helper exits).
type writer struct{ *childproc.Writer }

func (w writer) send(op string, body any) {
	if err := w.Send(op, body); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-bgp: write to the daemon:", err)
	}
}

func (w writer) reply(id uint64, err error) {
	if err := w.Reply(id, nil, err); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-bgp: write to the daemon:", err)
	}
}
