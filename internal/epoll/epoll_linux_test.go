package epoll

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// withSet runs test on a new Set, closed once test returns.
func withSet(t *testing.T, test func(t *testing.T, s *Set)) {
	s, err := NewParked()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	test(t, s)
}

// newPair returns a non-blocking datagram socket pair: writing to [1]
// makes [0] readable. The test's end closes what is not -1 (a test that
// closes one end sets it to -1: its number may be reused meanwhile).
func newPair(t *testing.T) *[2]int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := (*[2]int)(fds[:])
	t.Cleanup(func() {
		for _, fd := range p {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	})
	return p
}

// addPair adds to s, tagged with its descriptor, one end (fds[0]) of a
// new pair (newPair).
func addPair(t *testing.T, s *Set) [2]int {
	t.Helper()
	fds := newPair(t)
	if err := s.Add(fds[0], fds[0]); err != nil {
		t.Fatal(err)
	}
	return *fds
}

// runSteps runs s with steps[i] as the body of pass i: the events it is
// given (a socket's only if it has input), and it returns stop. Fails the test if Run outlives 5 s (an event
// that never came).
func runSteps(t *testing.T, s *Set, steps ...func(evs []unix.EpollEvent) bool) {
	t.Helper()
	done := make(chan error, 1)
	pass := 0
	go func() {
		var kept []unix.EpollEvent
		done <- s.Run(func(evs []unix.EpollEvent) (bool, bool) {
			// A socket's tag may come with nothing to read (Run's
			// contract): the steps see only those that have input.
			kept = kept[:0]
			for _, ev := range evs {
				if ev.Fd < 0 || readable(int(ev.Fd)) {
					kept = append(kept, ev)
				}
			}
			if len(kept) == 0 {
				return true, false
			}
			evs = kept
			if pass >= len(steps) {
				t.Errorf("pass %d beyond the %d steps: events %v", pass, len(steps), evs)
				return true, true
			}
			pass++
			return true, steps[pass-1](evs)
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Run still waiting after 5 s, at pass %d of %d", pass, len(steps))
	}
}

// one fails unless evs is the single event tag.
func one(t *testing.T, stage string, evs []unix.EpollEvent, tag int32) {
	t.Helper()
	if len(evs) != 1 || evs[0].Fd != tag {
		t.Errorf("%s: events %v, want one tagged %d", stage, evs, tag)
	}
}

// TestRunTags runs a Set through what the loops rely on: an armed
// deadline comes back as TagTimer, not before it, a Wake from another
// goroutine as TagWake, and a readable socket with the tag it was added
// with.
func TestRunTags(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		var wakers sync.WaitGroup
		defer wakers.Wait() // before Close: Wake reads the descriptor Close clears
		fds := addPair(t, s)
		due := time.Now().Add(20 * time.Millisecond)
		s.Arm(due, time.Time{})
		runSteps(t, s,
			func(evs []unix.EpollEvent) bool {
				one(t, "after Arm", evs, TagTimer)
				if time.Now().Before(due) {
					t.Errorf("timer fired before its deadline")
				}
				if !s.Armed().Equal(due) {
					t.Errorf("Armed() = %v, want %v", s.Armed(), due)
				}
				s.TimerFired()
				if !s.Armed().IsZero() {
					t.Errorf("Armed() after TimerFired = %v, want zero", s.Armed())
				}
				wakers.Go(s.Wake)
				return false
			},
			func(evs []unix.EpollEvent) bool {
				one(t, "after Wake", evs, TagWake)
				if _, err := unix.Write(fds[1], []byte("x")); err != nil {
					t.Error(err)
				}
				return false
			},
			func(evs []unix.EpollEvent) bool {
				one(t, "after a datagram", evs, int32(fds[0]))
				return true
			})
		s.Del(fds[0])
	})
}

