package ctnl

import (
	"net/netip"
	"testing"

	"vigil/internal/ctflow"
)

// flows are n established FNAT flows to 192.0.2.100:80.
func flows(n int) []ctflow.Entry {
	out := make([]ctflow.Entry, n)
	for i := range out {
		out[i] = ctflow.Entry{
			Key:      ctflow.Key{Proto: 6, Orig: ctflow.Tuple{Src: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), Dst: netip.MustParseAddr("192.0.2.100"), SrcPort: uint16(1024 + i), DstPort: 80}},
			Reply:    ctflow.Tuple{Src: netip.MustParseAddr("198.51.100.10"), Dst: netip.MustParseAddr("198.51.100.200"), SrcPort: 8080, DstPort: uint16(10000 + i)},
			TCPState: 3, Status: StatusSeenReply | StatusAssured, Timeout: 600, Mark: uint32(i),
		}
	}
	return out
}

// Messages built by the install encoder parse back (the reply tuple it
// writes is the untranslated one); the kernel's own messages are checked
// against github.com/ti-mo/conntrack in the lab tests.
func TestParseFlowRoundTrip(t *testing.T) {
	v6 := ctflow.Entry{
		Key:   ctflow.Key{Proto: 6, Zone: 3, Orig: ctflow.Tuple{Src: netip.MustParseAddr("2001:db8::7"), Dst: netip.MustParseAddr("2001:db8:1::100"), SrcPort: 40000, DstPort: 443}},
		Reply: ctflow.Tuple{Src: netip.MustParseAddr("2001:db8:2::10"), Dst: netip.MustParseAddr("2001:db8::7"), SrcPort: 8443, DstPort: 40000},
		Mark:  0x2a, TCPState: 3, Status: StatusSeenReply, Timeout: 120,
	}
	for _, e := range append(flows(3), v6) {
		var m Msg
		m.AppendCreate(&e, 1)
		var got ctflow.Entry
		if !ParseFlow(m.b[20:], &got) {
			t.Fatalf("%v: not parsed", e.Orig)
		}
		want := e
		want.Reply = ctflow.Tuple{Src: e.Orig.Dst, Dst: e.Orig.Src, SrcPort: e.Orig.DstPort, DstPort: e.Orig.SrcPort}
		want.Status = e.Status&(StatusSeenReply|StatusAssured) | StatusConfirmed
		want.FlagsOrig, want.FlagsReply = TCPFlagBeLiberal, TCPFlagBeLiberal
		if got != want {
			t.Errorf("parsed\n %+v\nwant\n %+v", got, want)
		}
	}
}

// FuzzParseFlow: never panics on any bytes.
func FuzzParseFlow(f *testing.F) {
	for _, e := range flows(2) {
		var m Msg
		m.AppendCreate(&e, 1)
		f.Add(m.b[20:])
	}
	f.Add([]byte{4, 0, 1, 0})
	f.Add([]byte{255, 255, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e ctflow.Entry
		if ParseFlow(b, &e) && !e.Valid() {
			t.Fatalf("accepted an invalid entry %+v", e)
		}
	})
}
