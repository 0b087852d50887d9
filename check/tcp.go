package check

import (
	"context"
	"fmt"
	"time"
)

// TCPConfig configures a TCP_CHECK: the server is up when a TCP connection
// to Target.Addr completes within connect_timeout. TCP_CHECK has no options
// of its own.
type TCPConfig struct {
	Target
}

// TCP is a TCP_CHECK.
type TCP struct {
	cfg TCPConfig
}

// NewTCP validates cfg and returns the checker; it opens nothing.
func NewTCP(cfg TCPConfig) (*TCP, error) {
	if err := cfg.Target.validate(true); err != nil {
		return nil, fmt.Errorf("TCP_CHECK: %w", err)
	}
	return &TCP{cfg: cfg}, nil
}

func (c *TCP) String() string { return "TCP_CHECK " + c.cfg.Addr.String() }

// Check connects and closes at once, as keepalived does: a completed
// three-way handshake is the whole test.
func (c *TCP) Check(ctx context.Context) Result {
	start := time.Now()
	conn, err := c.cfg.dialer("tcp").DialContext(ctx, "tcp", c.cfg.dialAddr())
	if err != nil {
		return down("connect "+c.cfg.Addr.String()+": "+describe(err), start)
	}
	conn.Close()
	return up("connected to "+c.cfg.Addr.String(), start)
}
