package check

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// dnsResponder is a tiny DNS server on a loopback UDP port that answers by
// query name, with messages encoded by hand:
//
//	ok.test / "."  NOERROR, one answer
//	empty.test     NOERROR, no answer
//	nx.test        NXDOMAIN
//	silent.test    no reply at all
//	stray.test     first a reply with another ID, then the real one
//	wrongq.test    an answer to a different question
func dnsResponder(t *testing.T) netip.AddrPort {
	t.Helper()
	return udpReplies(t, func(q []byte) [][]byte {
		name, qend := decodeTestName(q, 12)
		question := q[12 : qend+4]
		reply := func(id []byte, rcode uint16, answers int, question []byte) []byte {
			r := append([]byte(nil), id...)
			r = binary.BigEndian.AppendUint16(r, 0x8180|rcode) // QR RD RA
			r = binary.BigEndian.AppendUint16(r, 1)
			r = binary.BigEndian.AppendUint16(r, uint16(answers))
			r = append(r, 0, 0, 0, 0)
			r = append(r, question...)
			for i := 0; i < answers; i++ {
				r = append(r, 0xc0, 12) // pointer to the question name
				r = append(r, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1)
			}
			return r
		}
		switch name {
		case "ok.test", "":
			return [][]byte{reply(q[:2], 0, 1, question)}
		case "empty.test":
			return [][]byte{reply(q[:2], 0, 0, question)}
		case "nx.test":
			return [][]byte{reply(q[:2], 3, 0, question)}
		case "stray.test":
			return [][]byte{reply([]byte{q[0] ^ 0xff, q[1]}, 3, 0, question), reply(q[:2], 0, 2, question)}
		case "wrongq.test":
			other, _ := encodeName("other.test")
			return [][]byte{reply(q[:2], 0, 1, append(other, 0, 1, 0, 1))}
		}
		return nil
	})
}

func decodeTestName(b []byte, off int) (string, int) {
	var labels []string
	for off < len(b) && b[off] != 0 {
		l := int(b[off])
		labels = append(labels, string(b[off+1:off+1+l]))
		off += 1 + l
	}
	return strings.Join(labels, "."), off + 1
}

func TestDNS(t *testing.T) {
	srv := dnsResponder(t)
	closed := closedPort(t)
	tests := []checkCase[DNSConfig]{
		{"default SOA for the root", DNSConfig{}, true, "query SOA . at " + srv.String() + ": 1 answer records"},
		{"A with an answer", DNSConfig{Type: "A", Name: "ok.test"}, true, "query A ok.test"},
		{"lower-case type", DNSConfig{Type: "aaaa", Name: "ok.test."}, true, "query AAAA ok.test."},
		{"no answer records", DNSConfig{Type: "MX", Name: "empty.test"}, false, "no answer records"},
		{"NXDOMAIN", DNSConfig{Type: "A", Name: "nx.test"}, false, "server answered NXDOMAIN"},
		{"stray reply ignored", DNSConfig{Type: "TXT", Name: "stray.test"}, true, "2 answer records"},
		{"answer to another question", DNSConfig{Type: "A", Name: "wrongq.test"}, false, "does not echo the question"},
		{"no reply", DNSConfig{Type: "NS", Name: "silent.test", Target: Target{Timeout: 200 * time.Millisecond}}, false, "no reply within 200ms"},
		{"port unreachable", DNSConfig{Type: "A", Name: "ok.test", Target: Target{Addr: netip.AddrPortFrom(closed.Addr(), closed.Port())}}, false, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.cfg.Addr.IsValid() {
				tt.cfg.Addr = srv
			}
			c, err := NewDNS(tt.cfg)
			checkWant(t, c, err, tt.up, tt.detail)
		})
	}
}

func TestDNSQueryEncoding(t *testing.T) {
	c, err := NewDNS(DNSConfig{Target: Target{Addr: netip.MustParseAddrPort("127.0.0.1:53")}, Type: "MX", Name: "mail.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, // header: ID, RD, one question
		4, 'm', 'a', 'i', 'l', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'o', 'r', 'g', 0,
		0, 15, 0, 1, // MX, IN
	}
	if diff := cmp.Diff(want, c.query(0x1234)); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	root, _ := NewDNS(DNSConfig{Target: Target{Addr: netip.MustParseAddrPort("127.0.0.1:53")}})
	if diff := cmp.Diff([]byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1}, root.query(0)); diff != "" {
		t.Errorf("default query (-want +got):\n%s", diff)
	}
}

func TestNewDNSErrors(t *testing.T) {
	a := Target{Addr: netip.MustParseAddrPort("127.0.0.1:53")}
	tests := []struct {
		cfg  DNSConfig
		want string
	}{
		{DNSConfig{Target: a, Type: "SRV"}, `type "SRV"`},
		{DNSConfig{Target: a, Name: "a..b"}, "empty label"},
		{DNSConfig{Target: a, Name: strings.Repeat("x", 64) + ".test"}, "longer than 63"},
		{DNSConfig{}, "no address"},
	}
	for _, tt := range tests {
		if _, err := NewDNS(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewDNS(%+v) error = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	c, _ := NewDNS(DNSConfig{Target: Target{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)}})
	if c.cfg.Addr.Port() != 53 {
		t.Errorf("default port %d, want 53", c.cfg.Addr.Port())
	}
}
