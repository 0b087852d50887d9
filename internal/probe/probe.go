// Package probe measures what a client of a virtual IP sees: a responder
// that answers every TCP connection with its node's name, and a prober that
// dials the VIP at a fixed period and records who answered, so that a
// failover's client-visible outage is measured rather than inferred from
// logs. `vigil demo` and the failover benchmarks use it.
package probe

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"
)

// Serve answers every connection on ln with name and a newline until ctx
// ends.
func Serve(ctx context.Context, ln net.Listener, name string) {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte(name + "\n"))
		}()
	}
}

// Sample is one dial.
type Sample struct {
	At  time.Time
	By  string // who answered; empty on failure
	Err error
}

// Prober dials addr every Period with a Timeout per attempt.
type Prober struct {
	Addr    string
	Period  time.Duration
	Timeout time.Duration

	mu      sync.Mutex
	samples []Sample
}

// Run dials until ctx ends. The dials happen on the calling goroutine's
// thread, so a caller that entered a network namespace (netlab Host.Do)
// probes from there.
func (p *Prober) Run(ctx context.Context) {
	t := time.NewTicker(p.Period)
	defer t.Stop()
	d := net.Dialer{Timeout: p.Timeout}
	for {
		s := Sample{At: time.Now()}
		s.By, s.Err = dialOnce(&d, p.Addr, p.Timeout)
		p.mu.Lock()
		p.samples = append(p.samples, s)
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func dialOnce(d *net.Dialer, addr string, timeout time.Duration) (string, error) {
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// Samples returns a copy of what was recorded so far.
func (p *Prober) Samples() []Sample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Sample(nil), p.samples...)
}

// Last returns the latest sample.
func (p *Prober) Last() (Sample, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.samples) == 0 {
		return Sample{}, false
	}
	return p.samples[len(p.samples)-1], true
}

// Outage is the client-visible gap of one failover.
type Outage struct {
	From, To       string        // who answered before and after
	LastBefore     time.Time     // last answer from From at or after the event
	FirstAfter     time.Time     // first answer from To
	Gap            time.Duration // FirstAfter − LastBefore: how long clients got nothing
	SinceEvent     time.Duration // FirstAfter − the event
	FailedAttempts int           // dials between the two that got no answer
}

// ErrNoFailover is returned when the samples show no change of answerer
// after the event.
var ErrNoFailover = errors.New("probe: no answer from a different node after the event")

// OutageAfter finds, in samples, the failover that follows event: the last
// answer from the old node and the first from another one.
func OutageAfter(samples []Sample, event time.Time) (Outage, error) {
	var o Outage
	for _, s := range samples {
		if s.At.Before(event) {
			if s.By != "" {
				o.From, o.LastBefore = s.By, s.At
			}
			continue
		}
		if s.By == "" {
			o.FailedAttempts++
			continue
		}
		if s.By == o.From || o.From == "" {
			o.From, o.LastBefore = s.By, s.At
			o.FailedAttempts = 0
			continue
		}
		o.To, o.FirstAfter = s.By, s.At
		o.Gap = o.FirstAfter.Sub(o.LastBefore)
		o.SinceEvent = o.FirstAfter.Sub(event)
		return o, nil
	}
	return o, ErrNoFailover
}
