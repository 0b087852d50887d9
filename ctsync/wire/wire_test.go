package wire

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

var (
	entry4 = Entry{
		Key:      Key{Proto: 6, Zone: 0, Orig: Tuple{Src: netip.MustParseAddr("198.51.100.10"), Dst: netip.MustParseAddr("198.51.100.100"), SrcPort: 40000, DstPort: 80}},
		Reply:    Tuple{Src: netip.MustParseAddr("203.0.113.10"), Dst: netip.MustParseAddr("203.0.113.200"), SrcPort: 8080, DstPort: 40000},
		TCPState: 3, WScaleOrig: 7, WScaleReply: 7, FlagsOrig: 0x23, FlagsReply: 0x33,
		Status: 0x1be, Timeout: 431999, Mark: 0x10,
	}
	entry6 = Entry{
		Key:    Key{Proto: 17, Zone: 2, Orig: Tuple{Src: netip.MustParseAddr("2001:db8:1::10"), Dst: netip.MustParseAddr("2001:db8:1::100"), SrcPort: 5353, DstPort: 53}},
		Reply:  Tuple{Src: netip.MustParseAddr("2001:db8:2::10"), Dst: netip.MustParseAddr("2001:db8:1::10"), SrcPort: 53, DstPort: 5353},
		Status: 0x1a, Timeout: 30,
	}
)

// The golden datagram, derived by hand from the layout in the package
// doc and docs/architecture.md.
const golden = `
5643 01 01 07 02 0002 0000000000000102 00000009 000000000000abcd
04 06 03 07 07 23 33 00 000001be 0006977f 00000010 0000 9c40 0050 1f90 9c40
c633640a c6336464 cb00710a cb0071c8
06 11 00 00 00 00 00 00 0000001a 0000001e 00000000 0002 14e9 0035 0035 14e9
20010db8000100000000000000000010 20010db8000100000000000000000100
20010db8000200000000000000000010 20010db8000100000000000000000010
`

func TestGolden(t *testing.T) {
	h := Header{Type: TypeUpdate, SyncID: 7, Flags: FlagMaster, Count: 2, Epoch: 0x102, Seq: 9, SentNS: 0xabcd}
	b := AppendHeader(nil, h)
	b = AppendEntry(b, &entry4)
	b = AppendEntry(b, &entry6)
	if want := unhex(golden); !bytes.Equal(b, want) {
		t.Fatalf("encoding\n got %x\nwant %x", b, want)
	}
	var d Datagram
	if err := Decode(&d, b, nil); err != nil {
		t.Fatal(err)
	}
	want := Datagram{Header: h, Entries: []Entry{entry4, entry6}}
	if diff := cmp.Diff(want, d, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("decode (-want +got):\n%s", diff)
	}
}

