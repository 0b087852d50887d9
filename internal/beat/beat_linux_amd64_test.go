package beat

import (
	"bytes"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestBlockLayout checks block against the offsets thread_amd64.s uses.
func TestBlockLayout(t *testing.T) {
	var b block
	for _, c := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"fd", unsafe.Offsetof(b.fd), 0}, {"msgs", unsafe.Offsetof(b.msgs), 8},
		{"nmsgs", unsafe.Offsetof(b.nmsgs), 16}, {"next", unsafe.Offsetof(b.next), 24},
		{"interval", unsafe.Offsetof(b.interval), 32}, {"lease", unsafe.Offsetof(b.lease), 40},
		{"stop", unsafe.Offsetof(b.stop), 48}, {"sent", unsafe.Offsetof(b.sent), 56},
		{"failed", unsafe.Offsetof(b.failed), 64}, {"errno", unsafe.Offsetof(b.errno), 72},
		{"lapsed", unsafe.Offsetof(b.lapsed), 80}, {"tid", unsafe.Offsetof(b.tid), 88},
		{"wake", unsafe.Offsetof(b.wake), 96}, {"now", unsafe.Offsetof(b.now), 112},
		{"allSigs", unsafe.Offsetof(b.allSigs), 128}, {"oldSigs", unsafe.Offsetof(b.oldSigs), 136},
		{"vdso", unsafe.Offsetof(b.vdso), 144},
	} {
		if c.got != c.want {
			t.Errorf("block.%s at %d, thread_amd64.s reads %d", c.name, c.got, c.want)
		}
	}
	if unsafe.Sizeof(b) > headerLen {
		t.Errorf("block is %d bytes, more than headerLen %d", unsafe.Sizeof(b), headerLen)
	}
	if unsafe.Sizeof(mmsghdr{}) != 64 {
		t.Errorf("mmsghdr is %d bytes, want 64", unsafe.Sizeof(mmsghdr{}))
	}
}

