package check

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// udpServer listens on a loopback UDP port and answers each datagram with
// reply(datagram), or not at all when reply returns nil.
func udpServer(t *testing.T, reply func([]byte) []byte) netip.AddrPort {
	t.Helper()
	return udpReplies(t, func(q []byte) [][]byte {
		if r := reply(q); r != nil {
			return [][]byte{r}
		}
		return nil
	})
}

// udpReplies listens on a loopback UDP port and answers each datagram with
// the datagrams replies(datagram) returns, in order.
func udpReplies(t *testing.T, replies func([]byte) [][]byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, r := range replies(append([]byte(nil), buf[:n]...)) {
				pc.WriteTo(r, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func TestUDP(t *testing.T) {
	echo := udpServer(t, func(b []byte) []byte { return b })
	fixed := udpServer(t, func([]byte) []byte { return []byte{0xab, 0x12, 0x34, 0x56} })
	silent := udpServer(t, func([]byte) []byte { return nil })
	closed := closedPort(t)
	pat := func(s string) ([]byte, []byte) {
		d, m, err := ParseHexPattern(s, true)
		if err != nil {
			t.Fatal(err)
		}
		return d, m
	}
	short := 200 * time.Millisecond
	type udpCase = checkCase[UDPConfig]
	tests := []udpCase{
		{"echo with require_reply", UDPConfig{Target: Target{Addr: echo}, Payload: []byte("ping"), RequireReply: true}, true, "reply of 4 bytes"},
		{"random payload echoed", UDPConfig{Target: Target{Addr: echo}, RequireReply: true}, true, "reply of 8 bytes"},
		{"pattern match", UDPConfig{Target: Target{Addr: fixed}, RequireReply: true}, true, "reply of 4 bytes"},
		{"silent with require_reply", UDPConfig{Target: Target{Addr: silent, Timeout: short}, RequireReply: true}, false, "no reply within 200ms"},
		{"silent without require_reply", UDPConfig{Target: Target{Addr: silent, Timeout: short}}, true, "no ICMP error within 200ms"},
		{"port unreachable", UDPConfig{Target: Target{Addr: closed, Timeout: time.Second}}, false, "connection refused"},
		{"port unreachable with require_reply", UDPConfig{Target: Target{Addr: closed, Timeout: time.Second}, RequireReply: true}, false, "connection refused"},
		{"reply too short", UDPConfig{Target: Target{Addr: fixed}, RequireReply: true, MinReplyLength: 5}, false, "reply of 4 bytes, want 5-255"},
		{"reply too long", UDPConfig{Target: Target{Addr: fixed}, RequireReply: true, MaxReplyLength: 3}, false, "reply of 4 bytes, want 0-3"},
	}
	d, m := pat("Ab12 34")
	tests = append(tests, udpCase{"hex pattern", UDPConfig{Target: Target{Addr: fixed}, RequireReply: true, ReplyPattern: d, ReplyMask: m}, true, "reply of 4 bytes"})
	d, m = pat("aX 1x 3x")
	tests = append(tests, udpCase{"wildcard nibbles", UDPConfig{Target: Target{Addr: fixed}, RequireReply: true, ReplyPattern: d, ReplyMask: m}, true, "reply"})
	d, m = pat("ab 13")
	tests = append(tests, udpCase{"pattern mismatch", UDPConfig{Target: Target{Addr: fixed}, RequireReply: true, ReplyPattern: d, ReplyMask: m}, false, "reply byte 1 is 12, want 13"})
	d, m = pat("ab 12 34 56 78 9a")
	tests = append(tests, udpCase{"pattern longer than reply compares the reply's length", UDPConfig{Target: Target{Addr: fixed}, RequireReply: true, ReplyPattern: d, ReplyMask: m}, true, "reply"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewUDP(tt.cfg)
			checkWant(t, c, err, tt.up, tt.detail)
		})
	}
}

func TestParseHexPattern(t *testing.T) {
	tests := []struct {
		in         string
		wildcards  bool
		data, mask []byte
		err        string
	}{
		// The example of keepalived.conf(5).
		{"Ab12f 3 456 546443123", false,
			[]byte{0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03},
			[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ""},
		{"x", true, []byte{0}, []byte{0xf0}, ""},
		{"xA Bx", true, []byte{0x0a, 0xb0}, []byte{0x0f, 0xf0}, ""},
		{"xA", false, nil, nil, `'x' is not a hex digit`},
		{"  ", false, nil, nil, "no hex digits"},
		{"0g", false, nil, nil, "not a hex digit"},
	}
	for _, tt := range tests {
		d, m, err := ParseHexPattern(tt.in, tt.wildcards)
		if wantErr(t, fmt.Sprintf("ParseHexPattern(%q)", tt.in), err, tt.err) {
			continue
		}
		if diff := cmp.Diff(tt.data, d); diff != "" {
			t.Errorf("ParseHexPattern(%q) data (-want +got):\n%s", tt.in, diff)
		}
		if diff := cmp.Diff(tt.mask, m); diff != "" {
			t.Errorf("ParseHexPattern(%q) mask (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestNewUDPErrors(t *testing.T) {
	a := Target{Addr: netip.MustParseAddrPort("127.0.0.1:9")}
	tests := []struct {
		cfg  UDPConfig
		want string
	}{
		{UDPConfig{Target: a, MinReplyLength: 10, MaxReplyLength: 5}, "not a range"},
		{UDPConfig{Target: a, ReplyPattern: []byte{1}, ReplyMask: []byte{0xff}}, "needs require_reply"},
		{UDPConfig{Target: a, RequireReply: true, ReplyPattern: []byte{1}}, "differ in length"},
		{UDPConfig{Target: Target{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)}}, "no port"},
	}
	for _, tt := range tests {
		if _, err := NewUDP(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewUDP(%+v) error = %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
