package config

import (
	"net/netip"
	"time"
)

// bfd_instance (keepalived.conf(5), BFD CONFIGURATION) and the keywords
// that follow its sessions: track_bfd in vrrp_instance and vrrp_sync_group,
// BFD_CHECK in real_server, and vigil's bfd_takeover.

var bfdTable *table[BFDInstance]

// msKW reads keepalived's BFD intervals: milliseconds, with a fraction down
// to microseconds.
func msKW(name, doc string, field func(*BFDInstance) *time.Duration) keyword[BFDInstance] {
	return keyword[BFDInstance]{Name: name, Status: Supported, Doc: doc, Parse: func(b *builder, n *Node, v *BFDInstance) {
		b.noBlock(n)
		// durArg reads seconds; the same digits read as milliseconds are a
		// thousandth of that.
		if d, ok := b.durArg(n, 0, time.Hour); ok {
			*field(v) = (d / 1000).Truncate(time.Microsecond)
		}
	}}
}

func init() {
	neighbor := func(b *builder, n *Node, v *BFDInstance) {
		w, ok := b.arg(n, "an IP address")
		if !ok {
			v.Neighbor = netip.Addr{}
			v.bad = true
			return
		}
		a, ok := parseAddr(w.Text)
		if !ok {
			b.errorf(w.Pos, "bfd_instance: malformed neighbor address %q: the instance is ignored", w.Text)
			v.bad = true
			return
		}
		v.Neighbor = a
	}
	bfdTable = newTable("bfd_instance NAME { }", "A BFD session (RFC 5880 asynchronous mode, RFC 5881 single hop over UDP 3784). vigil runs every session in its BFD process (a child of the daemon, `vigil _bfd`, as keepalived's BFD child); track_bfd, BFD_CHECK and bfd_takeover follow it. No authentication, demand mode or echo function (keepalived has none either).", []keyword[BFDInstance]{
		{Name: "neighbor_ip", Status: Supported, Doc: "Address of the BFD peer (required).", Parse: neighbor},
		{Name: "neighbour_ip", Status: Supported, Doc: "Same as neighbor_ip.", Parse: neighbor},
		addrKW("source_ip", "Local address of the session (default: the kernel's choice).", func(v *BFDInstance) *netip.Addr { return &v.Source }, 0),
		msKW("min_rx", "Required minimum receive interval, ms with µs resolution (default 10).", func(v *BFDInstance) *time.Duration { return &v.MinRx }),
		msKW("min_tx", "Desired minimum transmit interval while Up, ms (default 10).", func(v *BFDInstance) *time.Duration { return &v.MinTx }),
		msKW("idle_tx", "Desired transmit interval while not Up, ms (default 1000).", func(v *BFDInstance) *time.Duration { return &v.IdleTx }),
		intKW("multiplier", "Missed packets after which the session is Down, 1..255 (default 5).", 1, 255, func(v *BFDInstance) *int { return &v.Multiplier }, 0),
		flagKW("passive", "Send nothing until the peer has been heard.", func(v *BFDInstance) *bool { return &v.Passive }, 0),
		intKW("ttl", "IPv4 TTL of packets sent, 1..255 (default 255).", 1, 255, func(v *BFDInstance) *int { return &v.TTL }, 0),
		intKW("hoplimit", "IPv6 hop limit of packets sent, 1..255 (default 255, as RFC 5881 requires; keepalived's man page says 64).", 1, 255, func(v *BFDInstance) *int { return &v.HopLimit }, 0),
		intKW("max_hops", "Largest TTL reduction accepted, 0..255 (default 0: TTL 255 required; 255 turns the check off).", 0, 255, func(v *BFDInstance) *int { return &v.MaxHops }, 0),
		weightKW("weight", "Default track_bfd weight, -253..253 [reverse]; 0 means FAULT while the session is down.", -253, 253,
			func(v *BFDInstance) *int { return &v.Weight }, func(v *BFDInstance) *bool { return &v.Reverse }),
		flagKW("vrrp", "Send the session's events to VRRP (track_bfd, bfd_takeover) only.", func(v *BFDInstance) *bool { return &v.VRRP }, 0),
		flagKW("checker", "Send the session's events to BFD_CHECK only.", func(v *BFDInstance) *bool { return &v.Checker }, 0),
	})
}

