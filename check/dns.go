package check

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"
)

// DNSConfig configures a DNS_CHECK: one query over UDP to Target.Addr
// (port 53 when none is given). The server is up when it answers our query
// with NOERROR and at least one answer record; an empty answer, another
// rcode or no reply within connect_timeout is down.
type DNSConfig struct {
	Target
	// Type is the query type: A, NS, CNAME, SOA, PTR, MX, TXT or AAAA;
	// empty means SOA, keepalived's default.
	Type string
	// Name is the name to query; empty means ".", keepalived's default.
	Name string
}

var dnsTypes = map[string]uint16{"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}

var dnsRcodes = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"}

// DNS is a DNS_CHECK.
type DNS struct {
	cfg   DNSConfig
	qtype uint16
	qname []byte // wire form
}

// NewDNS validates cfg and returns the checker; it opens nothing.
func NewDNS(cfg DNSConfig) (*DNS, error) {
	if cfg.Addr.Port() == 0 {
		cfg.Addr = netip.AddrPortFrom(cfg.Addr.Addr(), 53)
	}
	if err := cfg.Target.validate(true); err != nil {
		return nil, fmt.Errorf("DNS_CHECK: %w", err)
	}
	if cfg.Type == "" {
		cfg.Type = "SOA"
	}
	cfg.Type = strings.ToUpper(cfg.Type)
	qt, ok := dnsTypes[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("DNS_CHECK: type %q: want A, NS, CNAME, SOA, PTR, MX, TXT or AAAA", cfg.Type)
	}
	if cfg.Name == "" {
		cfg.Name = "."
	}
	qn, err := encodeName(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("DNS_CHECK: name %q: %w", cfg.Name, err)
	}
	return &DNS{cfg: cfg, qtype: qt, qname: qn}, nil
}

func (c *DNS) String() string {
	return "DNS_CHECK " + c.cfg.Addr.String() + " " + c.cfg.Type + " " + c.cfg.Name
}

// encodeName turns "www.example.org" into length-prefixed labels.
func encodeName(name string) ([]byte, error) {
	name = strings.TrimSuffix(name, ".")
	var b []byte
	if name != "" {
		for _, l := range strings.Split(name, ".") {
			if l == "" || len(l) > 63 {
				return nil, errors.New("empty label or label longer than 63 bytes")
			}
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	b = append(b, 0)
	if len(b) > 255 {
		return nil, errors.New("longer than 255 bytes")
	}
	return b, nil
}

// query builds a recursion-desired query for our name and type.
func (c *DNS) query(id uint16) []byte {
	q := make([]byte, 12, 12+len(c.qname)+4)
	binary.BigEndian.PutUint16(q[0:], id)
	binary.BigEndian.PutUint16(q[2:], 0x0100) // RD
	binary.BigEndian.PutUint16(q[4:], 1)      // QDCOUNT
	q = append(q, c.qname...)
	q = binary.BigEndian.AppendUint16(q, c.qtype)
	q = binary.BigEndian.AppendUint16(q, 1) // class IN
	return q
}

// judge checks a reply to query q; it returns "" when the server is up,
// errWrongID for a stray datagram to ignore, or the reason it is down.
func (c *DNS) judge(q, r []byte) (string, error) {
	if len(r) < 12 {
		return "", fmt.Errorf("reply of %d bytes is shorter than a DNS header", len(r))
	}
	if !bytes.Equal(r[:2], q[:2]) {
		return "", errWrongID
	}
	flags := binary.BigEndian.Uint16(r[2:])
	if flags&0x8000 == 0 {
		return "", errors.New("reply is not a response (QR clear)")
	}
	if rc := int(flags & 0xf); rc != 0 {
		name := fmt.Sprintf("rcode %d", rc)
		if rc < len(dnsRcodes) {
			name = dnsRcodes[rc]
		}
		return "", errors.New("server answered " + name)
	}
	qd := binary.BigEndian.Uint16(r[4:])
	question := q[12:]
	if qd != 1 || len(r) < 12+len(question) || !bytes.EqualFold(r[12:12+len(question)], question) {
		return "", errors.New("reply does not echo the question")
	}
	if binary.BigEndian.Uint16(r[6:]) == 0 {
		return "", errors.New("no answer records")
	}
	return fmt.Sprintf("%d answer records", binary.BigEndian.Uint16(r[6:])), nil
}

var errWrongID = errors.New("reply to another query")

// Check sends one query and waits for its reply until connect_timeout.
func (c *DNS) Check(ctx context.Context) Result {
	start := time.Now()
	what := "query " + c.cfg.Type + " " + c.cfg.Name + " at " + c.cfg.Addr.String()
	conn, release, err := c.cfg.dialUDP(ctx)
	if err != nil {
		return down(what+": "+describe(err), start)
	}
	defer release()
	q := c.query(uint16(rand.Uint32()))
	if _, err := conn.Write(q); err != nil {
		return down(what+": send: "+describe(err), start)
	}
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if isTimeout(err) {
				return down(fmt.Sprintf("%s: no reply within %v", what, c.cfg.Timeout), start)
			}
			return down(what+": "+describe(err), start)
		}
		ok, err := c.judge(q, buf[:n])
		if errors.Is(err, errWrongID) {
			continue
		}
		if err != nil {
			return down(what+": "+err.Error(), start)
		}
		return up(what+": "+ok, start)
	}
}
