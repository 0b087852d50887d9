package beat

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
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
	vdso     uintptr // the vDSO's clock_gettime; 0: the system call
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
	// monotonic reading) maps onto CLOCK_MONOTONIC through them (monoOf).
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
	b.vdso = vdsoClock()
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
		Lapsed: atomic.LoadInt32(&b.lapsed) != 0,
	}
}

// stopWait bounds Stop's wait. The thread leaves as soon as it runs (it
// sleeps on the futex Stop wakes, or finishes one sendmmsg first), so the
// wait is one scheduling of a thread.
const stopWait = time.Second

// Stop stops the thread and returns once it is gone: nothing it sends can
// follow what the caller sends next. State keeps its last value. Stop of a
// stopped Sender does nothing. A thread not gone within stopWait is
// ErrStuck: its memory is left mapped rather than freed under it.
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

// vdsoClock is the address of the vDSO's clock_gettime, found once; 0 if
// it cannot be found (the thread then makes the system call, which costs
// about 1.3 µs here against 0.06: docs/benchmarks.md, "The advert thread").
var vdsoClock = sync.OnceValue(func() uintptr {
	const atSysinfoEhdr = 33 // AT_SYSINFO_EHDR: where the kernel mapped the vDSO
	base := auxv(atSysinfoEhdr)
	if base == 0 {
		return 0
	}
	// The vDSO is an ELF image in memory; its section headers end it.
	// Read through /proc/self/mem: no pointer made from a number.
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		return 0
	}
	defer mem.Close()
	hdr := make([]byte, 64)
	if _, err := mem.ReadAt(hdr, int64(base)); err != nil || string(hdr[:4]) != elf.ELFMAG || elf.Class(hdr[elf.EI_CLASS]) != elf.ELFCLASS64 {
		return 0
	}
	shoff := binary.LittleEndian.Uint64(hdr[40:48])
	shentsize, shnum := binary.LittleEndian.Uint16(hdr[58:60]), binary.LittleEndian.Uint16(hdr[60:62])
	size := shoff + uint64(shentsize)*uint64(shnum)
	if size > 1<<20 {
		return 0
	}
	img := make([]byte, size)
	if _, err := mem.ReadAt(img, int64(base)); err != nil {
		return 0
	}
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return 0
	}
	var load *elf.Prog
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			load = p
			break
		}
	}
	syms, err := f.DynamicSymbols()
	if load == nil || err != nil {
		return 0
	}
	for _, s := range syms {
		if s.Name == "__vdso_clock_gettime" && elf.ST_TYPE(s.Info) == elf.STT_FUNC && s.Value != 0 {
			return base + uintptr(load.Off) - uintptr(load.Vaddr) + uintptr(s.Value)
		}
	}
	return 0
})

// auxv is the value of the auxiliary vector's entry for key, 0 if none.
func auxv(key uint64) uintptr {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 0
	}
	for ; len(b) >= 16; b = b[16:] {
		if binary.NativeEndian.Uint64(b) == key {
			return uintptr(binary.NativeEndian.Uint64(b[8:]))
		}
	}
	return 0
}
