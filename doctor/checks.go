package doctor

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"vigil/config"
	"vigil/control"
	"vigil/internal/inet"
	"vigil/vrrp"
	"vigil/vrrp/wire"
)

// Check is one diagnosis. Every check has the same shape: a pure function
// of the Input returning findings; facts it needs from the host come through
// Input.Facts.
type Check struct {
	Name  string
	Codes []string // the codes it may report
	Run   func(in *Input) []Finding
}

// Checks returns every check, in the order a report explains them.
func Checks() []Check {
	return []Check{
		{"daemon", []string{"VD001", "VD002"}, checkDaemon},
		{"firewall", []string{"VD101"}, checkFirewall},
		{"delivery", []string{"VD102", "VD103"}, checkDelivery},
		{"vrid clash", []string{"VD201", "VD202"}, checkClash},
		{"split brain", []string{"VD301", "VD302"}, checkSplitBrain},
		{"multicast", []string{"VD401"}, checkMulticast},
		{"drops", dropCodes(), checkDrops},
		{"stall", []string{"VD601", "VD602", "VD603", "VD604"}, checkStall},
		{"sysctl", []string{"VD701", "VD702", "VD704"}, checkSysctl},
		{"forwarding", []string{"VD703"}, checkForwarding},
		{"dr path", []string{"VD705", "VD706"}, checkDRPath},
		{"config", []string{"VD801", "VD802", "VD803", "VD804", "VD805"}, checkConfig},
		{"bfd", []string{"VD901", "VD902", "VD903", "VD904", "VD905", "VD906"}, checkBFD},
		{"bgp", []string{"VDA00", "VDA01", "VDA02", "VDA03", "VDA04", "VDA05", "VDA06", "VDA09"}, checkBGP},
		{"director tables", []string{"VDA07", "VDA08"}, checkTables},
		{"connection sync", []string{"VDB00", "VDB01", "VDB02", "VDB03", "VDB04", "VDB05", "VDB06", "VDB07", "VDB08"}, checkSync},
	}
}

// Diagnose runs every check on in and returns the findings, sorted.
func Diagnose(in *Input) []Finding {
	var out []Finding
	for _, c := range Checks() {
		out = append(out, c.Run(in)...)
	}
	Sort(out)
	return out
}

func ago(now, t time.Time) string {
	if t.IsZero() || now.IsZero() {
		return "unknown"
	}
	return now.Sub(t).Round(100 * time.Millisecond).String()
}

// ---- VD001, VD002: what the diagnosis is based on ----

func checkDaemon(in *Input) []Finding {
	switch {
	case in.StatusTimeout:
		return []Finding{{
			Code: "VD002", Severity: Crit,
			Summary:  "vigil holds its control socket but did not answer: its event loop is stalled or the process is stopped (SIGSTOP, a frozen cgroup, a paused VM), so it sends no adverts and the backups take over.",
			Evidence: []string{in.StatusErr},
			Fix:      "Check the process state (ps -o stat,wchan -p $(pidof vigil); T means stopped: kill -CONT it) and the host's load; a stopped master is the classic cause of a flapping split brain.",
		}}
	case in.Status == nil:
		f := Finding{Code: "VD001", Severity: Info,
			Summary: "No vigil daemon answered, so this diagnosis rests on the configuration, the host and a capture only: states and drop counters are unknown.",
			Fix:     "Start `vigil run`, or pass -control with the socket of the running daemon, for a full diagnosis.",
		}
		if in.StatusErr != "" {
			f.Evidence = []string{in.StatusErr}
		}
		return []Finding{f}
	}
	return nil
}

// steady is how many adverts from one source make it a router that keeps
// advertising rather than one caught in a single failover moment: two,
// unless the capture was too short to hold two of its intervals.
func steady(c *Capture, h Heard) uint64 {
	iv := time.Duration(h.Interval) * time.Second
	if h.Version == 3 {
		iv = time.Duration(h.Interval) * 10 * time.Millisecond
	}
	if c != nil && iv > 0 && c.Duration < 2*iv {
		return 1
	}
	return 2
}

// ---- VD101: a firewall rule drops VRRP ----

func checkFirewall(in *Input) []Finding {
	ts := in.targets()
	if len(ts) == 0 || in.Facts == nil {
		return nil
	}
	fw, err := in.Facts.Firewall()
	if err != nil {
		return []Finding{{Code: "VD101", Severity: Info, Summary: "The firewall could not be read, so it was not checked.", Evidence: []string{err.Error()}}}
	}
	if len(fw.NftJSON) == 0 && len(fw.IptablesSave) == 0 && len(fw.Ip6tablesSave) == 0 {
		return []Finding{{Code: "VD101", Severity: Ok, Summary: "no packet filter is loaded (nft and iptables show no rules)"}}
	}
	rs, perrs := parseFirewall(fw)
	var out []Finding
	for _, e := range perrs {
		out = append(out, Finding{Code: "VD101", Severity: Info, Summary: "Part of the firewall could not be read, so it was not checked.", Evidence: []string{e.Error()}})
	}
	for _, t := range ts {
		var found []Finding
		seen := map[string]bool{}
		for _, p := range vrrpPackets(in, t) {
			for _, b := range rs.blocks(p) {
				q := b.quote()
				if seen[q] {
					continue
				}
				seen[q] = true
				found = append(found, firewallFinding(t, p, b))
			}
		}
		if len(found) == 0 {
			found = append(found, Finding{Code: "VD101", Severity: Ok, Instance: t.name, Interface: t.iface,
				Summary: "no firewall rule drops VRRP (IP protocol 112) in or out"})
		}
		out = append(out, found...)
	}
	return out
}

// vrrpPackets are the adverts instance t receives and sends.
func vrrpPackets(in *Input, t *target) []vrrpPacket {
	var ps []vrrpPacket
	if t.multicast() {
		src := netip.Addr{}
		if t.st != nil && t.st.MasterAddr != "" {
			if a, err := netip.ParseAddr(t.st.MasterAddr); err == nil && !in.local(t, a) {
				src = a
			}
		}
		ps = append(ps,
			vrrpPacket{fam: t.fam, iface: t.iface, src: src, dst: t.group(), multicast: true},
			vrrpPacket{fam: t.fam, out: true, iface: t.iface, src: t.src, dst: t.group(), multicast: true})
		return ps
	}
	for _, peer := range t.peers {
		ps = append(ps,
			vrrpPacket{fam: t.fam, iface: t.iface, src: peer, dst: t.src},
			vrrpPacket{fam: t.fam, out: true, iface: t.iface, src: t.src, dst: peer})
	}
	return ps
}