// TestTimerFiredNeedsNoRead: TimerFired leaves the expiry unread; the
// next Arm clears it (no second TagTimer before the new deadline), and a
// deadline spent and not armed again passes no TagTimer (no busy loop on
// a stale expiry) however long Run goes on.
func TestTimerFiredNeedsNoRead(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		var wakers sync.WaitGroup
		defer wakers.Wait() // before Close: Wake reads the descriptor Close clears
		wakeSoon := func() {
			wakers.Go(func() { time.Sleep(10 * time.Millisecond); s.Wake() })
		}
		var steps []func([]unix.EpollEvent) bool
		for i := range 5 {
			steps = append(steps, func(evs []unix.EpollEvent) bool {
				one(t, fmt.Sprint(i, ": the deadline"), evs, TagTimer)
				s.TimerFired()
				if i < 4 {
					s.Arm(time.Now().Add(2*time.Millisecond), time.Time{})
				} else {
					s.Arm(time.Now().Add(time.Hour), time.Time{}) // clears the last expiry
					wakeSoon()
				}
				return false
			})
		}
		steps = append(steps,
			func(evs []unix.EpollEvent) bool {
				one(t, "armed an hour ahead", evs, TagWake)
				s.Arm(time.Now().Add(time.Millisecond), time.Time{})
				return false
			},
			func(evs []unix.EpollEvent) bool {
				one(t, "the last deadline", evs, TagTimer)
				s.TimerFired()
				wakers.Go(func() { time.Sleep(50 * time.Millisecond); s.Wake() })
				return false
			},
			func(evs []unix.EpollEvent) bool {
				one(t, "not armed again, 50 ms later", evs, TagWake)
				return true
			})
		s.Arm(time.Now().Add(2*time.Millisecond), time.Time{})
		runSteps(t, s, steps...)
	})
}

// TestRunStopsFromEitherSide: body's stop ends Run whichever goroutine
// ran it, the timer's or a socket's, and Run can run again after.
func TestRunStopsFromEitherSide(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		fds := addPair(t, s)
		s.Arm(time.Now().Add(time.Millisecond), time.Time{})
		runSteps(t, s, func(evs []unix.EpollEvent) bool {
			one(t, "timer side", evs, TagTimer)
			s.TimerFired()
			return true
		})
		if _, err := unix.Write(fds[1], []byte("x")); err != nil {
			t.Fatal(err)
		}
		runSteps(t, s, func(evs []unix.EpollEvent) bool {
			one(t, "socket side", evs, int32(fds[0]))
			drain(fds[0])
			return true
		})
	})
}

// drain reads fd until it would block.
// drain reads fd until it would block and returns how many datagrams it
// read.
func drain(fd int) int {
	b := make([]byte, 16)
	n := 0
	for {
		if _, err := unix.Read(fd, b); err != nil {
			return n
		}
		n++
	}
}

// readable reports whether fd has input (poll(2), timeout 0).
func readable(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(p, 0)
	return err == nil && n > 0
}

// TestRunParksWithoutAnEmptyWait: a quiet pass parks the socket's
// goroutine without asking the kernel whether more is ready, and loses
// nothing by it: a datagram sent while a pass runs, and a Wake from
// another goroutine, come back as events. The pass sleeps past 10 ms
// after the send so that the runtime's sysmon polls the network first (it
// does when nobody has for 10 ms) and the notice waits in the poller for
// a goroutine that has not parked yet, the notice a new RawConn.Read per
// turn would clear. A pass that is not quiet makes the goroutine ask.
func TestRunParksWithoutAnEmptyWait(t *testing.T) {
	for _, quiet := range []bool{true, false} {
		t.Run(fmt.Sprint("quiet=", quiet), func(t *testing.T) {
			s, err := NewParked()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fds := addPair(t, s)
			const turns = 20
			var got []int32
			var wakers sync.WaitGroup
			defer wakers.Wait() // before Close: Wake reads the descriptor Close clears
			pass, sockCalls := 0, 0
			// A lost notice would leave Run waiting for the hour-long
			// deadline; after 5 s this fails the test and wakes Run
			// until it ends.
			ended := make(chan struct{})
			wakers.Go(func() {
				select {
				case <-ended:
					return
				case <-time.After(5 * time.Second):
					t.Error("Run did not return an event that was ready")
				}
				for {
					select {
					case <-ended:
						return
					case <-time.After(50 * time.Millisecond):
						s.Wake()
					}
				}
			})
			s.Arm(time.Now().Add(time.Millisecond), time.Time{})
			err = s.Run(func(evs []unix.EpollEvent) (bool, bool) {
				pass++
				if len(evs) == 1 && evs[0].Fd == int32(fds[0]) {
					sockCalls++ // the socket's own goroutine
				}
				for _, ev := range evs {
					got = append(got, ev.Fd)
					switch ev.Fd {
					case TagTimer:
						s.TimerFired()
					case TagWake:
					default:
						if drain(fds[0]) == 0 {
							// A tag with nothing to read (Run's contract):
							// not an event of the test's.
							got = got[:len(got)-1]
						}
					}
				}
				switch {
				case len(got) >= turns+2:
					return quiet, true
				case pass == 3:
					// Ready while this pass runs, and nothing else due:
					// a lost notice hangs Run.
					if _, err := unix.Write(fds[1], []byte("x")); err != nil {
						t.Error(err)
					}
					time.Sleep(30 * time.Millisecond)
					s.Arm(time.Now().Add(time.Hour), time.Time{})
					return quiet, false
				case pass == 4:
					s.Arm(time.Now().Add(time.Hour), time.Time{})
					wakers.Go(func() { time.Sleep(5 * time.Millisecond); s.Wake() })
					time.Sleep(30 * time.Millisecond)
					return quiet, false
				}
				s.Arm(time.Now().Add(time.Millisecond), time.Time{})
				return quiet, false
			})
			close(ended)
			if err != nil {
				t.Fatal(err)
			}
			var socks, wakes int
			timers := 0
			for _, tag := range got {
				switch tag {
				case int32(fds[0]):
					socks++
				case TagWake:
					wakes++
				case TagTimer:
					timers++
				}
			}
			if socks != 1 || wakes != 1 {
				t.Fatalf("events %v: %d for the socket, %d wakes; want one of each", got, socks, wakes)
			}
			// Quiet: one check, on entering the poller; not quiet, one
			// more after each of the socket's passes.
			if quiet && s.checks.Load() != 1 || !quiet && s.checks.Load() != int64(1+sockCalls) {
				t.Fatalf("quiet=%v: %d readiness checks in %d passes (%d the timer's, %d the socket's)", quiet, s.checks.Load(), pass, timers, sockCalls)
			}
		})
	}
}

