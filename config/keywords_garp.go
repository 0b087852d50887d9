package config

import "time"

// garp_group sets the pacing of gratuitous ARPs and unsolicited NAs on
// some interfaces (keepalived.conf(5), "VRRP gratuitous ARP and
// unsolicited neighbour advert delay group(s)"): garp_interval and
// gna_interval for one physical interface, or for a group of interfaces
// linked to one switch, which share the delays. The global
// vrrp_garp_interval / vrrp_gna_interval apply to every interface no
// group names.

// GarpGroup is one garp_group block.
type GarpGroup struct {
	Pos Pos
	// Interval is the minimum gap between two ARPs, NAInterval between
	// two NAs, over all of Interfaces together; 0 is no gap (a group that
	// sets only one of them does not pace the other: the global values
	// are for the interfaces no group names).
	Interval, NAInterval time.Duration
	// Interfaces are the physical interfaces the delays apply to.
	Interfaces []string

	delays int
	ifPos  []Pos
	// form is the first of interface / interfaces the block used.
	form string
}

var garpGroupTable *table[GarpGroup]

func init() {
	delay := func(name string, field func(*GarpGroup) *time.Duration) keyword[GarpGroup] {
		return keyword[GarpGroup]{Name: name, Status: Supported, Doc: "Minimum gap between two messages (" + map[string]string{"garp_interval": "gratuitous ARPs", "gna_interval": "unsolicited NAs"}[name] + ") over the group's interfaces together, in seconds, resolution microseconds (0: no gap).", Parse: func(b *builder, n *Node, g *GarpGroup) {
			if d, ok := b.durArg(n, 0, maxGarp); ok {
				*field(g) = d
				g.delays++
			}
		}}
	}
	addIf := func(b *builder, g *GarpGroup, form string, pos Pos, s string) {
		if g.form != "" && g.form != form {
			// keepalived.conf(5) says to use one of them; keepalived -t
			// accepts both.
			b.warnf(pos, "garp_group: both interface and interfaces: use one of them per block")
		}
		g.form = form
		if !b.ifExists(s) {
			b.errorf(pos, "garp_group: interface %s does not exist", s)
		}
		g.Interfaces, g.ifPos = append(g.Interfaces, s), append(g.ifPos, pos)
	}
	garpGroupTable = newTable("garp_group { }", "Pacing of gratuitous ARPs and unsolicited NAs on some interfaces. An interface no group names is paced by the global vrrp_garp_interval / vrrp_gna_interval; a VMAC (use_vmac) is paced with the physical interface under it, whose frames it sends. A group that sets only one of the two delays does not pace the other kind on its interfaces (the global delays are for the interfaces no group names).", []keyword[GarpGroup]{
		delay("garp_interval", func(g *GarpGroup) *time.Duration { return &g.Interval }),
		delay("gna_interval", func(g *GarpGroup) *time.Duration { return &g.NAInterval }),
		{Name: "interface", Status: Supported, Doc: "The physical interface the delays apply to.", Parse: func(b *builder, n *Node, g *GarpGroup) {
			if s, ok := b.strArg(n, "an interface name"); ok {
				addIf(b, g, "interface", n.Args[0].Pos, s)
			}
		}},
		{Name: "interfaces", Status: Supported, Doc: "Block of interfaces linked to one switch: the delays apply to all of them together.", Parse: func(b *builder, n *Node, g *GarpGroup) {
			names, pos := b.stringList(n)
			for k, s := range names {
				addIf(b, g, "interfaces", pos[k], s)
			}
		}},
	})
}

// parseGarpGroup reads a garp_group block. As keepalived -t, it rejects a
// group without a delay and an interface already paced by another group
// (or named twice).
func parseGarpGroup(b *builder, n *Node, c *Config) {
	if !b.needBlock(n) {
		return
	}
	g := &GarpGroup{Pos: n.Key.Pos}
	garpGroupTable.run(b, n.Block, g)
	if g.delays == 0 {
		b.errorf(n.Key.Pos, "garp_group: no garp_interval or gna_interval: the group does nothing")
		return
	}
	seen := map[string]bool{}
	for _, o := range c.GarpGroups {
		for _, s := range o.Interfaces {
			seen[s] = true
		}
	}
	kept := g.Interfaces[:0]
	for k, s := range g.Interfaces {
		if seen[s] {
			b.errorf(g.ifPos[k], "garp_group: interface %s is already in a garp_group", s)
			continue
		}
		seen[s] = true
		kept = append(kept, s)
	}
	g.Interfaces, g.ifPos = kept, nil
	c.GarpGroups = append(c.GarpGroups, g)
}

// GarpGroupOf is the garp_group naming the interface ifname, or nil.
func (c *Config) GarpGroupOf(ifname string) *GarpGroup {
	for _, g := range c.GarpGroups {
		for _, s := range g.Interfaces {
			if s == ifname {
				return g
			}
		}
	}
	return nil
}