func firewallFinding(t *target, p vrrpPacket, b block) Finding {
	f := Finding{Code: "VD101", Severity: Crit, Instance: t.name, Interface: t.iface, Evidence: []string{b.quote()}}
	dir, verb := "incoming", "this node cannot hear the master and promotes itself, so two nodes hold the VIPs (split brain)"
	if p.out {
		dir, verb = "outgoing", "the other nodes never hear this one and promote themselves too (split brain)"
	}
	if b.sure {
		f.Summary = fmt.Sprintf("The firewall on this host drops %s VRRP adverts (IP protocol 112) on %s: %s.", dir, t.iface, verb)
	} else {
		f.Severity = Warn
		f.Summary = fmt.Sprintf("A firewall rule on this host may drop %s VRRP adverts (IP protocol 112) on %s, depending on what else the packet matches; if it does, %s.", dir, t.iface, verb)
	}
	if b.parent != nil {
		f.Evidence = append(f.Evidence, fmt.Sprintf("reached from %s", b.parent.where()))
	}
	ifkey := "iifname"
	if p.out {
		ifkey = "oifname"
	}
	switch b.chain.tool {
	case "nft":
		f.Fix = fmt.Sprintf("Accept VRRP before that rule: nft insert rule %s %s %s %s %q meta l4proto vrrp accept",
			b.chain.family, b.chain.table, b.chain.name, ifkey, t.iface)
		if b.rule != nil && b.rule.handle > 0 && b.rule.vrrpSpecific(p) {
			f.Fix += fmt.Sprintf(" (or delete it: nft delete rule %s %s %s handle %d)", b.chain.family, b.chain.table, b.chain.name, b.rule.handle)
		}
		f.Fix += "; then make the change permanent in /etc/nftables.conf or your firewall manager."
	default:
		flag := "-i"
		if p.out {
			flag = "-o"
		}
		f.Fix = fmt.Sprintf("Accept VRRP before that rule: %s -t %s -I %s %s %s -p vrrp -j ACCEPT; then save it with your firewall manager.",
			b.chain.tool, b.chain.table, b.chain.name, flag, t.iface)
	}
	return f
}

// ---- VD102, VD103: adverts that the host itself swallows ----

func checkDelivery(in *Input) []Finding {
	var out []Finding
	for _, t := range in.targets() {
		wireH, _, c := in.heard(t)
		if c == nil || c.Err != "" {
			continue
		}
		if c.DeliveredErr == "" {
			for _, h := range wireH {
				if !t.multicast() && !slices.Contains(t.peers, h.Src) {
					continue // unicast between other hosts, flooded by the switch
				}
				if h.Adverts < steady(c, h) {
					continue
				}
				if deliveredFrom(c, t, h.Src) > 0 {
					continue
				}
				out = append(out, Finding{Code: "VD102", Severity: Crit, Instance: t.name, Interface: t.iface,
					Summary: fmt.Sprintf("Adverts from %s reach %s but this host drops them before VRRP sees them (a firewall rule or rp_filter): this node behaves as if that router were gone.", h.Src, t.iface),
					Evidence: []string{
						fmt.Sprintf("on the wire: %d adverts for VRID %d from %s (MAC %s, priority %d) in %v", h.Adverts, h.VRID, h.Src, h.MAC, h.Priority, c.Duration),
						fmt.Sprintf("delivered to a VRRP socket on this host: none from %s", h.Src),
					},
					Fix: fmt.Sprintf("Find the rule that drops IP protocol 112 from %s on %s (see VD101, `nft list ruleset`, `iptables-save`) and accept VRRP; check net.ipv4.conf.%s.rp_filter if %s is not routed back through %s.", h.Src, t.iface, t.iface, h.Src, t.iface),
				})
			}
		}
		// Our own adverts: the daemon says it sends them; does the wire?
		if t.st == nil || t.st.State != "MASTER" {
			continue
		}
		_, sent := t.counter(control.CounterAdvertsSent)
		if sent < 2 {
			continue
		}
		ours := uint64(0)
		for _, h := range c.Wire {
			if int(h.VRID) == t.vrid && in.local(t, h.Src) {
				ours += h.Adverts
			}
		}
		if ours == 0 {
			out = append(out, Finding{Code: "VD103", Severity: Crit, Instance: t.name, Interface: t.iface,
				Summary: fmt.Sprintf("vigil sends adverts as master but none leaves %s: an outgoing firewall rule drops them, so the backups promote themselves (split brain).", t.iface),
				Evidence: []string{
					fmt.Sprintf("adverts_sent grew by %d during the %v capture", sent, c.Duration),
					fmt.Sprintf("adverts for VRID %d from this host seen on %s: none", t.vrid, t.iface),
				},
				Fix: fmt.Sprintf("Accept VRRP in the output path: nft insert rule inet filter output oifname %q meta l4proto vrrp accept (or the iptables OUTPUT equivalent).", t.iface),
			})
		}
	}
	return out
}

// ---- VD201, VD202: another virtual router on our VRID ----

// differences lists how an advert h differs from instance t's own.
func differences(t *target, h Heard, decoded *Heard) []string {
	var d []string
	if t.version != 0 && int(h.Version) != t.version {
		d = append(d, fmt.Sprintf("VRRP version %d, ours is %d", h.Version, t.version))
	}
	if decoded != nil && decoded.Decoded {
		if !sameAddrs(decoded.Addrs, t.vips) && len(t.vips) > 0 {
			d = append(d, fmt.Sprintf("virtual addresses [%s], ours are [%s]", addrList(decoded.Addrs), addrList(t.vips)))
		}
		if decoded.Version == 2 && t.cfg != nil {
			ourType, ourPass := uint8(wire.AuthNone), ""
			if t.cfg.Auth != nil && t.cfg.Auth.Type == config.AuthPass {
				ourType, ourPass = wire.AuthPass, t.cfg.Auth.Pass
			}
			switch {
			case decoded.AuthType != ourType:
				d = append(d, fmt.Sprintf("authentication type %s, ours is %s", authName(decoded.AuthType), authName(ourType)))
			case ourType == wire.AuthPass && decoded.AuthData != wire.Password(ourPass):
				d = append(d, "a different auth_pass")
			}
		}
	} else if len(t.vips) > 0 && h.NAddrs != len(t.vips) {
		d = append(d, fmt.Sprintf("%d virtual addresses, ours are %d", h.NAddrs, len(t.vips)))
	}
	return d
}

func authName(t uint8) string {
	switch t {
	case wire.AuthNone:
		return "none"
	case wire.AuthPass:
		return "PASS"
	case 2:
		return "AH"
	}
	return strconv.Itoa(int(t))
}

func sameAddrs(a, b []netip.Addr) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.SortFunc(x, netip.Addr.Compare)
	slices.SortFunc(y, netip.Addr.Compare)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// deliveredFrom counts the adverts for t's VRID from src that reached a
