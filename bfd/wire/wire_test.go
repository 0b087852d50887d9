package wire

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Golden packets written by hand from the figure in RFC 5880 section 4.1.
var golden = []struct {
	name string
	hex  string
	pkt  Packet
}{
	{"down slow start", "20 40 03 18 00000001 00000000 000f4240 00002710 00000000",
		Packet{Version: 1, State: Down, DetectMult: 3, MyDisc: 1, DesiredMinTx: 1000000, RequiredMinRx: 10000}},
	{"init", "20 80 05 18 deadbeef 00000001 000f4240 000f4240 00000000",
		Packet{Version: 1, State: Init, DetectMult: 5, MyDisc: 0xdeadbeef, YourDisc: 1, DesiredMinTx: 1000000, RequiredMinRx: 1000000}},
	{"up poll", "20 e0 03 18 00000002 00000001 00002710 00002710 00000000",
		Packet{Version: 1, State: Up, Poll: true, DetectMult: 3, MyDisc: 2, YourDisc: 1, DesiredMinTx: 10000, RequiredMinRx: 10000}},
	{"up final cpi", "20 d8 03 18 00000002 00000001 00002710 00002710 00000000",
		Packet{Version: 1, State: Up, Final: true, ControlPlaneIndep: true, DetectMult: 3, MyDisc: 2, YourDisc: 1, DesiredMinTx: 10000, RequiredMinRx: 10000}},
	{"down neighbor signaled", "23 40 03 18 00000002 00000000 000f4240 00002710 00000032",
		Packet{Version: 1, Diag: DiagNeighborDown, State: Down, DetectMult: 3, MyDisc: 2, DesiredMinTx: 1000000, RequiredMinRx: 10000, RequiredMinEchoRx: 50}},
	{"admin down", "27 00 03 18 00000002 00000000 000f4240 00002710 00000000",
		Packet{Version: 1, Diag: DiagAdminDown, State: AdminDown, DetectMult: 3, MyDisc: 2, DesiredMinTx: 1000000, RequiredMinRx: 10000}},
	{"simple password auth", "20 c4 03 1d 00000002 00000001 00002710 00002710 00000000 01 05 01 6b 79",
		Packet{Version: 1, State: Up, DetectMult: 3, MyDisc: 2, YourDisc: 1, DesiredMinTx: 10000, RequiredMinRx: 10000, Auth: []byte{1, 5, 1, 'k', 'y'}}},
}

func TestGolden(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			b := unhex(t, g.hex)
			var p Packet
			if err := p.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(g.pkt, p); diff != "" {
				t.Errorf("decode (-want +got):\n%s", diff)
			}
			out, err := g.pkt.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(hex.EncodeToString(b), hex.EncodeToString(out)); diff != "" {
				t.Errorf("encode (-want +got):\n%s", diff)
			}
		})
	}
}

