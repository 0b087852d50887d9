package nft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"sigs.k8s.io/knftables"

	"vigil/internal/ctnl"
	"vigil/internal/nsthread"
	"vigil/internal/pace"
	"vigil/lb"
)

var errClosed = errors.New("nft: data plane is closed")

// Config says where a Dataplane works.
type Config struct {
	// NetNS is the name of a network namespace (as in /run/netns, `ip
	// netns`) to program; "" is the caller's own.
	NetNS string
	// Logger receives a debug line per transaction and a warning when
	// Apply has to rewrite the tables; nil discards.
	Logger *slog.Logger
}

// Dataplane owns vigil's nftables tables in one network namespace. Its
// methods are safe for concurrent use; they serialise.
type Dataplane struct {
	cfg Config
	log *slog.Logger
	ns  netns.NsHandle // valid when cfg.NetNS != ""
	nl  *netlink.Handle
	nft knftables.Interface

	// ct is the ctnetlink socket of the conntrack dumps of Conns and
	// Sweep, which run under dumpMu and take mu only to read and record:
	// a dump of a large table takes tens of milliseconds, and an Apply
	// (a new master's claim) does not wait for it. Lock order: dumpMu,
	// then mu. ctApply is an Apply's own (flushGone, under mu).
	dumpMu    sync.Mutex
	ct        *ctnl.Conn
	ctApply   *ctnl.Conn
	sweepPace pace.Spacer // Sweep's dumps; under dumpMu

	mu sync.Mutex
	// nsMu is held for reading by Stats's nft processes, which run
	// without mu, and for writing (after mu) by Close to release the
	// namespace: a handle closed under a running read could be reused.
	nsMu sync.RWMutex
	// cur is what the kernel holds, as last applied; nil when unknown
	// (before the first Apply, after a failed one), and the next Apply
	// then replaces the tables whole.
	cur      *ruleset
	drOwners map[string][]netip.AddrPort
	services []lb.Service
	// counters says what each element of the applied statistics sets counts.
	counters map[string]counterRef
	// txs counts transactions sent, for tests of idempotence.
	txs int
	// lastTx is the text of the last transaction sent.
	lastTx string
	// lingering are the real servers that left while flows to them were
	// established, which Sweep watches.
	lingering []goneBackend
	closed    bool
}

// New binds a Dataplane to cfg.NetNS. It checks that nft works there but
// changes nothing.
func New(cfg Config) (*Dataplane, error) {
	d := &Dataplane{cfg: cfg, log: cfg.Logger, ns: -1}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if cfg.NetNS != "" {
		if d.ns, err = netns.GetFromName(cfg.NetNS); err != nil {
			return nil, fmt.Errorf("nft: namespace %s: %w", cfg.NetNS, err)
		}
		d.nl, err = netlink.NewHandleAt(d.ns)
	} else {
		d.nl, err = netlink.NewHandle()
	}
	if err == nil {
		err = d.inNS(func() (err error) {
			if d.ct, err = ctnl.Open(); err == nil {
				d.ctApply, err = ctnl.Open()
			}
			return err
		})
	}
	if err != nil {
		d.closeNS()
		return nil, fmt.Errorf("nft: netlink: %w", err)
	}
	err = d.inNS(func() error {
		// No default family or table: one Interface, and so one
		// transaction, spans table inet vigil and table netdev vigil.
		var err error
		d.nft, err = knftables.New("", "")
		return err
	})
	if err != nil {
		d.closeNS()
		return nil, fmt.Errorf("nft: %w", err)
	}
	return d, nil
}

func (d *Dataplane) closeNS() {
	if d.nl != nil {
		d.nl.Close()
	}
	for _, c := range []*ctnl.Conn{d.ct, d.ctApply} {
		if c != nil {
			c.Close()
		}
	}
	if d.ns >= 0 {
		d.ns.Close()
		d.ns = -1
	}
}

// inNS runs fn on an OS thread inside the Dataplane's namespace, so that
// the nft processes knftables starts there are born in it.
func (d *Dataplane) inNS(fn func() error) error {
	if d.cfg.NetNS == "" {
		return fn()
	}
	return nsthread.Run(d.ns, d.cfg.NetNS, fn)
}