// VRRP socket on this host.
func deliveredFrom(c *Capture, t *target, src netip.Addr) uint64 {
	n := uint64(0)
	for _, d := range c.Delivered {
		if d.Src == src && int(d.VRID) == t.vrid {
			n += d.Adverts
		}
	}
	return n
}

// sources are the senders of hs.
func sources(hs []Heard) []netip.Addr {
	out := make([]netip.Addr, len(hs))
	for i, h := range hs {
		out[i] = h.Src
	}
	return out
}

// decodedFrom returns what was delivered from src for t's VRID, if
// anything was decoded.
func decodedFrom(c *Capture, t *target, src netip.Addr) *Heard {
	if c == nil {
		return nil
	}
	for i := range c.Delivered {
		d := &c.Delivered[i]
		if d.Src == src && int(d.VRID) == t.vrid && d.Decoded {
			return d
		}
	}
	return nil
}

// clashes returns the sources heard for t's VRID that are another virtual
// router, with what differs.
func clashes(in *Input, t *target) ([]Heard, [][]string) {
	wireH, delivered, c := in.heard(t)
	all := slices.Clone(wireH)
	for _, d := range delivered {
		if !slices.ContainsFunc(all, func(h Heard) bool { return h.Src == d.Src }) {
			all = append(all, d)
		}
	}
	var hs []Heard
	var diffs [][]string
	for _, h := range all {
		if d := differences(t, h, decodedFrom(c, t, h.Src)); len(d) > 0 {
			hs, diffs = append(hs, h), append(diffs, d)
		}
	}
	return hs, diffs
}

func checkClash(in *Input) []Finding {
	var out []Finding
	ts := in.targets()
	for _, t := range ts {
		hs, diffs := clashes(in, t)
		for i, h := range hs {
			ev := []string{fmt.Sprintf("%d adverts for VRID %d from %s (MAC %s, priority %d) on %s", h.Adverts, t.vrid, h.Src, h.MAC, h.Priority, t.iface)}
			for _, d := range diffs[i] {
				ev = append(ev, "it advertises "+d)
			}
			for _, r := range []vrrp.DropReason{vrrp.DropAuth, vrrp.DropAuthType, vrrp.DropVIPs, vrrp.DropAddrCount, vrrp.DropVersion, vrrp.DropInterval} {
				k := control.DropCounter(r)
				if n, _ := t.counter(k); n > 0 {
					ev = append(ev, fmt.Sprintf("vigil counter %s = %d", k, n))
				}
			}
			out = append(out, Finding{Code: "VD201", Severity: Crit, Instance: t.name, Interface: t.iface,
				Summary:  fmt.Sprintf("VRID clash: another router, %s, uses virtual_router_id %d on %s for a different virtual router; both claim the same virtual MAC 00:00:5e:00:01:%02x and each side ignores the other's adverts.", h.Src, t.vrid, t.iface, t.vrid),
				Evidence: ev,
				Fix:      fmt.Sprintf("Give one of the two virtual routers another virtual_router_id, unique on this segment (find who runs %s: MAC %s); if %s is meant to be a peer, give it the same VIPs, version and authentication.", h.Src, h.MAC, h.Src),
			})
		}
		if len(hs) == 0 {
			if _, _, c := in.heard(t); c != nil && c.Err == "" {
				out = append(out, Finding{Code: "VD201", Severity: Ok, Instance: t.name, Interface: t.iface,
					Summary: fmt.Sprintf("no other virtual router uses VRID %d on %s", t.vrid, t.iface)})
			}
		}
	}
	// VD202: VRIDs on our links that we do not run.
	ours := map[string]map[int]bool{}
	for _, t := range ts {
		if ours[t.iface] == nil {
			ours[t.iface] = map[int]bool{}
		}
		ours[t.iface][t.vrid] = true
	}
	foreign := map[string]map[int][]string{}
	note := func(iface string, vrid int, what string) {
		if foreign[iface] == nil {
			foreign[iface] = map[int][]string{}
		}
		foreign[iface][vrid] = append(foreign[iface][vrid], what)
	}
	for iface, c := range in.Captures {
		if c == nil || c.Err != "" {
			continue
		}
		for _, h := range c.Wire {
			if !ours[iface][int(h.VRID)] {
				note(iface, int(h.VRID), fmt.Sprintf("%d adverts from %s (VRRPv%d, priority %d, MAC %s)", h.Adverts, h.Src, h.Version, h.Priority, h.MAC))
			}
		}
	}
	if in.Status != nil {
		for _, st := range in.Status.Instances {
			for vrid, n := range st.ForeignVRIDs {
				if n > 0 && !ours[st.Interface][vrid] {
					note(st.Interface, vrid, fmt.Sprintf("vigil counted %d adverts since it started", n))
				}
			}
		}
	}
	for iface, m := range foreign {
		for vrid, ev := range m {
			slices.Sort(ev)
			out = append(out, Finding{Code: "VD202", Severity: Info, Interface: iface,
				Summary:  fmt.Sprintf("Another virtual router uses VRID %d on %s; it does not disturb this node, but no vrrp_instance here may take that VRID.", vrid, iface),
				Evidence: slices.Compact(ev),
				Fix:      fmt.Sprintf("Nothing to do unless you planned VRID %d for a new instance on this segment: pick another.", vrid),
			})
		}
	}
	return out
}

// ---- VD301, VD302: split brain now ----

