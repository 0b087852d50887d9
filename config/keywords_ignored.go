package config

import (
	"net/netip"
	"time"
)

// Blocks vigil ignores as a whole still have their contents checked,
// since keepalived rejects bad contents and the verdicts must agree.

type ignoredGarpGroup struct{ delays int }

type ignoredBFD struct {
	neighbor netip.Addr
	bad      bool
}

var (
	garpGroupTable *table[ignoredGarpGroup]
	bfdTable       *table[ignoredBFD]
)

// ignoredBlock runs a block through its table without a warning per
// keyword (the block keyword itself was warned about), then check.
func ignoredBlock[T any](t *table[T], check func(*builder, *Node, *T)) func(*builder, *Node, *Config) {
	return func(b *builder, n *Node, _ *Config) {
		if !b.needBlock(n) {
			return
		}
		var v T
		b.quiet = true
		t.run(b, n.Block, &v)
		b.quiet = false
		check(b, n, &v)
	}
}

func init() {
	delay := func(name string) keyword[ignoredGarpGroup] {
		return keyword[ignoredGarpGroup]{Name: name, Status: Ignored, Doc: "Gap between two messages on the interfaces, in seconds.", Parse: func(b *builder, n *Node, g *ignoredGarpGroup) {
			if _, ok := b.durArg(n, 0, maxGarp); ok {
				g.delays++
			}
		}}
	}
	garpGroupTable = newTable("garp_group { }", "Ignored: vigil paces announcements with the global vrrp_garp_interval / vrrp_gna_interval. The contents are checked as keepalived checks them.", []keyword[ignoredGarpGroup]{
		delay("garp_interval"),
		delay("gna_interval"),
		{Name: "interface", Status: Ignored, Doc: "The interface the delays apply to.", Parse: func(b *builder, n *Node, g *ignoredGarpGroup) {
			if s, ok := b.strArg(n, "an interface name"); ok && !b.ifExists(s) {
				b.errorf(n.Args[0].Pos, "garp_group: interface %s does not exist", s)
			}
		}},
		{Name: "interfaces", Status: Ignored, Doc: "Block of interfaces sharing the delays.", Parse: func(b *builder, n *Node, g *ignoredGarpGroup) {
			names, pos := b.stringList(n)
			for k, s := range names {
				if !b.ifExists(s) {
					b.errorf(pos[k], "garp_group: interface %s does not exist", s)
				}
			}
		}},
	})

	neighbor := func(b *builder, n *Node, v *ignoredBFD) {
		w, ok := b.arg(n, "an IP address")
		if !ok {
			v.bad = true
			return
		}
		a, ok := parseAddr(w.Text)
		if !ok {
			b.errorf(w.Pos, "bfd_instance: malformed neighbor address %q: the instance is ignored", w.Text)
			v.bad = true
			return
		}
		v.neighbor = a
	}
	ms := func(name, doc string) keyword[ignoredBFD] {
		return ignoredWith[ignoredBFD](name, doc, checkDur(0, time.Hour))
	}
	bfdTable = newTable("bfd_instance NAME { }", "Ignored: vigil has no BFD. The contents are checked as keepalived checks them, and BFD_CHECK / track_bfd must name an instance.", []keyword[ignoredBFD]{
		{Name: "neighbor_ip", Status: Ignored, Doc: "Address of the BFD peer (required).", Parse: neighbor},
		{Name: "neighbour_ip", Status: Ignored, Doc: "Same as neighbor_ip.", Parse: neighbor},
		ignoredWith[ignoredBFD]("source_ip", "Local address of the session.", func(b *builder, n *Node) { b.addrArg(n) }),
		ms("min_rx", "Required minimum receive interval, ms."),
		ms("min_tx", "Desired minimum transmit interval, ms."),
		ms("idle_tx", "Desired idle transmit interval, ms."),
		ignoredWith[ignoredBFD]("multiplier", "Missed packets before the session is down.", checkInt(1, 255)),
		ignoredWith[ignoredBFD]("passive", "Passive mode.", checkFlag),
		ignoredWith[ignoredBFD]("ttl", "IPv4 TTL of packets sent.", checkInt(1, 255)),
		ignoredWith[ignoredBFD]("hoplimit", "IPv6 hop limit of packets sent.", checkInt(1, 255)),
		ignoredWith[ignoredBFD]("max_hops", "Largest TTL reduction accepted.", checkInt(0, 255)),
		ignoredWith[ignoredBFD]("weight", "Tracking weight -253..253 [reverse].", checkInt(-253, 253)),
		ignoredWith[ignoredBFD]("vrrp", "Send events to VRRP only.", checkFlag),
		ignoredWith[ignoredBFD]("checker", "Send events to the checker only.", checkFlag),
	})
}
