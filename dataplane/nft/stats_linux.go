package nft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"

	"sigs.k8s.io/knftables"
)

// listSetHook, when set (tests), is called before each `nft list set`
// Stats runs.
var listSetHook atomic.Pointer[func()]

// Stats reads the traffic counters of the services last applied: per
// service name, per real server (sorry server included). Services the
// data plane does not count (fwmark) are absent. It runs one `nft list
// set` per statistics set and never touches the rules.
//
// The nft processes run without the lock Apply takes: six of them (the
// counted sets of NAT/FNAT services of both families) take a loaded host
// a second or more, and a takeover's claim, which must put the rules in
// before the VIPs, waited for a status poll's counters that long. Apply
// replaces d.counters whole, never edits it, so the map read here stays
// what it was; nsMu keeps the namespace open until the reads are done.
func (d *Dataplane) Stats(ctx context.Context) (map[string]map[netip.AddrPort]Stats, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, errClosed
	}
	counters := d.counters
	d.nsMu.RLock()
	d.mu.Unlock()
	defer d.nsMu.RUnlock()
	type setID struct {
		family knftables.Family
		name   string
	}
	var sets []setID
	for k, r := range counters {
		id := setID{r.family, k[:strings.IndexByte(k, ' ')]}
		if !slices.Contains(sets, id) {
			sets = append(sets, id)
		}
	}
	slices.SortFunc(sets, func(a, b setID) int { return strings.Compare(string(a.family)+a.name, string(b.family)+b.name) })
	out := map[string]map[netip.AddrPort]Stats{}
	for _, id := range sets {
		if h := listSetHook.Load(); h != nil {
			(*h)()
		}
		raw, err := d.listJSON(ctx, "set", id.family, id.name)
		if err != nil {
			return nil, err
		}
		counts, err := parseSetCounters(raw)
		if err != nil {
			return nil, fmt.Errorf("nft: list set %s %s %s: %w", id.family, TableName, id.name, err)
		}
		for key, c := range counts {
			ref, ok := counters[refKey(id.name, key)]
			if !ok || ref.family != id.family {
				continue
			}
			m := out[ref.service]
			if m == nil {
				m = map[netip.AddrPort]Stats{}
				out[ref.service] = m
			}
			st := m[ref.backend]
			switch ref.kind {
			case countNew:
				st.Conns = c.packets
			case countIn:
				st.InPackets, st.InBytes = c.packets, c.bytes
			case countOut:
				st.OutPackets, st.OutBytes = c.packets, c.bytes
			}
			m[ref.backend] = st
		}
	}
	return out, nil
}

// listJSON runs `nft -j list KIND FAMILY vigil NAME` in the data plane's
// namespace (the caller holds nsMu): a set's counters (Stats), a map's
// remembered flows (drConns).
func (d *Dataplane) listJSON(ctx context.Context, kind string, family knftables.Family, name string) ([]byte, error) {
	var raw []byte
	err := d.inNS(func() error {
		var err error
		raw, err = exec.CommandContext(ctx, "nft", "-j", "list", kind, string(family), TableName, name).Output()
		return err
	})
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("nft: list %s %s %s %s: %w", kind, family, TableName, name, err)
	}
	return raw, nil
}

type count struct{ packets, bytes uint64 }

// parseSetCounters reads `nft -j list set` output: each element's key,
// in the text form render gives it ("192.0.2.10 . tcp . 198.51.100.11 .
// 80"), and its counter.
func parseSetCounters(raw []byte) (map[string]count, error) {
	var doc struct {
		Nftables []struct {
			Set *struct {
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	out := map[string]count{}
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, e := range o.Set.Elem {
			var el struct {
				Elem *struct {
					Val     json.RawMessage `json:"val"`
					Counter *struct {
						Packets uint64 `json:"packets"`
						Bytes   uint64 `json:"bytes"`
					} `json:"counter"`
				} `json:"elem"`
			}
			if err := json.Unmarshal(e, &el); err != nil || el.Elem == nil || el.Elem.Counter == nil {
				continue // an element without a counter: nothing to report
			}
			key, err := elemKey(el.Elem.Val)
			if err != nil {
				return nil, err
			}
			out[key] = count{el.Elem.Counter.Packets, el.Elem.Counter.Bytes}
		}
	}
	return out, nil
}

// elemKey turns an element's JSON value (a string, a number, or
// {"concat": [...]}) into the text form render writes.
func elemKey(v json.RawMessage) (string, error) {
	var c struct {
		Concat []json.RawMessage `json:"concat"`
	}
	if json.Unmarshal(v, &c) == nil && c.Concat != nil {
		parts := make([]string, len(c.Concat))
		for i, p := range c.Concat {
			k, err := elemKey(p)
			if err != nil {
				return "", err
			}
			parts[i] = k
		}
		return strings.Join(parts, " . "), nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String(), nil
	}
	return "", fmt.Errorf("set element %s: not a value vigil writes", v)
}