func checkSplitBrain(in *Input) []Finding {
	var out []Finding
	for _, t := range in.targets() {
		wireH, _, c := in.heard(t)
		clash, _ := clashes(in, t)
		isClash := func(a netip.Addr) bool { return slices.ContainsFunc(clash, func(h Heard) bool { return h.Src == a }) }
		var masters []Heard
		for _, h := range wireH {
			if h.Priority > 0 && h.Adverts >= steady(c, h) && !isClash(h.Src) {
				masters = append(masters, h)
			}
		}
		me := in.master(t)
		var ev []string
		if c != nil {
			for _, h := range masters {
				got := deliveredFrom(c, t, h.Src)
				line := fmt.Sprintf("%d adverts for VRID %d from %s (MAC %s, priority %d) in %v", h.Adverts, t.vrid, h.Src, h.MAC, h.Priority, c.Duration)
				if c.DeliveredErr == "" && got == 0 {
					line += "; none of them got past this host's firewall"
				} else if t.st != nil && int(h.Priority) < t.st.Priority {
					line += fmt.Sprintf("; it keeps advertising although this node's priority %d is higher, so it does not hear this node's adverts (look at its firewall and the path)", t.st.Priority)
				}
				ev = append(ev, line)
			}
		}
		switch {
		case me && len(masters) > 0:
			state := "holds the VIPs"
			if t.st != nil {
				state = fmt.Sprintf("is MASTER (since %s ago: %s)", ago(in.Now, t.st.Since), t.st.Reason)
			}
			ev = append([]string{"this node " + state}, ev...)
			out = append(out, Finding{Code: "VD301", Severity: Crit, Instance: t.name, Interface: t.iface,
				Summary:  fmt.Sprintf("Split brain: this node and %s are both master of VRID %d on %s, so both answer for the VIPs.", addrList(sources(masters)), t.vrid, t.iface),
				Evidence: ev,
				Fix: "Each node must hear the other's adverts: look for a firewall dropping IP protocol 112 or the VRRP group on either node (VD101/VD102 here; run `vigil doctor` on the other node too), " +
					"and for multicast that the network does not deliver (use unicast_peer then).",
			})
			continue
		case !me && len(masters) >= 2:
			out = append(out, Finding{Code: "VD301", Severity: Crit, Instance: t.name, Interface: t.iface,
				Summary:  fmt.Sprintf("Split brain between other nodes: %s all advertise as master of VRID %d on %s.", addrList(sources(masters)), t.vrid, t.iface),
				Evidence: ev,
				Fix:      "Run `vigil doctor` on those nodes: one of them does not hear the others (firewall on protocol 112, multicast loss).",
			})
			continue
		}
		if !me || t.fam != 4 || len(t.vips) == 0 || in.Facts == nil {
			if c != nil && c.Err == "" {
				out = append(out, Finding{Code: "VD301", Severity: Ok, Instance: t.name, Interface: t.iface,
					Summary: fmt.Sprintf("one master for VRID %d on %s", t.vrid, t.iface)})
			}
			continue
		}
		holders, err := in.Facts.Holders(t.iface, t.vips[0])
		if err != nil || len(holders) == 0 {
			out = append(out, Finding{Code: "VD302", Severity: Ok, Instance: t.name, Interface: t.iface,
				Summary: fmt.Sprintf("no other host answers ARP for %s", t.vips[0])})
			continue
		}
		ev = []string{fmt.Sprintf("ARP for %s is answered by %s as well as by this node", t.vips[0], strings.Join(holders, ", "))}
		for _, p := range t.peers {
			// The peer is up: its adverts are lost, not missing.
			if macs, err := in.Facts.Holders(t.iface, p); err == nil && len(macs) > 0 {
				ev = append(ev, fmt.Sprintf("unicast peer %s is alive (answers ARP from %s)", p, strings.Join(macs, ", ")))
			}
		}
		if len(wireH) == 0 {
			ev = append(ev, fmt.Sprintf("no advert for VRID %d from any other router reached %s during the capture", t.vrid, t.iface))
		}
		out = append(out, Finding{Code: "VD302", Severity: Crit, Instance: t.name, Interface: t.iface,
			Summary:  fmt.Sprintf("Split brain: another host (%s) also holds the VIP %s while this node is master; its adverts do not reach this node, so neither side steps down.", strings.Join(holders, ", "), t.vips[0]),
			Evidence: ev,
			Fix:      "The peers cannot hear each other: check protocol 112 filtering on both nodes and on the path (security groups, ACLs), and multicast delivery (VD401); unicast_peer avoids the multicast part.",
		})
	}
	return out
}

// ---- VD401: multicast that does not arrive ----

func checkMulticast(in *Input) []Finding {
	var out []Finding
	for _, t := range in.targets() {
		wireH, _, c := in.heard(t)
		if c == nil || c.Err != "" || len(wireH) > 0 || !in.master(t) || t.fam != 4 || len(t.vips) == 0 || in.Facts == nil {
			continue
		}
		holders, err := in.Facts.Holders(t.iface, t.vips[0])
		if err != nil || len(holders) == 0 {
			continue
		}
		ev := []string{fmt.Sprintf("another host (%s) holds %s, yet no advert for VRID %d from another router reached %s in %v", strings.Join(holders, ", "), t.vips[0], t.vrid, t.iface, c.Duration)}
		if n, _ := t.counter(control.CounterAdvertsReceived); t.st != nil {
			ev = append(ev, fmt.Sprintf(control.CounterAdvertsReceived+" = %d since vigil started", n))
		}
		f := Finding{Code: "VD401", Severity: Crit, Instance: t.name, Interface: t.iface, Evidence: ev}
		if t.multicast() {
			f.Summary = fmt.Sprintf("Multicast VRRP adverts (to %s) between the nodes do not arrive on %s: common on cloud networks, macvtap/bridged VMs and switches with IGMP snooping but no querier.", t.group(), t.iface)
			f.Fix = "Configure unicast_peer { <other node addresses> } (and unicast_src_ip) on every node, or allow the group 224.0.0.18 / ff02::12 on the network (IGMP querier, security groups, hypervisor bridge)."
		} else {
			f.Summary = fmt.Sprintf("Unicast VRRP adverts from the peers (%s) do not arrive on %s.", addrList(t.peers), t.iface)
			f.Fix = "Check that each node lists the others in unicast_peer with the addresses they really send from (unicast_src_ip), and that IP protocol 112 is allowed between them (security groups, ACLs)."
		}
		out = append(out, f)
	}
	return out
}

// ---- VD5xx: adverts the daemon dropped, by reason ----

type dropInfo struct {
	reason             vrrp.DropReason
	code, summary, fix string
}

// dropsWithoutFinding are the drop reasons that are no mismatch of this
// node's configuration: another virtual router's adverts (VD202 reports
// them from ForeignVRIDs and the capture), our own looped back, and adverts
// while INIT or FAULT. TestEveryDropReasonIsKnown holds these and
// dropTable to vrrp's list.
var dropsWithoutFinding = []vrrp.DropReason{vrrp.DropVRID, vrrp.DropOwn, vrrp.DropInactive}