// TestLateTimerReadsSocketsFirst: the timer's side, woken long after its
// deadline (the process stalled) while a datagram waited, passes the
// socket in the same batch as TagTimer: the loops read packets before
// they run timers, so a stall is not taken for the peer's silence. So it
// does on time once a detection time has passed (Arm's detectAt), the armed
// deadline's or a later one's that the pass also runs. Woken on time
// with none passed, it passes TagTimer alone (checked only when the
// machine let it wake on time). The timer's side runs alone here: with
// the socket's goroutine, that one may take the datagram first, which is
// as good.
func TestLateTimerReadsSocketsFirst(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		fds := addPair(t, s)
		// Only the timer's side runs here: the socket's goroutine, which
		// would take the datagram, has not run yet (as under CPU
		// saturation, when the poller readied it but no thread ran it).
		for _, c := range []struct {
			name string
			late bool
			// detect is the detection time after the armed deadline
			// (Arm's detectAt); negative: none.
			detect time.Duration
			// past: the deadlines have passed when the timer runs, by
			// less than lateWake.
			past bool
			read bool
		}{
			{"late", true, -1, false, true},
			{"on time", false, -1, false, false},
			{"on time, a detection time", false, 0, false, true},
			{"on time, a detection time not yet", false, 10 * time.Millisecond, false, false},
			{"a detection time just after the armed deadline, both passed", false, 200 * time.Microsecond, true, true},
		} {
			due := time.Now().Add(20 * time.Millisecond)
			switch {
			case c.late:
				due = time.Now().Add(time.Millisecond)
			case c.past:
				due = time.Now().Add(-500 * time.Microsecond)
			}
			var detect time.Time
			if c.detect >= 0 {
				detect = due.Add(c.detect)
			}
			s.Arm(due, detect)
			if _, err := unix.Write(fds[1], []byte("x")); err != nil {
				t.Fatal(err)
			}
			if c.late {
				time.Sleep(10 * time.Millisecond) // the stall
			}
			var got []int32
			var woke time.Duration // after the deadline
			s.stopped.Store(false)
			s.body = func(evs []unix.EpollEvent) (bool, bool) {
				woke = time.Since(due)
				for _, ev := range evs {
					got = append(got, ev.Fd)
				}
				s.TimerFired()
				return true, true
			}
			if err := s.runTimer(); err != nil {
				t.Fatal(err)
			}
			drain(fds[0])
			want := []int32{int32(fds[0]), TagTimer}
			if !c.late && !c.read && woke > lateWake {
				// Meant to be on time, but the machine kept the timer's
				// goroutine from a CPU: late, and rightly treated so.
				t.Logf("%s: woke %v after its deadline; its batch %v", c.name, woke, got)
				continue
			}
			if !c.read {
				want = want[1:]
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s: the timer's batch %v, want %v (woke %v after the deadline)", c.name, got, want, woke)
			}
		}
	})
}

