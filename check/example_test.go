package check_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"vigil/check"
)

// The daemon's use: map each real server's checkers onto a Server, run the
// Runner, and act on its events (notify scripts, the LB model).
func ExampleRunner() {
	// A real server that accepts, and one that refuses.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	defer func() { l.Close(); <-stopped }()
	gone, _ := net.Listen("tcp", "127.0.0.1:0")
	gone.Close()

	tcp := func(addr string) check.Checker {
		c, err := check.NewTCP(check.TCPConfig{Target: check.Target{Addr: netip.MustParseAddrPort(addr)}})
		if err != nil {
			panic(err)
		}
		return c
	}
	sched := check.DefaultSchedule(check.KindTCP) // keepalived's defaults...
	sched.DelayLoop, sched.Warmup, sched.Retry = 50*time.Millisecond, 0, 0

	r, err := check.NewRunner([]check.Server{
		{ID: "rs1", Weight: 1, Checks: []check.Watch{{Checker: tcp(l.Addr().String()), Schedule: sched}}},
		{ID: "rs2", Weight: 1, Checks: []check.Watch{{Checker: tcp(gone.Addr().String()), Schedule: sched}}},
	}, check.RunnerOptions{
		OnEvent: func(e check.Event) {
			what := e.Kind.String()
			if e.Initial {
				what += " (initial: set the model, run no script)"
			}
			fmt.Println(e.Server, what)
		},
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r.Run(ctx)
	// Output:
	// rs1 server up (initial: set the model, run no script)
	// rs2 server up (initial: set the model, run no script)
	// rs2 server down
}