func dropTable() []dropInfo {
	return []dropInfo{
		{vrrp.DropAuth, "VD501", "Adverts are dropped because their auth_pass differs from this node's: a peer has another password (or it is another virtual router on the same VRID).",
			"Use the same authentication { auth_type PASS; auth_pass ... } on every node of the virtual router (only the first 8 characters count)."},
		{vrrp.DropAuthType, "VD502", "Adverts are dropped because their authentication type differs: one node uses auth_type PASS and another none (or AH).",
			"Use the same authentication block on every node, or none on all."},
		{vrrp.DropTTL, "VD503", "Adverts arrive with a TTL below 255: they crossed a router, or a device on the path decrements TTL, and VRRP must stay on one link.",
			"Put the peers on one layer-2 segment; for unicast peers that are deliberately routed, relax the check (unicast_peer { ADDR min_ttl N max_ttl 255 })."},
		{vrrp.DropChecksum, "VD504", "Adverts fail the checksum: typically a VRRPv3 peer computing the IPv4 checksum without the pseudo-header (Cisco, Juniper, RFC 9568) or keepalived with v3_checksum_as_v2, or the reverse.",
			"Make every node compute it the same way: set or clear v3_checksum_as_v2 in global_defs to match the vendor router."},
		{vrrp.DropInterval, "VD505", "VRRPv2 adverts are dropped because their advert_int differs from this node's: version 2 requires the same interval on every node.",
			"Set the same advert_int on every node of the virtual router."},
		{vrrp.DropVersion, "VD506", "Adverts of another VRRP version are dropped: one node speaks VRRPv2 and another VRRPv3 on this VRID.",
			"Set the same vrrp_version (global_defs) or version (vrrp_instance) on every node."},
		{vrrp.DropVIPs, "VD507", "Adverts are dropped because they do not list this node's virtual addresses: the nodes' virtual_ipaddress blocks differ (or it is another virtual router on the VRID).",
			"Give every node the same virtual_ipaddress list, or skip_check_adv_addr if the difference is intended."},
		{vrrp.DropAddrCount, "VD507", "Adverts are dropped because they carry a different number of virtual addresses: the nodes' virtual_ipaddress blocks differ.",
			"Give every node the same virtual_ipaddress list."},
		{vrrp.DropUnknownPeer, "VD508", "Unicast adverts from an address not listed in unicast_peer are dropped (check_unicast_src): a peer sends from another address than the one configured.",
			"List the address the peer really sends from (its unicast_src_ip) in unicast_peer, or set unicast_src_ip on the peer."},
		{vrrp.DropCast, "VD509", "Adverts are dropped because one node sends multicast and this one expects unicast, or the reverse: the nodes disagree on unicast_peer.",
			"Configure unicast_peer on all nodes of the virtual router, or on none."},
		{vrrp.DropType, "VD510", "Malformed VRRP packets (unknown type) arrive and are dropped.", "Find the sender with tcpdump -ni IFACE ip proto 112."},
		{vrrp.DropLength, "VD510", "Malformed or truncated VRRP packets arrive and are dropped.", "Find the sender with tcpdump -ni IFACE ip proto 112."},
	}
}

func dropCodes() []string {
	var cs []string
	for _, d := range dropTable() {
		if !slices.Contains(cs, d.code) {
			cs = append(cs, d.code)
		}
	}
	return cs
}

func checkDrops(in *Input) []Finding {
	var out []Finding
	for _, t := range in.targets() {
		if t.st == nil {
			continue
		}
		dropped := false
		for _, d := range dropTable() {
			counter := control.DropCounter(d.reason)
			n, delta := t.counter(counter)
			if n == 0 {
				continue
			}
			dropped = true
			f := Finding{Code: d.code, Severity: Warn, Instance: t.name, Interface: t.iface, Summary: d.summary, Fix: d.fix}
			switch {
			case delta > 0:
				f.Evidence = []string{fmt.Sprintf("%s = %d, %d of them during the capture: it is still happening", counter, n, delta)}
			case delta == 0:
				f.Severity = Info
				f.Evidence = []string{fmt.Sprintf("%s = %d since vigil started, none during the capture: it happened earlier", counter, n)}
			default:
				f.Evidence = []string{fmt.Sprintf("%s = %d since vigil started", counter, n)}
			}
			out = append(out, f)
		}
		if !dropped {
			out = append(out, Finding{Code: "VD501", Severity: Ok, Instance: t.name, Interface: t.iface, Summary: "no advert was dropped for a mismatch"})
		}
	}
	return out
}

// ---- VD6xx: the node stalled ----

// pressure parses /proc/pressure/cpu's "some" line.
func pressure(s string) (avg10, avg60 float64, ok bool) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "some" {
			continue
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			switch k {
			case "avg10":
				avg10, ok = x, true
			case "avg60":
				avg60 = x
			}
		}
	}
	return avg10, avg60, ok
}

// startupRace reports whether t's last transition came so soon after the
// daemon started that it is the ordinary election among nodes started
// together, not a master falling silent.
func startupRace(in *Input, t *target) bool {
	if in.Status == nil || in.Status.Started.IsZero() {
		return false
	}
	return t.st.Since.Sub(in.Status.Started) < max(10*t.interval(), 5*time.Second)
}

// LoopLagCounter is the status counter doctor reads, when the daemon
// exposes it, for the worst lateness of its event loop in milliseconds.
const LoopLagCounter = control.CounterLoopLagMaxMs

// causeKinds says what each transition cause means to checkStall (VD602):
// the node lost MASTER to a peer that came back (preempted), it took over
// from a master that fell silent, or neither. TestEveryCauseIsKnown fails
// for a vrrp.Cause missing here.
var causeKinds = map[vrrp.Cause]causeKind{
	vrrp.CauseHigherPriority: preempted, vrrp.CauseHigherAddress: preempted,
	vrrp.CauseMasterDown: silentMaster,
	vrrp.CauseStartup:    otherCause, vrrp.CauseAddressOwner: otherCause,
	vrrp.CauseInterfaceDown: otherCause, vrrp.CauseInterfaceUp: otherCause,
	vrrp.CauseTracking: otherCause, vrrp.CauseShutdown: otherCause, vrrp.CauseSyncGroup: otherCause,
	vrrp.CauseBFDTakeover: bfdTakeover,
}

type causeKind int

const (
	otherCause causeKind = iota
	preempted
	silentMaster
	// bfdTakeover: it took over because a BFD session to the master went
	// down (bfd_takeover), before the master down timer.
	bfdTakeover
)