// TestSocketPassAfterDetection: once a detection time has passed
// (Arm's detectAt), or the armed deadline long ago (a stall), a socket's pass
// (which runs the loop's timers too) passes the other sockets that have
// input beside its own tag, so that an advert waiting on another socket
// counts before the deadline is acted on; otherwise only its own tag.
func TestSocketPassAfterDetection(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		a, b := addPair(t, s), addPair(t, s)
		both, own := []int32{int32(a[0]), int32(b[0])}, []int32{int32(a[0])}
		const none = time.Duration(-1 << 62)
		for _, c := range []struct {
			name string
			// armed and detect are the deadlines, from now (detect:
			// none for no detection time).
			armed, detect time.Duration
			want          []int32
		}{
			{"a detection time passed", -100 * time.Microsecond, -100 * time.Microsecond, both},
			{"a detection time not yet", time.Hour, time.Hour, own},
			{"an advert deadline passed", -100 * time.Microsecond, none, own},
			{"an advert deadline passed, then a detection time", -300 * time.Microsecond, -100 * time.Microsecond, both},
			{"an advert deadline passed, a detection time not yet", -100 * time.Microsecond, time.Hour, own},
			{"an advert deadline passed long ago (a stall)", -10 * time.Millisecond, none, both},
		} {
			now := time.Now()
			var detect time.Time
			if c.detect != none {
				detect = now.Add(c.detect)
			}
			s.Arm(now.Add(c.armed), detect)
			for _, fd := range []int{a[1], b[1]} {
				if _, err := unix.Write(fd, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			// Only a's goroutine runs: b's has not yet.
			var got []int32
			var late time.Duration // after the armed deadline
			s.stopped.Store(false)
			s.body = func(evs []unix.EpollEvent) (bool, bool) {
				late = time.Since(now.Add(c.armed))
				for _, ev := range evs {
					got = append(got, ev.Fd)
				}
				return true, true
			}
			k := s.socks[0]
			_ = k.file.SetReadDeadline(time.Time{})
			s.wg.Add(1)
			s.runSocket(k)
			drain(a[0])
			drain(b[0])
			if len(c.want) == 1 && c.armed < 0 && late > lateWake {
				// The machine made the pass late: rightly a stall.
				t.Logf("%s: the pass ran %v after the armed deadline; its batch %v", c.name, late, got)
				continue
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: a's batch %v, want %v", c.name, got, c.want)
			}
		}
		s.Arm(time.Time{}, time.Time{})
	})
}

// TestAddDelWhileRunning: a socket added by the body, or by another
// goroutine (the BFD runner's listeners), passes its tag while Run runs,
// beside the others; one removed passes nothing more, and its duplicate
// is closed within moments (the peer of a removed datagram socket can no
// longer send to it), not when Run ends.
func TestAddDelWhileRunning(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		a := addPair(t, s)
		b, c := newPair(t), newPair(t)
		send := func(fd int) {
			if _, err := unix.Write(fd, []byte("x")); err != nil {
				t.Error(err)
			}
		}
		var outside sync.WaitGroup
		defer outside.Wait()
		send(a[1])
		runSteps(t, s,
			func(evs []unix.EpollEvent) bool {
				one(t, "the first socket", evs, int32(a[0]))
				drain(a[0])
				if err := s.Add(b[0], b[0]); err != nil {
					t.Error(err)
				}
				send(b[1])
				return false
			},
			func(evs []unix.EpollEvent) bool {
				one(t, "a socket the body added", evs, int32(b[0]))
				drain(b[0])
				outside.Go(func() {
					if err := s.Add(c[0], c[0]); err != nil {
						t.Error(err)
					}
					send(c[1])
				})
				return false
			},
			func(evs []unix.EpollEvent) bool {
				one(t, "a socket another goroutine added", evs, int32(c[0]))
				drain(c[0])
				s.Del(b[0])
				unix.Close(b[0])
				b[0] = -1
				send(a[1])
				return false
			},
			func(evs []unix.EpollEvent) bool {
				one(t, "the first socket again", evs, int32(a[0]))
				drain(a[0])
				// Del from another goroutine, then a datagram to what is
				// left: nothing from the removed socket comes first.
				outside.Go(func() {
					s.Del(c[0])
					send(c[1])
					time.Sleep(20 * time.Millisecond)
					send(a[1])
				})
				return false
			},
			func(evs []unix.EpollEvent) bool {
				one(t, "after two Dels", evs, int32(a[0]))
				drain(a[0])
				return true
			})
		// b's only descriptors now are its peer and, until its goroutine
		// closed it, the Set's duplicate: a send fails once that is gone.
		deadline := time.Now().Add(2 * time.Second)
		for {
			_, err := unix.Write(b[1], []byte("x"))
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the removed socket is still open 2 s after Del")
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// TestWakeAfterClose: the loops' bridges may Wake a Set that has closed;
// it does nothing.
func TestWakeAfterClose(t *testing.T) {
	s, err := NewParked()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Wake()
}

// TestNoWakeIsLost: Wakes from another goroutine while the body runs on
// either side (a socket's datagrams keep its goroutine busy meanwhile):
// a Wake given after the body last saw TagWake comes back as TagWake.
func TestNoWakeIsLost(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		fds := addPair(t, s)
		const n = 2000
		var wakers sync.WaitGroup
		defer wakers.Wait()
		var last atomic.Bool // the last Wake has been given
		done := make(chan error, 1)
		go func() {
			done <- s.Run(func(evs []unix.EpollEvent) (bool, bool) {
				stop := false
				for _, ev := range evs {
					switch ev.Fd {
					case TagWake:
						stop = last.Load()
					case int32(fds[0]):
						drain(fds[0])
					}
				}
				return true, stop
			})
		}()
		wakers.Go(func() {
			for k := range n {
				if k == n-1 {
					last.Store(true)
				}
				s.Wake()
				_, _ = unix.Write(fds[1], []byte("x"))
			}
		})
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			s.Wake()
			t.Fatal("the last Wake did not come back in 5 s")
		}
	})
}

