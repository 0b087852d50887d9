package beat

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Supported reports whether this build has the sender thread.
const Supported = true

func spawn(b, stack, flags uintptr) int64

// block is what the thread reads and writes, at the offsets of
// thread_amd64.s (TestBlockLayout). Its first page of a mapping outside
// the Go heap holds it and the messages; the thread's stack is the last
// page.
type block struct {
	fd       int64
	msgs     uintptr // [nmsgs]mmsghdr
	nmsgs    int64
	next     int64 // the next send, CLOCK_MONOTONIC ns (the thread's)
	interval int64
	lease    int64 // no send after this, CLOCK_MONOTONIC ns (the owner's)
	stop     int32 // the futex the thread sleeps on
	_        int32
	sent     uint64
	failed   uint64
	errno    int64 // of the last failed sendmmsg
	lapsed   int32
	_        int32
	tid      int32 // cleared by the kernel when the thread is gone
	_        int32
	wake     unix.Timespec
	now      unix.Timespec
	allSigs  uint64
	oldSigs  uint64
}

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   uint32
}

const (
	headerLen = 256 // the block, rounded up
	stackLen  = 4096
	// MaxMsgs bounds the messages of one Sender (an advert to each
	// unicast peer), as the kernel bounds one sendmmsg (UIO_MAXIOV).
	MaxMsgs = 1024
	// futex(2) operations: FUTEX_WAIT, and FUTEX_WAKE | FUTEX_PRIVATE_FLAG.
	futexWait        = 0
	futexWakePrivate = 1 | 128
	cloneFlags       = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND |
		unix.CLONE_THREAD | unix.CLONE_SYSVSEM | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID
)

// Sender is one sender thread. Its methods are for one owner goroutine.
type Sender struct {
	mem []byte
	b   *block
	// wall and mono are one instant on the two clocks: a time.Time (its
	// monotonic reading) maps onto CLOCK_MONOTONIC through them.
	wall time.Time
	mono int64
	last State // once the thread is gone
}

func monoNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func (s *Sender) monoOf(t time.Time) int64 { return s.mono + int64(t.Sub(s.wall)) }

func (s *Sender) timeOf(ns int64) time.Time { return s.wall.Add(time.Duration(ns - s.mono)) }

// Start starts a thread that sends msgs on fd (a socket the caller keeps
// open until Stop has returned) at first and every interval after it,
// until lease (Renew moves it) or Stop.
func Start(fd int, msgs []Msg, interval time.Duration, first, lease time.Time) (*Sender, error) {
	if len(msgs) == 0 || len(msgs) > MaxMsgs {
		return nil, fmt.Errorf("beat: %d messages (1 to %d)", len(msgs), MaxMsgs)
	}
	if interval <= 0 {
		return nil, fmt.Errorf("beat: interval %v", interval)
	}
	size := headerLen + len(msgs)*(int(unsafe.Sizeof(mmsghdr{}))+int(unsafe.Sizeof(unix.Iovec{})))
	for _, m := range msgs {
		size += align(len(m.Name)) + align(len(m.Control)) + align(len(m.Data))
	}
	size = (size+4095)&^4095 + stackLen
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("beat: %w", err)
	}
	s := &Sender{mem: mem, b: (*block)(unsafe.Pointer(&mem[0])), wall: time.Now(), mono: monoNow()}
	hdrs := unsafe.Slice((*mmsghdr)(unsafe.Pointer(&mem[headerLen])), len(msgs))
	off := headerLen + len(msgs)*int(unsafe.Sizeof(mmsghdr{}))
	iovs := unsafe.Slice((*unix.Iovec)(unsafe.Pointer(&mem[off])), len(msgs))
	off += len(msgs) * int(unsafe.Sizeof(unix.Iovec{}))
	put := func(b []byte) *byte {
		if len(b) == 0 {
			return nil
		}
		p := &mem[off]
		copy(mem[off:], b)
		off += align(len(b))
		return p
	}
	for k, m := range msgs {
		h := &hdrs[k].hdr
		h.Name = put(m.Name)
		h.Namelen = uint32(len(m.Name))
		iovs[k].Base = put(m.Data)
		iovs[k].SetLen(len(m.Data))
		h.Iov = &iovs[k]
		h.SetIovlen(1)
		if len(m.Control) > 0 {
			h.Control = put(m.Control)
			h.SetControllen(len(m.Control))
		}
	}
	b := s.b
	b.fd, b.msgs, b.nmsgs = int64(fd), uintptr(unsafe.Pointer(&hdrs[0])), int64(len(msgs))
	b.interval, b.next, b.lease = int64(interval), s.monoOf(first), s.monoOf(lease)
	b.allSigs = ^uint64(0)
	tid := spawn(uintptr(unsafe.Pointer(b)), uintptr(unsafe.Pointer(&mem[len(mem)-64])), cloneFlags)
	if tid < 0 {
		unix.Munmap(mem)
		return nil, fmt.Errorf("beat: clone: %w", syscall.Errno(-tid))
	}
	return s, nil
}

func align(n int) int { return (n + 7) &^ 7 }

// Renew lets the thread send until until.
func (s *Sender) Renew(until time.Time) {
	if s.b != nil {
		atomic.StoreInt64(&s.b.lease, s.monoOf(until))
	}
}

// Running reports whether the thread is still there: false after Stop, or
// once it stopped at its lease's end.
func (s *Sender) Running() bool { return s.b != nil && atomic.LoadInt32(&s.b.tid) != 0 }

// State is what the thread has done so far.
func (s *Sender) State() State {
	b := s.b
	if b == nil {
		return s.last
	}
	return State{
		Sent: atomic.LoadUint64(&b.sent), Failed: atomic.LoadUint64(&b.failed),
		Err:    syscall.Errno(atomic.LoadInt64(&b.errno)),
		Next:   s.timeOf(atomic.LoadInt64(&b.next)),
		Lapsed: atomic.LoadInt32(&b.lapsed) != 0,
	}
}

// ErrStuck is Stop's error when the thread did not go within stopWait:
// its memory is left mapped rather than freed under it.
var ErrStuck = errors.New("beat: the sender thread did not stop")

// stopWait bounds Stop's wait. The thread leaves as soon as it runs (it
// sleeps on the futex Stop wakes, or finishes one sendmmsg first), so the
// wait is one scheduling of a thread.
const stopWait = time.Second

// Stop stops the thread and returns once it is gone: nothing it sends can
// follow what the caller sends next. State keeps its last value. Stop of a stopped Sender does nothing.
func (s *Sender) Stop() error {
	b := s.b
	if b == nil {
		return nil
	}
	atomic.StoreInt32(&b.stop, 1)
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&b.stop)), futexWakePrivate, 1, 0, 0, 0)
	end := time.Now().Add(stopWait)
	for {
		tid := atomic.LoadInt32(&b.tid)
		if tid == 0 {
			break
		}
		if time.Now().After(end) {
			s.keep()
			return ErrStuck
		}
		// The kernel's wake at the thread's exit (CLONE_CHILD_CLEARTID)
		// is a shared futex wake: this wait must not be private.
		ts := unix.NsecToTimespec(int64(10 * time.Millisecond))
		_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(&b.tid)), futexWait, uintptr(tid), uintptr(unsafe.Pointer(&ts)), 0, 0)
	}
	s.keep()
	_ = unix.Munmap(s.mem)
	return nil
}

// keep copies the thread's State out of the mapping before it goes.
func (s *Sender) keep() {
	s.last = s.State()
	s.b, s.mem = nil, nil
}