func checkStall(in *Input) []Finding {
	var out []Finding
	ts := in.targets()
	tookOver := false
	for _, t := range ts {
		if t.st == nil {
			continue
		}
		if lag, ok := t.st.Counters[LoopLagCounter]; ok {
			limit := t.interval()
			if d := time.Duration(lag) * time.Millisecond; d >= limit {
				out = append(out, Finding{Code: "VD604", Severity: Warn, Instance: t.name, Interface: t.iface,
					Summary:  fmt.Sprintf("vigil's event loop ran %v late at worst, more than the advert interval %v: while it was late it sent no adverts, and the backups may have taken over.", d, limit),
					Evidence: []string{fmt.Sprintf("%s = %d", LoopLagCounter, lag)},
					Fix:      "Find what starves or stops the process: CPU limits (cgroup cpu.max), a paused VM, swapping, SIGSTOP; give vigil a real-time or higher scheduling priority (systemd CPUSchedulingPolicy=rr).",
				})
			}
		}
		became, _ := t.counter(control.CounterBecameMaster)
		released, _ := t.counter(control.CounterReleasedMaster)
		reason, kind := t.st.Reason, causeKinds[vrrp.ParseCause(t.st.Cause)]
		switch {
		case t.st.State == "BACKUP" && became > 0 && released > 0 && !startupRace(in, t) &&
			kind == preempted:
			out = append(out, Finding{Code: "VD602", Severity: Info, Instance: t.name, Interface: t.iface,
				Summary:  fmt.Sprintf("This node took over as master and later handed back (%s): the master was silent for longer than the master down interval and then came back, which is what a stalled master (SIGSTOP, VM pause, CPU starvation) or a burst of lost adverts looks like.", reason),
				Evidence: []string{fmt.Sprintf("became_master = %d, released_master = %d, back to BACKUP %s ago", became, released, ago(in.Now, t.st.Since))},
				Fix:      "If the master did not restart on purpose, look at its logs and load around that time (journalctl -u vigil, /proc/pressure/cpu); run `vigil doctor` there.",
			})
		case t.st.State == "MASTER" && kind == bfdTakeover:
			tookOver = true
			out = append(out, Finding{Code: "VD602", Severity: Info, Instance: t.name, Interface: t.iface,
				Summary:  fmt.Sprintf("This node took over as master %s ago, before the master down interval, because a BFD session to the master went down (bfd_takeover): the master's host or its link failed, or BFD alone failed while the master's adverts did not reach this node either.", ago(in.Now, t.st.Since)),
				Evidence: []string{fmt.Sprintf("state MASTER since %s ago: %s", ago(in.Now, t.st.Since), reason)},
				Fix:      "Check the old master (the BFD session's neighbor in the reason) and the link to it: is vigil or keepalived running there, and is its BFD session Up again (`vigil status` there)?",
			})
		case t.st.State == "MASTER" && kind == silentMaster && t.st.MasterAddr != "" &&
			!in.local(t, parseAddr(t.st.MasterAddr)):
			// At startup no master was known; here one was, and it fell
			// silent.
			tookOver = true
			out = append(out, Finding{Code: "VD602", Severity: Info, Instance: t.name, Interface: t.iface,
				Summary:  fmt.Sprintf("This node took over as master %s ago because the master %s fell silent for longer than the master down interval: it stopped, stalled (SIGSTOP, VM pause, CPU starvation) or its adverts were lost.", ago(in.Now, t.st.Since), t.st.MasterAddr),
				Evidence: []string{fmt.Sprintf("state MASTER since %s ago: %s; last master seen %s (priority %d)", ago(in.Now, t.st.Since), reason, t.st.MasterAddr, t.st.MasterPriority)},
				Fix:      fmt.Sprintf("Check %s: is vigil or keepalived running there and does it answer (`vigil doctor` on it)?", t.st.MasterAddr),
			})
		}
	}
	if in.Facts == nil {
		return out
	}
	if s, err := in.Facts.Proc("pressure/cpu"); err == nil {
		if a10, a60, ok := pressure(s); ok && (a10 >= 40 || a60 >= 40) {
			f := Finding{Code: "VD603", Severity: Info,
				Summary:  "This host is short of CPU: runnable tasks wait for a processor much of the time, so VRRP timers can fire late; a master that cannot send its adverts in time loses its role.",
				Evidence: []string{fmt.Sprintf("/proc/pressure/cpu: some avg10=%.2f avg60=%.2f (percent of time tasks waited)", a10, a60)},
				Fix:      "Reserve CPU for vigil (systemd CPUWeight=, or CPUSchedulingPolicy=rr) or reduce the load; use a longer advert_int if the host cannot keep a short one.",
			}
			if tookOver {
				f.Severity = Warn
				f.Evidence = append(f.Evidence, "an instance here became master because the master down timer expired")
			}
			out = append(out, f)
		}
	}
	return out
}

// ---- VD7xx: sysctls that break VMAC and DR ----

func sysctl(in *Input, iface, key string) (int, bool) {
	v, err := in.Facts.Proc("sys/net/ipv4/conf/" + iface + "/" + key)
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return n, err == nil
}

// effective returns the value the kernel uses for a per-interface switch
// that it combines with conf/all by taking the larger.
func effective(in *Input, iface, key string) (int, string, bool) {
	a, ok1 := sysctl(in, "all", key)
	i, ok2 := sysctl(in, iface, key)
	if !ok1 && !ok2 {
		return 0, "", false
	}
	return max(a, i), fmt.Sprintf("net.ipv4.conf.all.%s = %d, net.ipv4.conf.%s.%s = %d", key, a, iface, key, i), true
}

