package ctsync

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"vigil/internal/ctnl"
	"vigil/internal/labtest"
	"vigil/internal/testenv"
)

// BenchmarkInstall: a backup's copy of n established FNAT flows written
// into its kernel (root; a namespace lab). The kernel table is flushed
// between iterations, outside the timer.
//
//	VIGIL_LAB_TAG=cs go test -run '^$' -bench Install -benchtime 5x ./ctsync/
func BenchmarkInstall(b *testing.B) {
	testenv.RequireRoot(b)
	for _, n := range []int{10000, 100000} {
		// again: every entry is already in the kernel (a director taking
		// back its own flows): the dump and batched updates path.
		for _, again := range []bool{false, true} {
			name := fmt.Sprint(n)
			if again {
				name += "-existing"
			}
			b.Run(name, func(b *testing.B) {
				hosts := syncLAN(b, "dirb")
				s := newSyncer(b, hosts["dirb"], Config{Interface: "eth0"})
				ct := ctConn(b, hosts["dirb"])
				now := time.Now()
				s.mu.Lock()
				for _, e := range synthFlows(n, synthVIP, 0) {
					s.table.update(&e, now)
				}
				s.mu.Unlock()
				s.SetServices([]Service{{VIP: synthVIP, Proto: 6, Port: 80}})
				if again {
					if got, err := s.Install(context.Background()); err != nil || got != n {
						b.Fatalf("installed %d, %v; want %d", got, err, n)
					}
				}
				b.ResetTimer()
				for b.Loop() {
					got, err := s.Install(context.Background())
					if err != nil || got != n {
						b.Fatalf("installed %d, %v; want %d", got, err, n)
					}
					if !again {
						b.StopTimer()
						if err := ct.Flush(); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
			})
		}
	}
}

// BenchmarkEventThroughput: with `established` flows already synced, the
// master's kernel gets 10,000 new flows in a burst (ctnetlink creates, each
// a NEW event as a new connection would make); the time until the backup's
// copy holds them gives the entries per second sender and receiver keep up
// with; create-ms is the part spent creating the burst (the generator),
// drain-ms the time from its end until the backup held it all. Resyncs
// counts full dumps forced by a lost event (ENOBUFS).
//
//	VIGIL_LAB_TAG=cs go test -run '^$' -bench EventThroughput -benchtime 3x ./ctsync/
func BenchmarkEventThroughput(b *testing.B) {
	testenv.RequireRoot(b)
	const burst = 10000
	for _, established := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("established=%d", established), func(b *testing.B) {
			hosts := syncLAN(b, "dira", "dirb")
			sa := newSyncer(b, hosts["dira"], Config{Interface: "eth0"})
			sb := newSyncer(b, hosts["dirb"], Config{Interface: "eth0"})
			svcs := []Service{{VIP: synthVIP, Proto: 6, Port: 80}}
			sa.SetServices(svcs)
			sb.SetServices(svcs)
			sa.SetMaster(true)
			create(b, sa, synthFlows(established, synthVIP, 0), (*ctnl.Msg).AppendCreate)
			labtest.WaitFor(b, 60*time.Second, "the established flows to sync", func() bool { return sb.Status().Entries == established })
			next := established
			var total, creating time.Duration
			b.ResetTimer()
			for b.Loop() {
				want := sb.Status().Entries + burst
				start := time.Now()
				create(b, sa, synthFlows(burst, synthVIP, next), (*ctnl.Msg).AppendCreate)
				creating += time.Since(start)
				labtest.WaitFor(b, 60*time.Second, "the burst to sync", func() bool { return sb.Status().Entries >= want })
				total += time.Since(start)
				next += burst
			}
			b.ReportMetric(float64(burst*b.N)/total.Seconds(), "entries/s")
			b.ReportMetric(float64(creating.Milliseconds())/float64(b.N), "create-ms/op")
			b.ReportMetric(float64((total-creating).Milliseconds())/float64(b.N), "drain-ms/op")
			b.ReportMetric(float64(sa.Status().Resyncs), "resyncs")
			b.ReportMetric(float64(sb.Status().Lag.Microseconds()), "last-lag-µs")
			b.ReportMetric(float64(sb.Status().Gaps), "gaps")
			b.ReportMetric(float64(sa.Status().FullSent), "full-tables")
		})
	}
}

// BenchmarkTableMemory: bytes a backup holds per synced entry.
func BenchmarkTableMemory(b *testing.B) {
	const n = 100000
	flows := synthFlows(n, synthVIP, 0)
	for b.Loop() {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		tb := newTable(DefaultMaxEntries)
		now := time.Now()
		for i := range flows {
			tb.update(&flows[i], now)
		}
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/n, "B/entry")
		runtime.KeepAlive(tb)
	}
}
