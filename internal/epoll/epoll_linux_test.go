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

// TestWait runs a Set through what the loops rely on: an armed
// deadline comes back as TagTimer, a Wake from another goroutine as
// TagWake, and a readable socket with the tag it was added with.
func TestWait(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		tags := func() []int32 {
			evs, err := s.Wait()
			if err != nil {
				t.Fatal(err)
			}
			var out []int32
			for _, ev := range evs {
				out = append(out, ev.Fd)
			}
			return out
		}

		due := time.Now().Add(20 * time.Millisecond)
		s.Arm(due)
		if got := tags(); len(got) != 1 || got[0] != TagTimer {
			t.Fatalf("after Arm: tags %v, want [%d]", got, TagTimer)
		}
		if time.Now().Before(due) {
			t.Fatalf("timer fired before its deadline")
		}
		if !s.Armed().Equal(due) {
			t.Fatalf("Armed() = %v, want %v", s.Armed(), due)
		}
		s.TimerFired()
		if !s.Armed().IsZero() {
			t.Fatalf("Armed() after TimerFired = %v, want zero", s.Armed())
		}

		woke := make(chan struct{})
		go func() { defer close(woke); s.Wake() }()
		if got := tags(); len(got) != 1 || got[0] != TagWake {
			t.Fatalf("after Wake: tags %v, want [%d]", got, TagWake)
		}
		<-woke // before Close: Wake reads the descriptor Close clears
		s.DrainWake()

		fds := addPair(t, s)
		if _, err := unix.Write(fds[1], []byte("x")); err != nil {
			t.Fatal(err)
		}
		if got := tags(); len(got) != 1 || got[0] != int32(fds[0]) {
			t.Fatalf("after a datagram: tags %v, want [%d]", got, fds[0])
		}
		s.Del(fds[0])
	})
}

// TestTimerFiredNeedsNoRead: TimerFired leaves the expiry unread; the
// next Arm clears it (no second TagTimer before the new deadline), and a
// Wait without an Arm reads it itself (no busy loop on a stale expiry).
func TestTimerFiredNeedsNoRead(t *testing.T) {
	withSet(t, func(t *testing.T, s *Set) {
		var wakers sync.WaitGroup
		defer wakers.Wait() // before Close: Wake reads the descriptor Close clears
		wakeSoon := func() {
			wakers.Go(func() { time.Sleep(10 * time.Millisecond); s.Wake() })
		}
		wait := func(stage string, want int32) {
			t.Helper()
			evs, err := s.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 1 || evs[0].Fd != want {
				t.Fatalf("%s: events %v, want one tagged %d", stage, evs, want)
			}
		}
		for i := range 5 {
			s.Arm(time.Now().Add(2 * time.Millisecond))
			wait(fmt.Sprint(i, ": the deadline"), TagTimer)
			s.TimerFired()
		}
		s.Arm(time.Now().Add(time.Hour)) // clears the last expiry
		wakeSoon()
		wait("armed an hour ahead", TagWake)
		s.DrainWake()
		s.Arm(time.Now().Add(time.Millisecond))
		wait("the last deadline", TagTimer)
		s.TimerFired()
		wakeSoon()
		wait("not armed again", TagWake)
	})
}

// TestRunParksWithoutAnEmptyWait: a quiet pass parks Run without another
// epoll_wait, and loses nothing by it: a datagram sent while the pass
// runs, and a Wake from another goroutine, come back as events. The
// pass sleeps past 10 ms after the send so that the runtime's sysmon
// polls the network first (it does when nobody has for 10 ms) and the
// notice waits in the poller for a goroutine that has not parked yet,
// the notice a Wait per turn would clear.
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
			for _, tag := range got {
				switch tag {
				case int32(fds[0]):
					socks++
				case TagWake:
					wakes++
				}
			}
			if socks != 1 || wakes != 1 {
				t.Fatalf("events %v: %d for the socket, %d wakes; want one of each", got, socks, wakes)
			}
			// Quiet: no empty epoll_wait but for a race (an event seen by
			// the runtime's poller and by the pass's epoll_wait both).
			if quiet && s.empty > 2 || !quiet && s.empty < pass-2 {
				t.Fatalf("quiet=%v: %d empty epoll_waits in %d passes", quiet, s.empty, pass)
			}
		})
	}
}
