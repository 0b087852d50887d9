package config

// Blocks vigil ignores as a whole still have their contents checked,
// since keepalived rejects bad contents and the verdicts must agree.

type ignoredGarpGroup struct{ delays int }

var garpGroupTable *table[ignoredGarpGroup]

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
}