// pair returns the two ends of a datagram socket pair, closed when t ends.
func pair(t *testing.T) (send, recv int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// receive returns the arrival times of the messages that reach fd within
// d, each checked against want, in turn from want[k0].
func receive(t *testing.T, fd int, d time.Duration, k0 int, want ...[]byte) []time.Time {
	t.Helper()
	var at []time.Time
	end := time.Now().Add(d)
	buf := make([]byte, 256)
	k := k0
	for {
		left := time.Until(end)
		if left <= 0 {
			return at
		}
		tv := unix.NsecToTimeval(int64(left))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			t.Fatal(err)
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if w := want[k%len(want)]; !bytes.Equal(buf[:n], w) {
			t.Fatalf("message %d (%v into the window) is %q, want %q", len(at), time.Until(end), buf[:n], w)
		}
		k++
		at = append(at, time.Now())
	}
}

func start(t *testing.T, fd int, msgs []Msg, interval time.Duration, first, lease time.Time) *Sender {
	t.Helper()
	s, err := Start(fd, msgs, interval, first, lease)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func TestSendsOnItsBeatUntilStopped(t *testing.T) {
	a, b := pair(t)
	m1, m2 := []byte("advert one"), []byte("advert two, longer")
	const ival = 5 * time.Millisecond
	now := time.Now()
	s := start(t, a, []Msg{{Data: m1}, {Data: m2}}, ival, now.Add(ival), now.Add(time.Hour))
	at := receive(t, b, 300*time.Millisecond, 0, m1, m2)
	// 60 beats of two messages in 300 ms; a loaded machine may run the
	// thread late, and a late beat is one send, not a burst.
	if len(at) < 40 || len(at) > 122 {
		t.Fatalf("%d messages in 300 ms at two every 5 ms", len(at))
	}
	if !s.Running() {
		t.Fatal("not running before Stop")
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("running after Stop")
	}
	st := s.State()
	// Stop returned once the thread was gone: what it sent is all queued.
	rest := receive(t, b, 50*time.Millisecond, len(at), m1, m2)
	if got := uint64(len(at) + len(rest)); st.Sent != got || st.Failed != 0 {
		t.Fatalf("State says %d sent, %d failed; %d arrived", st.Sent, st.Failed, got)
	}
	if (len(at)+len(rest))%2 != 0 {
		t.Fatalf("a beat was cut: %d messages", len(at)+len(rest))
	}
	if err := s.Stop(); err != nil {
		t.Fatal("second Stop:", err)
	}
}

// TestStopWakesTheThread: a thread asleep until a deadline an hour away
// leaves at once (Stop would give up after stopWait with ErrStuck).
func TestStopWakesTheThread(t *testing.T) {
	a, _ := pair(t)
	now := time.Now()
	s := start(t, a, []Msg{{Data: []byte("x")}}, time.Hour, now.Add(time.Hour), now.Add(2*time.Hour))
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st.Sent != 0 {
		t.Fatalf("sent %d", st.Sent)
	}
}

func TestLeaseEndsTheBeat(t *testing.T) {
	a, b := pair(t)
	m := []byte("advert")
	const ival = 5 * time.Millisecond
	now := time.Now()
	s := start(t, a, []Msg{{Data: m}}, ival, now.Add(ival), now.Add(100*time.Millisecond))
	at := receive(t, b, 300*time.Millisecond, 0, m)
	if len(at) == 0 || len(at) > 20 {
		t.Fatalf("%d adverts with a 100 ms lease at 5 ms", len(at))
	}
	if last := at[len(at)-1]; last.After(now.Add(200 * time.Millisecond)) {
		t.Fatalf("an advert %v after the start, past the 100 ms lease", last.Sub(now))
	}
	if s.Running() {
		t.Fatal("still running past its lease")
	}
	if st := s.State(); !st.Lapsed || st.Sent != uint64(len(at)) {
		t.Fatalf("State %+v, %d arrived", st, len(at))
	}
}

func TestRenewKeepsItGoing(t *testing.T) {
	a, b := pair(t)
	m := []byte("advert")
	const ival = 5 * time.Millisecond
	now := time.Now()
	s := start(t, a, []Msg{{Data: m}}, ival, now.Add(ival), now.Add(50*time.Millisecond))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := 0; k < 12; k++ {
			s.Renew(time.Now().Add(50 * time.Millisecond))
			time.Sleep(20 * time.Millisecond)
		}
	}()
	at := receive(t, b, 200*time.Millisecond, 0, m)
	<-done
	if !s.Running() || s.State().Lapsed {
		t.Fatalf("stopped though renewed: %+v", s.State())
	}
	if len(at) < 20 {
		t.Fatalf("%d adverts in 200 ms at 5 ms, renewed", len(at))
	}
}

// TestLateStartSendsOnce: a first deadline long past is one send now and
// the beat from there, not the sends it missed (the engine's "one advert
// however late", RFC 5798 section 6.4.3).
func TestLateStartSendsOnce(t *testing.T) {
	a, b := pair(t)
	m := []byte("advert")
	now := time.Now()
	start(t, a, []Msg{{Data: m}}, 50*time.Millisecond, now.Add(-10*time.Second), now.Add(time.Hour))
	if at := receive(t, b, 40*time.Millisecond, 0, m); len(at) != 1 {
		t.Fatalf("%d adverts in the first 40 ms, want 1", len(at))
	}
}

func TestFailedSendsCounted(t *testing.T) {
	a, b := pair(t)
	unix.Close(b) // the pair's cleanup closes it again: EBADF, ignored
	const ival = 5 * time.Millisecond
	now := time.Now()
	s := start(t, a, []Msg{{Data: []byte("x")}}, ival, now.Add(ival), now.Add(time.Hour))
	time.Sleep(100 * time.Millisecond)
	st := s.State()
	if st.Failed == 0 || st.Err == 0 || st.Sent != 0 {
		t.Fatalf("State %+v after sends to a closed peer", st)
	}
	if !s.Running() {
		t.Fatal("a failing send stopped the thread")
	}
}

// TestSignalsMissTheThread: process-directed signals go to Go's threads,
// and one aimed at the sender thread itself stays pending, blocked (the
// runtime's handler on that thread would crash the process).
func TestSignalsMissTheThread(t *testing.T) {
	a, b := pair(t)
	m := []byte("advert")
	const ival = 2 * time.Millisecond
	now := time.Now()
	s := start(t, a, []Msg{{Data: m}}, ival, now.Add(ival), now.Add(time.Hour))
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	defer signal.Stop(c)
	tid := int(s.b.tid)
	for k := 0; k < 200; k++ {
		if err := unix.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		if err := unix.Tgkill(os.Getpid(), tid, syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		if err := unix.Tgkill(os.Getpid(), tid, syscall.SIGURG); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatal("SIGUSR1 never reached the process's handler")
	}
	if at := receive(t, b, 50*time.Millisecond, 0, m); len(at) == 0 || !s.Running() {
		t.Fatalf("%d adverts after the signals, running %v", len(at), s.Running())
	}
}

func TestStartRefuses(t *testing.T) {
	a, _ := pair(t)
	now := time.Now()
	if _, err := Start(a, nil, time.Second, now, now); err == nil {
		t.Error("no messages: started")
	}
	if _, err := Start(a, []Msg{{Data: []byte("x")}}, 0, now, now); err == nil {
		t.Error("interval 0: started")
	}
}

// TestVDSOClockFound: the thread reads the clock through the vDSO, which
// every linux/amd64 kernel maps (a parse that goes wrong would leave the
// system call, silently).
func TestVDSOClockFound(t *testing.T) {
	if vdsoClock() == 0 {
		t.Fatal("the vDSO's clock_gettime was not found")
	}
}
