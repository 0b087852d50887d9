package track

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// InterfaceWatcher follows the state of named interfaces (track_interface,
// and the interfaces of the instances themselves if the daemon wishes)
// through a netlink subscription to link changes. An interface is up, as
// for keepalived, when it is administratively up and has carrier (IFF_UP
// and IFF_RUNNING); one that does not exist or has been deleted is down,
// and it comes back when an interface with that name appears.
type InterfaceWatcher struct {
	names  map[string]bool
	ns     *netns.NsHandle
	report func(Event)
	log    *slog.Logger
	// Retry is the wait before subscribing again after the subscription
	// failed (e.g. the socket overflowed); zero means one second.
	Retry time.Duration
}

// NewInterfaceWatcher returns a watcher of the named interfaces in network
// namespace ns (nil: the namespace vigil runs in; the caller keeps ns open
// while Run runs, since a failed subscription is re-made in it); it starts
// nothing.
// report receives the first state of every interface and every change,
// from the watcher's goroutine; it must not block for long.
func NewInterfaceWatcher(names []string, ns *netns.NsHandle, report func(Event), log *slog.Logger) (*InterfaceWatcher, error) {
	if report == nil {
		return nil, errors.New("track: interface watcher needs a report function")
	}
	set := map[string]bool{}
	for _, n := range names {
		if n == "" || len(n) > unix.IFNAMSIZ-1 {
			return nil, fmt.Errorf("track: interface name %q: expected 1-%d characters", n, unix.IFNAMSIZ-1)
		}
		set[n] = true
	}
	return &InterfaceWatcher{names: set, ns: ns, report: report, log: orDiscard(log)}, nil
}

// linkState is an interface's state as reported.
type linkState struct {
	up     bool
	detail string
}

// ifaceState keeps what the watcher knows across subscriptions.
type ifaceState struct {
	reported map[string]linkState
	byIndex  map[int]string // ifindex → current name, for renames
}

// Run reports the current state of every interface, then follows changes
// until ctx ends. A subscription that fails is retried; Run returns nil
// when ctx ends.
func (w *InterfaceWatcher) Run(ctx context.Context) error {
	if len(w.names) == 0 {
		return idle(ctx)
	}
	retry := period(w.Retry, time.Second)
	st := &ifaceState{reported: map[string]linkState{}}
	for {
		err := w.session(ctx, st)
		if ctx.Err() != nil {
			return nil
		}
		w.log.Warn("track_interface: netlink subscription failed, retrying", "err", err, "in", retry)
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// session subscribes, lists the links to learn the current state, and
// follows updates until ctx ends or the subscription fails. Updates queued
// between subscribing and listing are older than the list and may briefly
// report a state the list already superseded; the last update wins, so
// the reported state always converges to the kernel's.
func (w *InterfaceWatcher) session(ctx context.Context, st *ifaceState) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	var cbErr error
	errc := make(chan error, 1)
	opts := netlink.LinkSubscribeOptions{
		Namespace: w.ns,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	}
	if err := netlink.LinkSubscribeWithOptions(updates, done, opts); err != nil {
		close(done)
		return fmt.Errorf("subscribe: %w", err)
	}
	// The library's receiver goroutine sends on updates until the socket
	// closes; drain it so that it can exit.
	defer func() {
		close(done)
		for range updates {
		}
	}()
	h, err := w.handle()
	if err != nil {
		return err
	}
	links, err := h.LinkList()
	h.Close()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list links: %w", err)
	}
	st.byIndex = map[int]string{}
	seen := map[string]bool{}
	for _, l := range links {
		a := l.Attrs()
		st.byIndex[a.Index] = a.Name
		if w.names[a.Name] {
			seen[a.Name] = true
			w.set(st, a.Name, stateOf(a))
		}
	}
	for n := range w.names {
		if !seen[n] {
			w.set(st, n, linkState{detail: "interface " + n + " does not exist"})
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			cbErr = err
			w.log.Debug("track_interface: netlink error", "err", err)
		case u, ok := <-updates:
			if !ok {
				if cbErr == nil {
					cbErr = errors.New("subscription closed")
				}
				return cbErr
			}
			w.update(st, u)
		}
	}
}

func (w *InterfaceWatcher) handle() (*netlink.Handle, error) {
	if w.ns == nil {
		return netlink.NewHandle()
	}
	h, err := netlink.NewHandleAt(*w.ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in namespace: %w", err)
	}
	return h, nil
}

// update applies one link message: new state, rename or deletion.
func (w *InterfaceWatcher) update(st *ifaceState, u netlink.LinkUpdate) {
	a := u.Link.Attrs()
	idx := int(u.Index)
	old, had := st.byIndex[idx]
	if u.Header.Type == unix.RTM_DELLINK {
		delete(st.byIndex, idx)
		if w.names[a.Name] {
			w.set(st, a.Name, linkState{detail: "interface " + a.Name + " was deleted"})
		}
		return
	}
	st.byIndex[idx] = a.Name
	if had && old != a.Name && w.names[old] {
		w.set(st, old, linkState{detail: fmt.Sprintf("interface %s was renamed %s", old, a.Name)})
	}
	if w.names[a.Name] {
		w.set(st, a.Name, stateOf(a))
	}
}

// set reports name's state if it changed.
func (w *InterfaceWatcher) set(st *ifaceState, name string, s linkState) {
	prev, ok := st.reported[name]
	if ok && prev.up == s.up {
		return
	}
	st.reported[name] = s
	w.log.Info("track_interface changed", "interface", name, "up", s.up, "detail", s.detail)
	w.report(Event{Kind: KindInterface, Name: name, OK: s.up, Detail: s.detail})
}

func stateOf(a *netlink.LinkAttrs) linkState {
	up := a.RawFlags&unix.IFF_UP != 0
	running := a.RawFlags&unix.IFF_RUNNING != 0
	switch {
	case up && running:
		return linkState{up: true, detail: "interface " + a.Name + " is up"}
	case up:
		return linkState{detail: "interface " + a.Name + " has no carrier"}
	}
	return linkState{detail: "interface " + a.Name + " is administratively down"}
}
