package wire

import (
	"testing"
	"vigil/internal/inet"
)

func BenchmarkParse(b *testing.B) {
	for _, g := range handGolden {
		msg := unhex(b, g.hex)
		fam := inet.Of(g.dst)
		b.Run(g.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(msg, fam); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	for _, g := range handGolden {
		a := g.advert
		b.Run(g.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Marshal(g.src, g.dst, g.mode); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyChecksum(b *testing.B) {
	g := handGolden[4]
	msg := unhex(b, g.hex)
	b.ReportAllocs()
	for b.Loop() {
		if !VerifyChecksum(msg, g.src, g.dst, g.mode) {
			b.Fatal("bad checksum")
		}
	}
}
