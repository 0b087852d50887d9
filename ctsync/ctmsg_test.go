package ctsync

import (
	"net/netip"
	"testing"

	"vigil/ctsync/wire"
)

// Messages built by the install encoder parse back (the reply tuple it
// writes is the untranslated one); the kernel's own messages are checked
// against github.com/ti-mo/conntrack in the lab tests.
func TestParseFlowRoundTrip(t *testing.T) {
	v6 := wire.Entry{
		Key:   wire.Key{Proto: 6, Zone: 3, Orig: wire.Tuple{Src: netip.MustParseAddr("2001:db8::7"), Dst: netip.MustParseAddr("2001:db8:1::100"), SrcPort: 40000, DstPort: 443}},
		Reply: wire.Tuple{Src: netip.MustParseAddr("2001:db8:2::10"), Dst: netip.MustParseAddr("2001:db8::7"), SrcPort: 8443, DstPort: 40000},
		Mark:  0x2a, TCPState: 3, Status: ipsSeenReply, Timeout: 120,
	}
	for _, e := range append(synthFlows(3, synthVIP, 0), testEntry(7, 50), v6) {
		var m nlmsg
		m.appendCreate(&e, 1)
		var got wire.Entry
		if !parseFlow(m.b[20:], &got) {
			t.Fatalf("%v: not parsed", e.Orig)
		}
		want := e
		want.Reply = wire.Tuple{Src: e.Orig.Dst, Dst: e.Orig.Src, SrcPort: e.Orig.DstPort, DstPort: e.Orig.SrcPort}
		want.Status = e.Status&(ipsSeenReply|ipsAssured) | ipsConfirmed
		want.FlagsOrig, want.FlagsReply = tcpFlagBeLiberal, tcpFlagBeLiberal
		if got != want {
			t.Errorf("parsed\n %+v\nwant\n %+v", got, want)
		}
	}
}

// FuzzParseFlow: never panics on any bytes.
func FuzzParseFlow(f *testing.F) {
	for _, e := range synthFlows(2, synthVIP, 0) {
		var m nlmsg
		m.appendCreate(&e, 1)
		f.Add(m.b[20:])
	}
	f.Add([]byte{4, 0, 1, 0})
	f.Add([]byte{255, 255, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e wire.Entry
		if parseFlow(b, &e) && !e.Valid() {
			t.Fatalf("accepted an invalid entry %+v", e)
		}
	})
}