func checkSysctl(in *Input) []Finding {
	if in.Facts == nil {
		return nil
	}
	var out []Finding
	for _, t := range in.targets() {
		if t.cfg == nil || !t.cfg.UseVMAC || t.fam != 4 {
			continue
		}
		vmac := t.cfg.VMACIfname()
		if rp, ev, ok := effective(in, vmac, "rp_filter"); ok && rp != 0 {
			out = append(out, Finding{Code: "VD701", Severity: Warn, Instance: t.name, Interface: vmac,
				Summary:  fmt.Sprintf("Reverse path filtering is on for the VMAC interface %s: the route back to every sender goes through the parent %s, so the kernel drops what arrives on the VMAC as spoofed.", vmac, t.cfg.Interface),
				Evidence: []string{ev},
				Fix:      fmt.Sprintf("sysctl -w net.ipv4.conf.%s.rp_filter=0 (and net.ipv4.conf.all.rp_filter=0, raising the other interfaces' own values if you rely on it); find what reset it (a sysctl.d file applied after vigil started).", vmac),
			})
		}
		if ai, ev, ok := effective(in, t.cfg.Interface, "arp_ignore"); ok && ai == 0 {
			out = append(out, Finding{Code: "VD701", Severity: Warn, Instance: t.name, Interface: t.cfg.Interface,
				Summary:  fmt.Sprintf("The VMAC's parent %s answers ARP for the VIPs with its own MAC (arp_ignore 0): neighbours learn the parent's MAC instead of the virtual one and lose the VIP at the next failover.", t.cfg.Interface),
				Evidence: []string{ev},
				Fix:      fmt.Sprintf("sysctl -w net.ipv4.conf.%s.arp_ignore=1 net.ipv4.conf.%s.arp_filter=1", t.cfg.Interface, t.cfg.Interface),
			})
		}
	}
	// DR: this host is a real server of a DR service.
	if in.Config == nil {
		return out
	}
	local, err := in.Facts.Addrs("")
	if err != nil {
		return out
	}
	// Every interface of the host, not only the VRRP ones: a DR real
	// server usually runs no vrrp_instance at all.
	ifaceOf := map[netip.Addr]string{}
	for _, name := range allInterfaces(in) {
		if ps, err := in.Facts.Addrs(name); err == nil {
			for _, p := range ps {
				ifaceOf[p.Addr()] = name
			}
		}
	}
	isLocal := func(a netip.Addr) bool {
		return slices.ContainsFunc(local, func(p netip.Prefix) bool { return p.Addr() == a })
	}
	directed := map[netip.Addr]bool{} // VIPs of this host's own vrrp_instances
	for _, t := range in.targets() {
		for _, v := range t.vips {
			directed[v] = true
		}
	}
	for _, vs := range in.Config.VirtualServers {
		if vs.Kind != config.VSAddr {
			continue
		}
		for _, rs := range vs.RealServers {
			m := rs.Method
			if m == config.MethodUnset {
				m = vs.Method
			}
			if m != config.DR || !isLocal(rs.Addr) {
				continue
			}
			iface := ifaceOf[rs.Addr]
			name := netip.AddrPortFrom(vs.Addr, vs.Port).String()
			if !isLocal(vs.Addr) && !directed[vs.Addr] {
				out = append(out, Finding{Code: "VD704", Severity: Warn, Interface: iface,
					Summary: fmt.Sprintf("This host is a DR real server of %s (as %s) but does not have the VIP %s on any interface: the director forwards frames addressed to the VIP unchanged, and this host drops them, so every connection scheduled here times out while its health checks (to %s itself) pass.", name, rs.Addr, vs.Addr, rs.Addr),
					Evidence: []string{fmt.Sprintf("real_server %s of virtual_server %s, lb_kind DR (%s)", rs.Addr, name, rs.Pos),
						fmt.Sprintf("%s is a local address; %s is not", rs.Addr, vs.Addr)},
					Fix: fmt.Sprintf("ip addr add %s dev lo (with arp_ignore=1 and arp_announce=2 so that this host does not answer ARP for it), and make it permanent.", netip.PrefixFrom(vs.Addr, vs.Addr.BitLen())),
				})
			}
			if iface == "" || !vs.Addr.Is4() {
				continue
			}
			ai, ev1, ok1 := effective(in, iface, "arp_ignore")
			aa, ev2, ok2 := effective(in, iface, "arp_announce")
			if ok1 && ok2 && (ai < 1 || aa < 2) && !in.holdsOn(vs.Addr, iface) {
				out = append(out, Finding{Code: "VD702", Severity: Warn, Interface: iface,
					Summary:  fmt.Sprintf("This host is a DR real server of %s (as %s) but answers ARP for the VIP %s on %s: clients and routers may send traffic for the VIP here directly, bypassing the director and splitting the service.", name, rs.Addr, vs.Addr, iface),
					Evidence: []string{ev1, ev2},
					Fix:      fmt.Sprintf("sysctl -w net.ipv4.conf.%s.arp_ignore=1 net.ipv4.conf.%s.arp_announce=2 (and the same for all), and keep the VIP on lo or a dummy interface.", iface, iface),
				})
			}
			if rp, ev, ok := effective(in, iface, "rp_filter"); ok && rp == 1 && in.holdsOn(vs.Addr, iface) {
				out = append(out, Finding{Code: "VD702", Severity: Warn, Interface: iface,
					Summary:  fmt.Sprintf("Strict reverse path filtering is on for %s, where this DR real server of %s receives frames for %s: replies from clients routed another way are dropped as spoofed.", iface, name, vs.Addr),
					Evidence: []string{ev},
					Fix:      fmt.Sprintf("Use loose mode: sysctl -w net.ipv4.conf.%s.rp_filter=2 (and all).", iface),
				})
			}
		}
	}
	return out
}

// holdsOn reports whether address a is on interface iface (on any
// interface when iface is "").
func (in *Input) holdsOn(a netip.Addr, iface string) bool {
	ps, err := in.Facts.Addrs(iface)
	return err == nil && slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Addr() == a })
}

