package nft

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"time"

	"sigs.k8s.io/knftables"

	"vigil/internal/inet"
	"vigil/lb"
)

// drConns lists the flows the IPv4 DR services of services remember
// (drFlows), as Conns, the way `ipvsadm -lnc` lists a DR director's
// connections: one `nft -j list map` per service. IPv6 services are left
// out: their key holds only part of the client's address (drFlowKey). A
// remembered flow whose real server has left the service is not followed
// by the rules and is not listed.
//
// The state is read from the memory's expiry, as the director sees one
// direction of the flow only: SYN_RECV while only the SYN's minute runs,
// FIN_WAIT once no more than FlowFinTimeout is left (after a FIN or RST,
// or a flow idle for most of FlowTimeout), ESTABLISHED otherwise.
func (d *Dataplane) drConns(ctx context.Context, services []lb.Service) ([]Conn, error) {
	var out []Conn
	for i := range services {
		s := &services[i]
		if s.Method != lb.DR || s.FlowTimeout <= 0 || s.Family == inet.IPv6 || len(s.Backends)+len(s.Draining) == 0 {
			continue
		}
		name := s.ID + "_flows"
		raw, err := d.listJSON(ctx, "map", knftables.NetDevFamily, name)
		if err != nil {
			return nil, err
		}
		flows, err := parseDRFlows(raw)
		if err != nil {
			return nil, fmt.Errorf("nft: list map netdev %s %s: %w", TableName, name, err)
		}
		real := map[lb.MAC]netip.Addr{}
		for _, b := range counted(s) { // the real servers the rules follow a memory to
			if _, dup := real[b.MAC]; !dup && !b.MAC.IsZero() {
				real[b.MAC] = b.Addr
			}
		}
		for _, f := range flows {
			addr, ok := real[f.mac]
			if !ok {
				continue
			}
			port := s.Port
			if port == 0 {
				port = f.dport
			}
			c := Conn{Service: s.Name, Proto: s.Proto.String(), Expires: f.expires,
				Client: f.client, VIP: netip.AddrPortFrom(s.VIP, port), Real: netip.AddrPortFrom(addr, port)}
			if s.Proto == lb.TCP {
				switch {
				case f.timeout == synTimeout && f.expires <= synTimeout:
					c.State = "SYN_RECV"
				case f.expires <= s.FlowFinTimeout:
					c.State = "FIN_WAIT"
				default:
					c.State = "ESTABLISHED"
				}
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// drFlow is one element of a DR service's map of remembered flows.
type drFlow struct {
	client  netip.AddrPort
	dport   uint16 // all-ports services only
	mac     lb.MAC
	timeout time.Duration // the element's own (a SYN's), 0 for the map's
	expires time.Duration
}

// parseDRFlows reads `nft -j list map` output of an IPv4 map of
// remembered flows: keys "ip saddr . th sport [. th dport]", values MACs.
func parseDRFlows(raw []byte) ([]drFlow, error) {
	var doc struct {
		Nftables []struct {
			Map *struct {
				Elem [][2]json.RawMessage `json:"elem"`
			} `json:"map"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	var out []drFlow
	for _, o := range doc.Nftables {
		if o.Map == nil {
			continue
		}
		for _, e := range o.Map.Elem {
			var key struct {
				Elem *struct {
					Val     json.RawMessage `json:"val"`
					Timeout int64           `json:"timeout"`
					Expires int64           `json:"expires"`
				} `json:"elem"`
				Concat []json.RawMessage `json:"concat"`
			}
			if err := json.Unmarshal(e[0], &key); err != nil {
				return nil, fmt.Errorf("element key %s: %w", e[0], err)
			}
			var f drFlow
			concat := key.Concat
			if key.Elem != nil {
				var v struct {
					Concat []json.RawMessage `json:"concat"`
				}
				if err := json.Unmarshal(key.Elem.Val, &v); err != nil {
					return nil, fmt.Errorf("element key %s: %w", e[0], err)
				}
				concat = v.Concat
				f.timeout, f.expires = time.Duration(key.Elem.Timeout)*time.Second, time.Duration(key.Elem.Expires)*time.Second
			}
			var addr string
			var ports []uint16
			if len(concat) < 2 || json.Unmarshal(concat[0], &addr) != nil {
				return nil, fmt.Errorf("element key %s: want address . port", e[0])
			}
			for _, p := range concat[1:] {
				var n uint16
				if err := json.Unmarshal(p, &n); err != nil {
					return nil, fmt.Errorf("element key %s: port: %w", e[0], err)
				}
				ports = append(ports, n)
			}
			a, err := netip.ParseAddr(addr)
			if err != nil {
				return nil, fmt.Errorf("element key %s: %w", e[0], err)
			}
			f.client = netip.AddrPortFrom(a, ports[0])
			if len(ports) > 1 {
				f.dport = ports[1]
			}
			var mac string
			if err := json.Unmarshal(e[1], &mac); err != nil {
				return nil, fmt.Errorf("element value %s: %w", e[1], err)
			}
			hw, err := net.ParseMAC(mac)
			if err != nil || len(hw) != len(f.mac) {
				return nil, fmt.Errorf("element value %s: want a MAC address", e[1])
			}
			copy(f.mac[:], hw)
			out = append(out, f)
		}
	}
	return out, nil
}
