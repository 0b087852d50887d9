package check

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"
	"vigil/internal/digit"
)

// DefaultMaxReply is max_reply_length's default.
const DefaultMaxReply = 255

// UDPConfig configures a UDP_CHECK. A datagram is sent to Target.Addr.
// Without RequireReply the server is up unless an ICMP error (port, host
// or net unreachable) comes back within connect_timeout, so such a check
// takes the whole timeout when all is well, as in keepalived. With
// RequireReply it is up only when a reply of an acceptable length, matching
// ReplyPattern, arrives in time.
type UDPConfig struct {
	Target
	// Payload is what to send (payload HEX_STR); nil sends 8 random bytes.
	Payload []byte
	// RequireReply is require_reply.
	RequireReply bool
	// ReplyPattern and ReplyMask come from require_reply HEX_STR via
	// ParseHexPattern: the reply must equal the pattern on the mask bits,
	// over the shorter of the two lengths.
	ReplyPattern, ReplyMask []byte
	// MinReplyLength and MaxReplyLength bound the reply's length (defaults
	// 0 and DefaultMaxReply; zero MaxReplyLength takes the default).
	MinReplyLength, MaxReplyLength int
}

// UDP is a UDP_CHECK.
type UDP struct {
	cfg UDPConfig
}

// NewUDP validates cfg and returns the checker; it opens nothing.
func NewUDP(cfg UDPConfig) (*UDP, error) {
	fail := func(format string, a ...any) (*UDP, error) {
		return nil, fmt.Errorf("UDP_CHECK: "+format, a...)
	}
	if err := cfg.Target.validate(true); err != nil {
		return fail("%w", err)
	}
	if cfg.MaxReplyLength == 0 {
		cfg.MaxReplyLength = DefaultMaxReply
	}
	if cfg.MinReplyLength < 0 || cfg.MaxReplyLength < cfg.MinReplyLength || cfg.MaxReplyLength > 65507 {
		return fail("reply length bounds %d-%d are not a range within 0-65507", cfg.MinReplyLength, cfg.MaxReplyLength)
	}
	if len(cfg.ReplyMask) != len(cfg.ReplyPattern) {
		return fail("reply pattern and mask differ in length")
	}
	if len(cfg.ReplyPattern) > 0 && !cfg.RequireReply {
		return fail("a reply pattern needs require_reply")
	}
	if len(cfg.Payload) > 65507 {
		return fail("payload of %d bytes does not fit a datagram", len(cfg.Payload))
	}
	return &UDP{cfg: cfg}, nil
}

func (c *UDP) String() string { return "UDP_CHECK " + c.cfg.Addr.String() }

// Check sends the payload and waits for a reply or an ICMP error.
func (c *UDP) Check(ctx context.Context) Result {
	start := time.Now()
	what := "udp " + c.cfg.Addr.String()
	conn, release, err := c.cfg.dialUDP(ctx)
	if err != nil {
		return down(what+": "+describe(err), start)
	}
	defer release()
	payload := c.cfg.Payload
	if payload == nil {
		payload = make([]byte, 8)
		rand.Read(payload)
	}
	if _, err := conn.Write(payload); err != nil {
		return down(what+": send: "+describe(err), start)
	}
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	switch {
	case err != nil && isTimeout(err) && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return down(what+": cancelled", start)
	case err != nil && isTimeout(err) && c.cfg.RequireReply:
		return down(fmt.Sprintf("%s: no reply within %v", what, c.cfg.Timeout), start)
	case err != nil && isTimeout(err):
		return up(fmt.Sprintf("%s: no ICMP error within %v", what, c.cfg.Timeout), start)
	case err != nil:
		// A connected UDP socket reports the ICMP error of an earlier
		// datagram on the next read: "connection refused" is port
		// unreachable.
		return down(what+": "+describe(err), start)
	}
	if why := c.judge(buf[:n]); why != "" {
		return down(what+": "+why, start)
	}
	return up(fmt.Sprintf("%s: reply of %d bytes", what, n), start)
}

func (c *UDP) judge(reply []byte) string {
	if !c.cfg.RequireReply {
		return ""
	}
	if len(reply) < c.cfg.MinReplyLength || len(reply) > c.cfg.MaxReplyLength {
		return fmt.Sprintf("reply of %d bytes, want %d-%d", len(reply), c.cfg.MinReplyLength, c.cfg.MaxReplyLength)
	}
	for i := 0; i < len(reply) && i < len(c.cfg.ReplyPattern); i++ {
		if reply[i]&c.cfg.ReplyMask[i] != c.cfg.ReplyPattern[i]&c.cfg.ReplyMask[i] {
			return fmt.Sprintf("reply byte %d is %02x, want %02x (mask %02x)", i, reply[i], c.cfg.ReplyPattern[i], c.cfg.ReplyMask[i])
		}
	}
	return ""
}

// ParseHexPattern parses keepalived's free-form HEX_STR: white space
// separates groups, each group is read two digits to a byte from the left
// and an odd last digit is a byte of its own, so "Ab12f 3 456" is
// AB 12 0F 03 45 06. An x or X digit (allowed with wildcards) matches any
// four bits: its mask nibble is zero.
func ParseHexPattern(s string, wildcards bool) (data, mask []byte, err error) {
	for _, g := range strings.Fields(s) {
		for i := 0; i < len(g); i += 2 {
			pair := g[i:min(i+2, len(g))]
			var d, m byte
			for _, ch := range []byte(pair) {
				v, vm, ok := hexNibble(ch, wildcards)
				if !ok {
					return nil, nil, fmt.Errorf("%q: %q is not a hex digit", s, ch)
				}
				d, m = d<<4|v, m<<4|vm
			}
			if len(pair) == 1 {
				m |= 0xf0 // a lone digit is 0X: its implied 0 must match too
			}
			data, mask = append(data, d), append(mask, m)
		}
	}
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("%q: no hex digits", s)
	}
	return data, mask, nil
}

func hexNibble(ch byte, wildcards bool) (v, mask byte, ok bool) {
	switch v := digit.Value(ch); {
	case v < 16:
		return byte(v), 0xf, true
	case wildcards && (ch == 'x' || ch == 'X'):
		return 0, 0, true
	}
	return 0, 0, false
}