// allInterfaces lists every interface of the host (from /proc/net/dev),
// and the VRRP ones when that cannot be read.
func allInterfaces(in *Input) []string {
	names := interfacesOf(in)
	dev, err := in.Facts.Proc("net/dev")
	if err != nil {
		return names
	}
	for _, line := range strings.Split(dev, "\n") {
		name, _, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if ok && name != "" && !strings.Contains(name, "|") && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// ---- VD703: forwarding off under a NAT or FNAT service ----

func checkForwarding(in *Input) []Finding {
	if in.Facts == nil {
		return nil
	}
	type svc struct {
		name, method, where string
		active              bool
	}
	byFam := map[int][]svc{}
	local := func(a netip.Addr) bool { return in.holdsOn(a, "") }
	if in.Config != nil {
		for _, vs := range in.Config.VirtualServers {
			if !vs.NeedsForwarding() {
				continue
			}
			// doctor run on one of the service's real servers, with the
			// director's configuration: that host forwards nothing.
			if slices.ContainsFunc(vs.RealServers, func(rs *config.RealServer) bool { return local(rs.Addr) }) && !(vs.Kind == config.VSAddr && local(vs.Addr)) {
				continue
			}
			fam := 4
			if vs.Family == inet.IPv6 {
				fam = 6
			}
			m := vs.Method.String()
			if !(vs.Method == config.NAT || vs.Method == config.FNAT) {
				m = "NAT"
			}
			byFam[fam] = append(byFam[fam], svc{name: vs.Key(), method: m, where: vs.Pos.String()})
		}
	}
	// The daemon says which services it runs and whether they are active
	// (this node is master): then the outage is now.
	active := map[int]bool{}
	if in.Status != nil {
		for _, s := range in.Status.Services {
			if (s.Kind == "NAT" || s.Kind == "FNAT") && s.Active {
				fam := 4
				if strings.HasPrefix(s.Name, "[") || strings.HasSuffix(s.Name, " ip6") {
					fam = 6
				}
				active[fam] = true
				if in.Config == nil {
					byFam[fam] = append(byFam[fam], svc{name: s.Name, method: s.Kind, active: true})
				}
			}
		}
	}
	var out []Finding
	for _, fam := range []int{4, 6} {
		svcs := byFam[fam]
		if len(svcs) == 0 {
			continue
		}
		key, path := "net.ipv4.ip_forward", "sys/net/ipv4/ip_forward"
		if fam == 6 {
			key, path = "net.ipv6.conf.all.forwarding", "sys/net/ipv6/conf/all/forwarding"
		}
		v, err := in.Facts.Proc(path)
		if err != nil || strings.TrimSpace(v) != "0" {
			continue
		}
		f := Finding{Code: "VD703", Severity: Warn,
			Summary:  fmt.Sprintf("This host does not forward IPv%d (%s = 0), but %d NAT/FNAT virtual server(s) need it: the director translates each connection's first packet and then drops it instead of routing it to the real server, so every connection times out while the health checks (sent by the director itself) pass.", fam, key, len(svcs)),
			Evidence: []string{fmt.Sprintf("%s = 0", key)},
			Fix:      fmt.Sprintf("sysctl -w %s=1, and make it permanent in /etc/sysctl.d/ (a file there that sets it to 0, or a firewall package, may have reset it).", key),
		}
		if active[fam] {
			f.Severity = Crit
		}
		for i, s := range svcs {
			if i == 5 {
				f.Evidence = append(f.Evidence, fmt.Sprintf("and %d more", len(svcs)-5))
				break
			}
			e := fmt.Sprintf("virtual_server %s, lb_kind %s", s.name, s.method)
			if s.where != "" {
				e += " (" + s.where + ")"
			}
			f.Evidence = append(f.Evidence, e)
		}
		out = append(out, f)
	}
	return out
}

func interfacesOf(in *Input) []string {
	var names []string
	for _, t := range in.targets() {
		if !slices.Contains(names, t.iface) {
			names = append(names, t.iface)
		}
		if t.cfg != nil && !slices.Contains(names, t.cfg.Interface) {
			names = append(names, t.cfg.Interface)
		}
	}
	for name := range in.Captures {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// ---- VD8xx: configuration traps ----

// configCodes is the finding each coded configuration diagnostic becomes;
// a diagnostic without a code (or mapped to VD805) is VD805, "the
// configuration has an error". TestEveryConfigCodeIsKnown fails for a
// config.Code missing here.
var configCodes = map[config.Code]string{
	config.CodeNopreemptIgnored:    "VD801",
	config.CodePreemptDelayIgnored: "VD805",
	config.CodeUnicastNoPeers:      "VD802",
	config.CodeDuplicateVRID:       "VD804",
}

func checkConfig(in *Input) []Finding {
	if in.Config == nil {
		if in.ConfigFile != "" {
			return []Finding{{Code: "VD805", Severity: Warn, Summary: fmt.Sprintf("The configuration %s could not be read, so the configuration checks did not run.", in.ConfigFile),
				Evidence: diagMsgs(in.Diags, config.Warning), Fix: fmt.Sprintf("Run `vigil check -f %s`.", in.ConfigFile)}}
		}
		return nil
	}
	var out []Finding
	for _, d := range in.Diags {
		if d.Severity < config.Error {
			continue
		}
		msg := d.String()
		switch configCodes[d.Code] {
		case "VD802":
			// VD802 below says it with the consequence.
		case "VD804":
			out = append(out, Finding{Code: "VD804", Severity: Crit,
				Summary:  "Two vrrp_instances use the same VRID on one interface and family: they are the same virtual router on the wire, and vigil runs only the first.",
				Evidence: []string{msg},
				Fix:      "Give each vrrp_instance on an interface its own virtual_router_id.",
			})
		case "VD801":
			out = append(out, Finding{Code: "VD801", Severity: Warn,
				Summary:  "nopreempt is ignored on this instance: it only works with state BACKUP and a priority below 255.",
				Evidence: []string{msg},
				Fix:      "Set state BACKUP (and a priority below 255) on every node that uses nopreempt.",
			})
		default:
			out = append(out, Finding{Code: "VD805", Severity: Warn,
				Summary:  "The configuration has an error; vigil ran (or would run) without the part in error.",
				Evidence: []string{msg},
				Fix:      fmt.Sprintf("Run `vigil check -f %s` and fix it.", cmp.Or(in.ConfigFile, "FILE")),
			})
		}
	}
	for _, i := range in.Config.Instances {
		if i.Nopreempt {
			f := Finding{Code: "VD801", Severity: Info, Instance: i.Name, Interface: i.Interface,
				Summary: "nopreempt keeps the current master only if every node of this VRID has state BACKUP: a node with state MASTER (or priority 255) still takes over when it comes back.",
				Fix:     "Make sure every node of this virtual router has state BACKUP and a priority below 255.",
			}
			// A peer heard advertising 255 will preempt whatever we say.
			if c := in.Captures[i.Interface]; c != nil {
				for _, h := range c.Wire {
					if int(h.VRID) == i.VRID && h.Priority == 255 && !in.local(nil, h.Src) {
						f.Severity = Warn
						f.Evidence = append(f.Evidence, fmt.Sprintf("%s advertises priority 255 (address owner): it always preempts", h.Src))
					}
				}
			}
			out = append(out, f)
		}
		if i.UnicastSrcIP.IsValid() && len(i.UnicastPeers) == 0 {
			out = append(out, Finding{Code: "VD802", Severity: Warn, Instance: i.Name, Interface: i.Interface,
				Summary:  fmt.Sprintf("unicast_src_ip is set but unicast_peer is empty: the instance silently falls back to multicast (to %s), which the other nodes, configured for unicast, drop.", cmpAddr(i.McastDstIP, wire.GroupV4)),
				Evidence: []string{fmt.Sprintf("unicast_src_ip %s, no unicast_peer (%s)", i.UnicastSrcIP, i.Pos)},
				Fix:      "List the other nodes in unicast_peer { ... }, or remove unicast_src_ip to use multicast on purpose (unicast_fault_no_peer makes an empty peer list a FAULT instead).",
			})
		}
		if i.StrictMode && i.Accept.Set && !i.Accept.Value && i.Priority != 255 {
			out = append(out, Finding{Code: "VD803", Severity: Info, Instance: i.Name, Interface: i.Interface,
				Summary:  "vrrp_strict implies no_accept here: when this node is master it drops every packet addressed to the VIPs (ping, services on the VIP), which looks like a dead VIP.",
				Evidence: []string{fmt.Sprintf("strict mode, priority %d, accept off (%s)", i.Priority, i.Pos)},
				Fix:      "Add accept to the vrrp_instance (VRRPv3) if services listen on the VIPs, or drop vrrp_strict.",
			})
		}
		if i.StrictMode && i.Unicast() {
			out = append(out, Finding{Code: "VD803", Severity: Info, Instance: i.Name, Interface: i.Interface,
				Summary: "vrrp_strict with unicast_peer is not what RFC 5798 describes; peers that enforce strict mode (other vendors) will not accept these adverts.",
				Fix:     "Use multicast with vrrp_strict, or drop vrrp_strict.",
			})
		}
	}
	return out
}

// parseAddr parses a status address; a bad one is the zero Addr.
func parseAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

func cmpAddr(a, def netip.Addr) netip.Addr {
	if a.IsValid() {
		return a
	}
	return def
}

// diagMsgs returns the diagnostics of at least severity min, with their
// position when they have one.
func diagMsgs(ds config.Diagnostics, min config.Severity) []string {
	var out []string
	for _, d := range ds {
		switch {
		case d.Severity < min:
		case d.Pos == (config.Pos{}):
			out = append(out, d.Msg)
		default:
			out = append(out, d.String())
		}
	}
	return out
}
