package check

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoopAllocatesNothing: once warm, the Runner's loop allocates nothing
// for a TCP_CHECK or a plain HTTP_GET that passes (issue #7: a daemon with
// checks at delay_loop 1 then never makes the collector run). The servers
// live in this process and allocate for every connection, so the count
// is not the process's (testing.AllocsPerRun) but that of the allocation
// sites on the loop's goroutine, from the memory profile at a rate of one
// record per allocation.
func TestLoopAllocatesNothing(t *testing.T) {
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	t.Cleanup(func() { runtime.MemProfileRate = rate })

	tcp, err := NewTCP(TCPConfig{Target{Addr: tcpServer(t), Timeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
	http, err := NewHTTP(HTTPConfig{Target: Target{Addr: addr, Timeout: time.Second}, URLs: []URL{{Path: "/"}}})
	if err != nil {
		t.Fatal(err)
	}
	var checks, failed atomic.Int64
	runRunner(t, []Server{
		{ID: "tcp", Checks: []Watch{{tcp, fast(0)}}},
		{ID: "http", Checks: []Watch{{http, fast(0)}}},
	}, RunnerOptions{OnResult: func(rep Report) {
		checks.Add(1)
		if !rep.Result.Up {
			failed.Add(1)
		}
	}})
	// Warm: the map and the free lists at their size, and the job heap
	// too, which holds each check's connect_timeout job until it expires
	// (the timeout, 1 s, after the check started).
	time.Sleep(1200 * time.Millisecond)
	a0, n0 := loopAllocs(), checks.Load()
	time.Sleep(time.Second)
	a1, n1 := loopAllocs(), checks.Load()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d checks failed", failed.Load(), n1)
	}
	n := n1 - n0
	if n < 100 {
		t.Fatalf("%d checks in a second at a 5 ms delay_loop", n)
	}
	var got []string
	total := 0
	for site, c := range a1 {
		if d := c - a0[site]; d > 0 {
			got = append(got, fmt.Sprintf("%d at %s", d, site))
			total += d
		}
	}
	// A slice or map that still grows to a new size now and then is not a
	// per-check allocation.
	if per := float64(total) / float64(n); per > 0.02 {
		t.Errorf("%.3f allocations per check on the loop (%d checks):\n%s", per, n, strings.Join(got, "\n"))
	}
	t.Logf("%d checks, %d allocations on the loop", n, total)
}

// loopAllocs counts the objects allocated so far on the Runner's goroutine
// (a stack through Runner.Run), by allocating function and line.
func loopAllocs() map[string]int {
	// The profile holds what the collections before the last one saw.
	runtime.GC()
	runtime.GC()
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+64)
	}
	out := map[string]int{}
	for _, r := range recs {
		frames := runtime.CallersFrames(r.Stack())
		site, onLoop := "", false
		for {
			f, more := frames.Next()
			if site == "" && !strings.HasPrefix(f.Function, "runtime.") {
				site = fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line)
			}
			if f.Function == "vigil/check.(*Runner).Run" {
				onLoop = true
			}
			if !more {
				break
			}
		}
		if onLoop {
			out[site] += int(r.AllocObjects)
		}
	}
	return out
}