func TestGoldenDeleteAndAuth(t *testing.T) {
	b := AppendHeader(nil, Header{Type: TypeDelete, SyncID: 1, Count: 1, Epoch: 1, Seq: 1, SentNS: 1})
	b = AppendDelete(b, &entry4.Key)
	b = Seal(b, []byte("k"))
	want := unhex(`5643 01 02 01 01 0001 0000000000000001 00000001 0000000000000001
		04 06 0000 9c40 0050 c633640a c6336464`)
	if !bytes.Equal(b[:len(b)-TagLen], want) {
		t.Fatalf("encoding\n got %x\nwant %x", b[:len(b)-TagLen], want)
	}
	var d Datagram
	if err := Decode(&d, b, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if len(d.Deletes) != 1 || d.Deletes[0] != entry4.Key {
		t.Errorf("deletes %v", d.Deletes)
	}
	for _, tc := range []struct {
		name string
		key  []byte
		mut  func([]byte)
		want Reason
	}{
		{"wrong key", []byte("x"), nil, ReasonAuth},
		{"no key", nil, nil, ReasonNoAuth},
		{"flipped payload bit", []byte("k"), func(b []byte) { b[HeaderLen] ^= 1 }, ReasonAuth},
		{"flipped tag bit", []byte("k"), func(b []byte) { b[len(b)-1] ^= 1 }, ReasonAuth},
		{"changed seq", []byte("k"), func(b []byte) { b[19]++ }, ReasonAuth},
	} {
		c := bytes.Clone(b)
		if tc.mut != nil {
			tc.mut(c)
		}
		if got := ReasonOf(Decode(&d, c, tc.key)); got != tc.want {
			t.Errorf("%s: reason %q, want %q", tc.name, got, tc.want)
		}
	}
	// A key configured, a datagram without a tag.
	plain := AppendHeader(nil, Header{Type: TypeHello})
	if got := ReasonOf(Decode(&d, plain, []byte("k"))); got != ReasonAuth {
		t.Errorf("untagged datagram with a key: reason %q", got)
	}
}

func TestMalformed(t *testing.T) {
	good := AppendEntry(AppendHeader(nil, Header{Type: TypeUpdate, Count: 1}), &entry4)
	set := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	del := AppendDelete(AppendHeader(nil, Header{Type: TypeDelete, Count: 1}), &entry6.Key)
	for _, tc := range []struct {
		name string
		b    []byte
		want Reason
	}{
		{"empty", nil, ReasonShort},
		{"header cut", good[:HeaderLen-1], ReasonShort},
		{"magic", set(0, 'X'), ReasonMagic},
		{"version", set(2, 2), ReasonVersion},
		{"type 0", set(3, 0), ReasonType},
		{"type 99", set(3, 99), ReasonType},
		{"flags", set(5, 0x80), ReasonFlags},
		{"entry cut", good[:len(good)-1], ReasonShort},
		{"entry fixed part cut", good[:HeaderLen+10], ReasonShort},
		{"count too big", set(7, 2), ReasonShort},
		{"trailing", append(bytes.Clone(good), 0), ReasonTrailing},
		{"family 5", set(HeaderLen, 5), ReasonFamily},
		{"entry reserved byte", set(HeaderLen+7, 1), ReasonFlags},
		{"family 6 with v4 length", set(HeaderLen, 6), ReasonShort},
		{"delete cut", del[:len(del)-1], ReasonShort},
		{"delete fixed part cut", del[:HeaderLen+3], ReasonShort},
		{"delete family 5", append(bytes.Clone(del[:HeaderLen]), append([]byte{5}, del[HeaderLen+1:]...)...), ReasonFamily},
		{"delete trailing", append(bytes.Clone(del), 0), ReasonTrailing},
		{"hello with count", AppendHeader(nil, Header{Type: TypeHello, Count: 1}), ReasonCount},
		{"full-end without total", AppendHeader(nil, Header{Type: TypeFullEnd}), ReasonShort},
		{"full-request with payload", append(AppendHeader(nil, Header{Type: TypeFullRequest}), 1), ReasonTrailing},
		{"tag flag, too short for a tag", set(5, FlagAuth)[:HeaderLen+3], ReasonShort},
	} {
		var d Datagram
		err := Decode(&d, tc.b, nil)
		if tc.name == "tag flag, too short for a tag" {
			err = Decode(&d, tc.b, []byte("k"))
		}
		if got := ReasonOf(err); got != tc.want {
			t.Errorf("%s: reason %q (%v), want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestNATOf(t *testing.T) {
	n := NATOf(&entry4)
	want := NAT{DNATAddr: entry4.Reply.Src, DNATPort: 8080, SNATAddr: entry4.Reply.Dst, SNATPort: 40000}
	if n != want {
		t.Errorf("FNAT: %+v, want %+v", n, want)
	}
	if n := NATOf(&entry6); n.SNATAddr.IsValid() || n.DNATAddr != entry6.Reply.Src || n.DNATPort != 53 {
		t.Errorf("NAT: %+v", n)
	}
	plain := entry6
	plain.Reply = Tuple{Src: plain.Orig.Dst, Dst: plain.Orig.Src, SrcPort: plain.Orig.DstPort, DstPort: plain.Orig.SrcPort}
	if n := NATOf(&plain); n != (NAT{}) {
		t.Errorf("untranslated: %+v", n)
	}
}

// FuzzDecode: decoding never panics, and whatever decodes re-encodes to
// the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(unhex(golden), false)
	b := AppendHeader(nil, Header{Type: TypeDelete, Count: 1})
	f.Add(AppendDelete(b, &entry6.Key), false)
	f.Add(Seal(AppendHeader(nil, Header{Type: TypeHello}), []byte("k")), true)
	f.Add(AppendUint32(AppendHeader(nil, Header{Type: TypeFullEnd}), 7), false)
	f.Add([]byte("VC"), false)
	f.Fuzz(func(t *testing.T, b []byte, auth bool) {
		var key []byte
		if auth {
			key = []byte("k")
		}
		var d Datagram
		if Decode(&d, b, key) != nil {
			return
		}
		h := d.Header
		h.Flags &^= FlagAuth
		out := AppendHeader(nil, h)
		switch d.Type {
		case TypeUpdate:
			for i := range d.Entries {
				out = AppendEntry(out, &d.Entries[i])
			}
		case TypeDelete:
			for i := range d.Deletes {
				out = AppendDelete(out, &d.Deletes[i])
			}
		case TypeFullEnd:
			out = AppendUint32(out, d.Total)
		}
		out = Seal(out, key)
		if !bytes.Equal(out, b) {
			t.Fatalf("round trip\n got %x\nwant %x", out, b)
		}
	})
}

func TestTypeNames(t *testing.T) {
	for typ, want := range map[Type]string{0: "type(0)", TypeUpdate: "update", TypeHello: "hello", 7: "type(7)"} {
		if got := typ.String(); got != want {
			t.Errorf("Type(%d): got %q, want %q", uint8(typ), got, want)
		}
	}
}
