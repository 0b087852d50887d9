package probe

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestOutageAfter(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	samples := []Sample{
		{At: at(0), By: "a"}, {At: at(5), By: "a"}, {At: at(10), By: "a"},
		{At: at(15)}, {At: at(20)}, {At: at(25)},
		{At: at(30), By: "b"}, {At: at(35), By: "b"},
	}
	o, err := OutageAfter(samples, at(12))
	if err != nil {
		t.Fatal(err)
	}
	if o.From != "a" || o.To != "b" || o.Gap != 20*time.Millisecond || o.SinceEvent != 18*time.Millisecond || o.FailedAttempts != 3 {
		t.Fatalf("got %+v", o)
	}
	if _, err := OutageAfter(samples[:5], at(12)); err != ErrNoFailover {
		t.Fatalf("no failover: got %v", err)
	}
}

func TestProberAgainstResponder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, ln, "node1")
	p := &Prober{Addr: ln.Addr().String(), Period: 5 * time.Millisecond, Timeout: 100 * time.Millisecond}
	pctx, pcancel := context.WithTimeout(ctx, 60*time.Millisecond)
	p.Run(pctx)
	pcancel()
	s := p.Samples()
	if len(s) < 3 {
		t.Fatalf("only %d samples", len(s))
	}
	for _, x := range s {
		if x.By != "node1" {
			t.Fatalf("sample %+v: want an answer from node1", x)
		}
	}
}