// TestGopacketAgrees decodes what Marshal writes with gopacket's
// independent BFD decoder.
func TestGopacketAgrees(t *testing.T) {
	for _, g := range golden {
		if g.pkt.Auth != nil {
			continue
		}
		b, _ := g.pkt.MarshalBinary()
		pk := gopacket.NewPacket(b, layers.LayerTypeBFD, gopacket.Default)
		l, ok := pk.Layer(layers.LayerTypeBFD).(*layers.BFD)
		if !ok {
			t.Fatalf("%s: gopacket did not decode: %v", g.name, pk.ErrorLayer())
		}
		got := Packet{Version: uint8(l.Version), Diag: Diag(l.Diagnostic), State: State(l.State), Poll: l.Poll, Final: l.Final,
			ControlPlaneIndep: l.ControlPlaneIndependent, Demand: l.Demand, Multipoint: l.Multipoint, DetectMult: uint8(l.DetectMultiplier),
			MyDisc: uint32(l.MyDiscriminator), YourDisc: uint32(l.YourDiscriminator), DesiredMinTx: uint32(l.DesiredMinTxInterval),
			RequiredMinRx: uint32(l.RequiredMinRxInterval), RequiredMinEchoRx: uint32(l.RequiredMinEchoRxInterval)}
		if diff := cmp.Diff(g.pkt, got); diff != "" {
			t.Errorf("%s (-ours +gopacket):\n%s", g.name, diff)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct {
		name, hex, reason string
	}{
		{"empty", "", "short"},
		{"truncated header", "20 40 03 18 00000001 00000000 000f4240", "short"},
		{"length beyond data", "20 40 03 30 00000001 00000000 000f4240 00002710 00000000", "short"},
		{"length below header", "20 40 03 17 00000001 00000000 000f4240 00002710 00000000", "length"},
		{"auth without section", "20 44 03 18 00000001 00000000 000f4240 00002710 00000000", "length"},
		{"auth length too big", "20 44 03 1a 00000001 00000000 000f4240 00002710 00000000 01 09", "auth_len"},
		{"version 0", "00 40 03 18 00000001 00000000 000f4240 00002710 00000000", "version"},
		{"version 2", "40 40 03 18 00000001 00000000 000f4240 00002710 00000000", "version"},
		{"zero multiplier", "20 40 00 18 00000001 00000000 000f4240 00002710 00000000", "detect_mult"},
		{"multipoint", "20 41 03 18 00000001 00000000 000f4240 00002710 00000000", "multipoint"},
		{"zero my discriminator", "20 40 03 18 00000000 00000000 000f4240 00002710 00000000", "my_disc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p Packet
			err := p.UnmarshalBinary(unhex(t, c.hex))
			if err == nil {
				t.Fatal("decoded a bad packet")
			}
			if got := Reason(err); got != c.reason {
				t.Errorf("reason %q, want %q (%v)", got, c.reason, err)
			}
			if c.reason == "short" && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%v is not io.ErrUnexpectedEOF", err)
			}
			if diff := cmp.Diff(Packet{}, p); diff != "" {
				t.Errorf("a failed decode changed the packet:\n%s", diff)
			}
		})
	}
}

func TestPaddingIgnored(t *testing.T) {
	b := append(unhex(t, golden[0].hex), 0, 0, 0, 0)
	var p Packet
	if err := p.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(golden[0].pkt, p); diff != "" {
		t.Error(diff)
	}
}

// Found by fuzzing: a Length past 24 without the A bit decodes, and the
// extra bytes are not part of the packet we would send.
func TestLongWithoutAuth(t *testing.T) {
	b := unhex(t, "30303018 30303030 30303030 30303030 30303030 30303030")
	b[0], b[3] = 0x30&0x1f|0x20, 29
	b = append(b, 0, 0, 0, 0, 0)
	var p Packet
	if err := p.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if p.Len() != HeaderLen || p.Auth != nil {
		t.Errorf("decoded %v with length %d", &p, p.Len())
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, g := range golden {
		f.Add(unhex(f, g.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		if err := p.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("marshal of a decoded packet: %v", err)
		}
		var q Packet
		if err := q.UnmarshalBinary(out); err != nil {
			t.Fatalf("decode of our own encoding: %v", err)
		}
		if diff := cmp.Diff(p, q); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		// A length past the header without the A bit is legal (RFC 5880
		// 6.8.6 sets only a minimum); those extra bytes are not re-sent.
		if n := int(b[3]); n == len(out) && string(out) != string(b[:n]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b[:n], out)
		}
	})
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		v    fmt.Stringer
		want string
	}{
		{AdminDown, "AdminDown"}, {Up, "Up"}, {State(4), "State(4)"},
		{DiagNone, "no diagnostic"}, {DiagRevConcatPathDwn, "reverse concatenated path down"}, {Diag(9), "diagnostic 9"},
	} {
		if got := tc.v.String(); got != tc.want {
			t.Errorf("%#v: got %q, want %q", tc.v, got, tc.want)
		}
	}
}
