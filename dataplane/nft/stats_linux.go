package nft

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"

	"sigs.k8s.io/knftables"
)

// Stats reads the traffic counters of the services last applied: per
// service name, per real server (sorry server included). Services the
// data plane does not count (fwmark) are absent. It runs one `nft list
// counters` per table and never touches the rules.
func (d *Dataplane) Stats(ctx context.Context) (map[string]map[netip.AddrPort]Stats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errClosed
	}
	out := map[string]map[netip.AddrPort]Stats{}
	families := map[knftables.Family]bool{}
	for _, r := range d.counters {
		families[r.family] = true
	}
	for _, f := range []knftables.Family{knftables.InetFamily, knftables.NetDevFamily} {
		if !families[f] {
			continue
		}
		var raw []byte
		err := d.inNS(func() error {
			var err error
			raw, err = exec.CommandContext(ctx, "nft", "-j", "list", "counters", "table", string(f), TableName).Output()
			return err
		})
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				err = fmt.Errorf("%v: %s", err, ee.Stderr)
			}
			return nil, fmt.Errorf("nft: list counters of table %s %s: %w", f, TableName, err)
		}
		counts, err := parseCounters(raw)
		if err != nil {
			return nil, fmt.Errorf("nft: list counters of table %s %s: %w", f, TableName, err)
		}
		for name, c := range counts {
			ref, ok := d.counters[name]
			if !ok || ref.family != f {
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

type count struct{ packets, bytes uint64 }

// parseCounters reads `nft -j list counters` output.
func parseCounters(raw []byte) (map[string]count, error) {
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
				Bytes   uint64 `json:"bytes"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	out := map[string]count{}
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			out[o.Counter.Name] = count{o.Counter.Packets, o.Counter.Bytes}
		}
	}
	return out, nil
}