func parseBFDInstance(b *builder, n *Node, c *Config) {
	name, ok := b.named(n)
	if !ok {
		return
	}
	if !b.needBlock(n) {
		return
	}
	bi := &BFDInstance{Pos: n.Key.Pos, Name: name, MinRx: 10 * time.Millisecond, MinTx: 10 * time.Millisecond, IdleTx: time.Second,
		Multiplier: 5, TTL: 255, HopLimit: 255}
	bfdTable.run(b, n.Block, bi)
	switch {
	case bi.bad:
		return
	case !bi.Neighbor.IsValid():
		b.errorf(n.Key.Pos, "bfd_instance %s: neighbor_ip is missing", name)
		return
	case bi.Source.IsValid() && bi.Source.Is4() != bi.Neighbor.Is4():
		b.errorf(n.Key.Pos, "bfd_instance %s: source_ip %v and neighbor_ip %v are of different families", name, bi.Source, bi.Neighbor)
		return
	}
	if c.BFDInstance(name) != nil {
		b.errorf(n.Key.Pos, "bfd_instance %s is defined twice", name)
		return
	}
	for _, o := range c.BFDInstances {
		if o.Neighbor == bi.Neighbor {
			b.errorf(n.Key.Pos, "bfd_instance %s: neighbor %v is already bfd_instance %s's", name, bi.Neighbor, o.Name)
			return
		}
	}
	if b.bfdNames == nil {
		b.bfdNames = map[string]bool{}
	}
	b.bfdNames[name] = true
	c.BFDInstances = append(c.BFDInstances, bi)
}

// trackBFD reads track_bfd, whose names must be bfd_instances defined
// earlier in the file.
func trackBFD[T any](field func(*T) *[]*TrackRef) keyword[T] {
	return keyword[T]{Name: "track_bfd", Status: Supported, Doc: "The bfd_instances to follow: NAME [weight -253..253] [reverse] (default: the bfd_instance's weight); unweighted, FAULT while the session is not Up.", Parse: func(b *builder, n *Node, v *T) {
		for _, r := range b.trackList(n, -253, 253) {
			if !b.bfdNames[r.Name] {
				b.errorf(r.Pos, "track_bfd %s: bfd_instance %s is not defined", r.Name, r.Name)
				continue
			}
			*field(v) = append(*field(v), r)
		}
	}}
}

// bfdTakeoverKW is vigil's bfd_takeover NAME [NAME...].
func bfdTakeoverKW() keyword[Instance] {
	return keyword[Instance]{Name: "bfd_takeover", Status: Supported, Doc: "A vigil extension: bfd_instance names; when one goes Down and its neighbor_ip is the current master, this backup takes over after Skew_Time instead of waiting for Master_Down_Interval (status cause `bfd_takeover`). No FAULT from it (use track_bfd for that); an advert from the master cancels it, so a failure of BFD alone moves nothing for long. IPv4: the neighbor is the master when neighbor_ip is the address its adverts come from (use unicast_src_ip / mcast_src_ip on the master to make it so). IPv6: adverts come from the master's link-local address while neighbor_ip is usually global, so vigil matches them by link-layer address: every 2 s (and when the session comes Up) it reads the neighbour table for the current master's link-local address on the instance's interface and for neighbor_ip (resolving either if missing, by a datagram to its discard port), and the session is the master's when both have the same MAC, as known before the failure. A master that sends its adverts from a use_vmac interface (another MAC than the one its global address answers with) does not match: the backup then waits for Master_Down_Interval; a neighbor_ip equal to the advert's source always matches.", Parse: func(b *builder, n *Node, in *Instance) {
		b.noBlock(n)
		if len(n.Args) == 0 {
			b.arg(n, "bfd_instance names")
			return
		}
		for _, w := range n.Args {
			if !b.bfdNames[w.Text] {
				b.errorf(w.Pos, "bfd_takeover: bfd_instance %s is not defined", w.Text)
				continue
			}
			in.BFDTakeover = append(in.BFDTakeover, w.Text)
			in.BFDTakeoverPos = append(in.BFDTakeoverPos, w.Pos)
		}
	}}
}

// bfdCheck reads BFD_CHECK { name NAME } in a real_server.
func bfdCheck(b *builder, n *Node, r *RealServer) {
	if !b.needBlock(n) {
		return
	}
	for _, it := range n.Block {
		if it.Key.Text != "name" {
			b.errorf(it.Key.Pos, "unknown keyword %q in BFD_CHECK", it.Key.Text)
			continue
		}
		if len(it.Args) == 0 {
			b.errorf(it.Key.Pos, "BFD_CHECK name: missing value: expected a bfd_instance name")
		} else if !b.bfdNames[it.Args[0].Text] {
			b.errorf(it.Args[0].Pos, "BFD_CHECK: bfd_instance %s is not defined", it.Args[0].Text)
		} else {
			r.BFDChecks = append(r.BFDChecks, it.Args[0].Text)
		}
	}
}