// Apply makes vigil's tables implement desired, in one atomic nft
// transaction, or sends nothing when they already do. If the kernel no
// longer holds what vigil last wrote (someone deleted or edited its
// tables), that transaction fails and Apply rewrites the tables whole in a
// second one, atomic too. A service that cannot
// be rendered (its DR device is missing) is reported in the error while
// the others are applied.
func (d *Dataplane) Apply(ctx context.Context, desired lb.Desired) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errClosed
	}
	e := env{devMAC: map[string]lb.MAC{}, drOwners: d.drOwners}
	for _, s := range desired.Services {
		if s.Method != lb.DR || s.Interface == "" {
			continue
		}
		if _, ok := e.devMAC[s.Interface]; ok {
			continue
		}
		l, err := d.nl.LinkByName(s.Interface)
		if err != nil {
			continue // render reports the missing device
		}
		var m lb.MAC
		copy(m[:], l.Attrs().HardwareAddr)
		e.devMAC[s.Interface] = m
	}
	r, rerr := render(desired, e)
	// Unanswered and reset flows to real servers that leave are deleted
	// once the new rules are in (deleting them before would let a retry
	// in between be scheduled under the old rules and pinned by
	// persistence).
	gone := removedBackends(d.services, desired.Services)
	incremental := d.cur != nil
	err := d.send(ctx, r.rs)
	if err != nil && incremental && ctx.Err() == nil {
		// The kernel is not what we last wrote (someone flushed or
		// edited vigil's tables): rebuild them whole, still in one
		// transaction.
		d.log.Warn("nft: incremental update failed; rewriting vigil's tables", "err", err)
		err = d.send(ctx, r.rs)
	}
	if err != nil {
		return errors.Join(rerr, fmt.Errorf("nft: apply: %w", err))
	}
	d.drOwners = r.drOwners
	d.services = desired.Services
	d.counters = r.counters
	d.flushGone(gone)
	d.lingering = linger(d.lingering, gone, desired.Services, time.Now())
	return rerr
}

// send moves the kernel from d.cur to rs in one transaction (rewriting
// vigil's tables whole when d.cur is unknown) and records the outcome.
func (d *Dataplane) send(ctx context.Context, rs *ruleset) error {
	tx := d.nft.NewTransaction()
	if d.cur == nil {
		full(tx, rs, []knftables.Family{knftables.InetFamily, knftables.NetDevFamily})
	} else {
		diff(tx, d.cur, rs)
	}
	if tx.NumOperations() == 0 {
		return nil
	}
	text := tx.String()
	err := d.inNS(func() error { return d.nft.Run(ctx, tx) })
	d.txs++
	d.lastTx = text
	if err != nil {
		d.cur = nil
		return err
	}
	d.log.Debug("nft transaction applied", "ops", tx.NumOperations())
	d.cur = rs
	return nil
}

// Flush removes vigil's tables (every family it uses) and leaves the rest
// of the ruleset alone. Established NAT flows keep their conntrack
// bindings.
func (d *Dataplane) Flush(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ns < 0 && d.cfg.NetNS != "" {
		return errClosed
	}
	tx := d.nft.NewTransaction()
	full(tx, newRuleset(), []knftables.Family{knftables.InetFamily, knftables.NetDevFamily})
	err := d.inNS(func() error { return d.nft.Run(ctx, tx) })
	d.txs++
	d.lastTx = tx.String()
	d.cur = nil
	d.drOwners = nil
	d.services = nil
	d.counters = nil
	if err != nil {
		return fmt.Errorf("nft: flush: %w", err)
	}
	return nil
}

// Close removes vigil's tables and releases the namespace. Calls after
// the first do nothing.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	closed := d.closed
	d.closed = true
	d.mu.Unlock()
	if closed {
		return nil
	}
	err := d.Flush(context.Background())
	d.dumpMu.Lock() // no dump in progress on the handle closed here
	d.mu.Lock()
	d.nsMu.Lock()
	d.closeNS()
	d.nsMu.Unlock()
	d.mu.Unlock()
	d.dumpMu.Unlock()
	return err
}
