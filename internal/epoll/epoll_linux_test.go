package epoll

import (
	"fmt"
	"sync"
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

// addPair adds to s, tagged with its descriptor, one end (fds[0]) of a
// datagram socket pair; writing to fds[1] makes it readable. Both are
// closed when the test ends.
func addPair(t *testing.T, s *Set) [2]int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	if err := s.Add(fds[0], fds[0]); err != nil {
		t.Fatal(err)
	}
	return [2]int(fds)
}

// runSteps runs s with steps[i] as the body of pass i: the events it is
// given, and it returns stop. Fails the test if Run outlives 5 s (an event
// that never came).
func runSteps(t *testing.T, s *Set, steps ...func(evs []unix.EpollEvent) bool) {
	t.Helper()
	done := make(chan error, 1)
	pass := 0
	go func() {
		done <- s.Run(func(evs []unix.EpollEvent) (bool, bool) {
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
		s.Arm(due)
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
				s.DrainWake()
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
					s.Arm(time.Now().Add(2 * time.Millisecond))
				} else {
					s.Arm(time.Now().Add(time.Hour)) // clears the last expiry
					wakeSoon()
				}
				return false
			})
		}
		steps = append(steps,
			func(evs []unix.EpollEvent) bool {
				one(t, "armed an hour ahead", evs, TagWake)
				s.DrainWake()
				s.Arm(time.Now().Add(time.Millisecond))
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
				s.DrainWake()
				return true
			})
		s.Arm(time.Now().Add(2 * time.Millisecond))
		runSteps(t, s, steps...)
	})
}

// TestRunStopsFromEitherSide: body's stop ends Run whichever side it ran
// on, the timer's or the sockets', and Run can run again after.
func TestRunStopsFromEitherSide(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		var wakers sync.WaitGroup
		defer wakers.Wait()
		s.Arm(time.Now().Add(time.Millisecond))
		runSteps(t, s, func(evs []unix.EpollEvent) bool {
			one(t, "timer side", evs, TagTimer)
			s.TimerFired()
			return true
		})
		wakers.Go(s.Wake)
		runSteps(t, s, func(evs []unix.EpollEvent) bool {
			one(t, "socket side", evs, TagWake)
			s.DrainWake()
			return true
		})
	})
}

// TestRunParksWithoutAnEmptyWait: a quiet pass parks Run without another
// epoll_wait, and loses nothing by it: a datagram sent while the pass
// runs, and a Wake from another goroutine, come back as events. The
// pass sleeps past 10 ms after the send so that the runtime's sysmon
// polls the network first (it does when nobody has for 10 ms) and the
// notice waits in the poller for a goroutine that has not parked yet,
// the notice a new rc.Read per turn would clear.
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
			b := make([]byte, 16)
			pass := 0
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
			s.Arm(time.Now().Add(time.Millisecond))
			err = s.Run(func(evs []unix.EpollEvent) (bool, bool) {
				pass++
				for _, ev := range evs {
					got = append(got, ev.Fd)
					switch ev.Fd {
					case TagTimer:
						s.TimerFired()
					case TagWake:
						s.DrainWake()
					default:
						for {
							if _, err := unix.Read(fds[0], b); err != nil {
								break
							}
						}
					}
				}
				switch {
				case len(got) >= turns+2:
					return quiet, true
				case pass == 3:
					// Ready after this pass's epoll_wait, and nothing
					// else due: a lost notice hangs Run.
					if _, err := unix.Write(fds[1], []byte("x")); err != nil {
						t.Error(err)
					}
					time.Sleep(30 * time.Millisecond)
					s.Arm(time.Now().Add(time.Hour))
					return quiet, false
				case pass == 4:
					s.Arm(time.Now().Add(time.Hour))
					wakers.Go(func() { time.Sleep(5 * time.Millisecond); s.Wake() })
					time.Sleep(30 * time.Millisecond)
					return quiet, false
				}
				s.Arm(time.Now().Add(time.Millisecond))
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
			// Quiet: no empty epoll_wait but for a race (an event seen by
			// the runtime's poller and by the pass's epoll_wait both). The
			// timer's passes make none (its side waits on the timerfd).
			if quiet && s.empty > 2 || !quiet && s.empty < pass-timers-2 {
				t.Fatalf("quiet=%v: %d empty epoll_waits in %d passes (%d the timer's)", quiet, s.empty, pass, timers)
			}
		})
	}
}

// TestLateTimerReadsSocketsFirst: the timer's side, woken long after its
// deadline (the process stalled) while a datagram waited, passes the
// socket in the same batch as TagTimer: the loops read packets before
// they run timers, so a stall is not taken for the peer's silence. Woken
// on time it passes TagTimer alone (no epoll_wait). The timer's side runs
// alone here: with the socket's side, that one may take the datagram
// first, which is as good.
func TestLateTimerReadsSocketsFirst(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		fds := addPair(t, s)
		for _, late := range []bool{true, false} {
			due := time.Now().Add(time.Millisecond)
			if !late {
				due = time.Now().Add(20 * time.Millisecond)
			}
			s.Arm(due)
			if _, err := unix.Write(fds[1], []byte("x")); err != nil {
				t.Fatal(err)
			}
			if late {
				time.Sleep(10 * time.Millisecond) // the stall
			}
			var got []int32
			s.stopped = false
			err := s.runTimer(func(evs []unix.EpollEvent) (bool, bool) {
				for _, ev := range evs {
					got = append(got, ev.Fd)
				}
				s.TimerFired()
				return true, true
			})
			if err != nil {
				t.Fatal(err)
			}
			_ = s.file.SetReadDeadline(time.Time{})
			want := []int32{int32(fds[0]), TagTimer}
			if !late {
				want = want[1:]
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("late=%v: the timer's batch %v, want %v", late, got, want)
			}
		}
	})
}
