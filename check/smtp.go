package check

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultSMTPPort is the port an SMTP_CHECK connects to when neither
// connect_port nor the real server gives one (keepalived.conf(5) of
// keepalived 1.x documented 25 as the default).
const DefaultSMTPPort = 25

// SMTPConfig configures an SMTP_CHECK: the server is up when it greets
// with 220 and answers HELO with 250 (RFC 5321 §4.2, §4.3.2), all within
// connect_timeout. The check then says QUIT, as a polite client does.
type SMTPConfig struct {
	Target
	// HeloName is helo_name; empty sends this host's name, as RFC 5321
	// §4.1.1.1 asks of a client.
	HeloName string
}

// SMTP is an SMTP_CHECK.
type SMTP struct {
	cfg SMTPConfig
}

// maxSMTPReply bounds one reply, continuation lines included: a greeting
// is a line or a few, and a server that streams more is not well.
const maxSMTPReply = 16 << 10

// NewSMTP validates cfg and returns the checker; it opens nothing.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	if cfg.Addr.Addr().IsValid() && cfg.Addr.Port() == 0 {
		cfg.Addr = netip.AddrPortFrom(cfg.Addr.Addr(), DefaultSMTPPort)
	}
	if err := cfg.Target.validate(true); err != nil {
		return nil, fmt.Errorf("SMTP_CHECK: %w", err)
	}
	if cfg.HeloName == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		cfg.HeloName = h
	}
	if strings.ContainsAny(cfg.HeloName, " \t\r\n") {
		return nil, fmt.Errorf("SMTP_CHECK: helo_name %q contains white space", cfg.HeloName)
	}
	return &SMTP{cfg: cfg}, nil
}

func (c *SMTP) String() string { return "SMTP_CHECK " + c.cfg.Addr.String() }

// Check holds one SMTP conversation: greeting, HELO, QUIT. A reply to
// QUIT is not waited for: the server has already shown it works.
func (c *SMTP) Check(ctx context.Context) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	where := c.cfg.Addr.String()
	fail := func(step string, err error) Result {
		return down(fmt.Sprintf("SMTP %s: %s: %v", where, step, c.cfg.stepError(ctx, err)), start)
	}
	conn, release, err := c.cfg.dial(ctx, "tcp")
	if err != nil {
		return fail("connect", err)
	}
	defer release()

	br := bufio.NewReaderSize(conn, 1024)
	code, text, err := readSMTPReply(br)
	if err != nil {
		return fail("greeting", err)
	}
	if code != 220 {
		return down(fmt.Sprintf("SMTP %s: greeting %d %s, want 220", where, code, text), start)
	}
	if _, err := io.WriteString(conn, "HELO "+c.cfg.HeloName+"\r\n"); err != nil {
		return fail("send HELO", err)
	}
	code, text, err = readSMTPReply(br)
	if err != nil {
		return fail("HELO", err)
	}
	if code != 250 {
		return down(fmt.Sprintf("SMTP %s: HELO answered %d %s, want 250", where, code, text), start)
	}
	_, _ = io.WriteString(conn, "QUIT\r\n")
	return up(fmt.Sprintf("SMTP %s: greeting and HELO ok", where), start)
}

// readSMTPReply reads one reply of RFC 5321 §4.2: lines "NNN-text" up to a
// last "NNN text" (or a bare "NNN"), all with the same code. It returns the
// code and the last line's text.
func readSMTPReply(br *bufio.Reader) (code int, text string, err error) {
	total := 0
	for {
		line, err := br.ReadString('\n')
		total += len(line)
		if err != nil {
			if err == io.EOF {
				if total == 0 {
					return 0, "", errors.New("connection closed before any reply")
				}
				return 0, "", errors.New("connection closed inside a reply")
			}
			return 0, "", err
		}
		if total > maxSMTPReply {
			return 0, "", fmt.Errorf("reply longer than %d bytes", maxSMTPReply)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return 0, "", fmt.Errorf("malformed reply line %q", clip(line))
		}
		c, err := strconv.Atoi(line[:3])
		if err != nil || c < 100 || c > 599 || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
			return 0, "", fmt.Errorf("malformed reply line %q", clip(line))
		}
		if code != 0 && c != code {
			return 0, "", fmt.Errorf("reply changes code from %d to %d inside a multi-line reply", code, c)
		}
		code = c
		if len(line) == 3 || line[3] == ' ' {
			if len(line) > 4 {
				text = line[4:]
			}
			return code, clip(text), nil
		}
	}
}

// clip shortens text from a server for a log line.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