// TestAddWhileRunEnds: sockets added by another goroutine while Run ends
// (the BFD runner's listeners) neither upset Run's wait for its
// goroutines (a WaitGroup misuse panics) nor get lost: the next Run
// passes what each one receives.
func TestAddWhileRunEnds(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		var peers []int
		want := map[int32]bool{}
		for range 50 {
			fds := newPair(t)
			var adder sync.WaitGroup
			adder.Go(func() {
				if err := s.Add(fds[0], fds[0]); err != nil {
					t.Error(err)
				}
			})
			s.Arm(time.Now().Add(100*time.Microsecond), time.Time{})
			runSteps(t, s, func(evs []unix.EpollEvent) bool {
				s.TimerFired()
				return true
			})
			adder.Wait()
			peers = append(peers, fds[1])
			want[int32(fds[0])] = true
		}
		for _, p := range peers {
			if _, err := unix.Write(p, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() {
			done <- s.Run(func(evs []unix.EpollEvent) (bool, bool) {
				for _, ev := range evs {
					if want[ev.Fd] {
						drain(int(ev.Fd))
						delete(want, ev.Fd)
					}
				}
				return true, len(want) == 0
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d sockets of 50 passed nothing in 5 s", len(want))
		}
	})
}

// TestLateWakeAllocatesNothing: the timer's passes, late ones with
// sockets that have input among them, allocate nothing once the Set has
// run a pass (the loops' steady state is allocation-free, and a loaded
// machine makes wake-ups late: bfd/link's TestRunnerStepAllocatesNothing
// caught one in CI).
func TestLateWakeAllocatesNothing(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		a, b := addPair(t, s), addPair(t, s)
		const passes = 100
		buf, x := make([]byte, 16), []byte("x") // the test's own, made before
		read := func(fd int) {
			for {
				if _, err := unix.Read(fd, buf); err != nil {
					return
				}
			}
		}
		var m0, m1 runtime.MemStats
		n, lates := 0, 0
		s.Arm(time.Now().Add(-10*time.Millisecond), time.Time{})
		s.body = func(evs []unix.EpollEvent) (bool, bool) {
			n++
			if len(evs) == 3 {
				lates++ // both sockets and the timer
			}
			s.TimerFired()
			read(a[0])
			read(b[0])
			switch n {
			case 1:
				runtime.ReadMemStats(&m0)
			case 1 + passes:
				runtime.ReadMemStats(&m1)
				return true, true
			}
			// Input on both, and a deadline long past: the next pass is
			// a late one that passes both sockets.
			_, _ = unix.Write(a[1], x)
			_, _ = unix.Write(b[1], x)
			s.Arm(time.Now().Add(-10*time.Millisecond), time.Time{})
			return true, false
		}
		if err := s.runTimer(); err != nil {
			t.Fatal(err)
		}
		if lates < passes {
			t.Fatalf("%d late passes with both sockets of %d", lates, passes)
		}
		if d := m1.Mallocs - m0.Mallocs; d != 0 {
			t.Errorf("%d allocations in %d late passes, want 0", d, passes)
		}
	})
}
