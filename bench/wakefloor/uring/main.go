// Command uring is the measured prototype of a design vigil did not take
// (docs/benchmarks.md, issue #7): a master's adverts queued ahead in the
// kernel through io_uring, each an absolute IORING_OP_TIMEOUT linked to
// the IORING_OP_SENDMSG of the advert, so that the process wakes once per
// horizon (N adverts) instead of once per advert.
//
//	uring IFNAME N[l]
//
// sends a VRRPv3 advert (VRID 51, priority 150, 192.0.2.100) every 10 ms
// out of IFNAME, N of them queued at a time; a trailing l locks the
// submitting goroutine to its thread. bench/footprint_conc.sh runs it as
// uring-N beside keepalived, vigil and the wake-up floors. What it showed:
// the kernel completes a timeout in task work on the thread that queued
// it and issues the linked send from there, so that thread still wakes for
// every advert; at N = 10 it costs about keepalived's CPU, before any of
// vigil's work, and a stalled process keeps advertising for 100 ms.
package main

import (
	"encoding/binary"
	"log"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

type params struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

type sqe struct {
	opcode, flags uint8
	ioprio        uint16
	fd            int32
	off           uint64
	addr          uint64
	len           uint32
	opFlags       uint32
	userData      uint64
	bufIndex      uint16
	personality   uint16
	spliceFdIn    int32
	addr3, pad    uint64
}

const (
	opSendmsg      = 9
	opTimeout      = 11
	sqeLink        = 1 << 2
	sqeSkipSuccess = 1 << 6
	timeoutAbs     = 1 << 0
	timeoutEtimeOK = 1 << 5
	featSingleMmap = 1 << 0
)

type ring struct {
	fd             int
	sqHead, sqTail *uint32
	sqMask         uint32
	sqArray        []uint32
	sqes           []sqe
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []struct {
		userData uint64
		res      int32
		flags    uint32
	}
	pending uint32
}

func newRing(entries uint32) *ring {
	var p params
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if e != 0 {
		log.Fatal("io_uring_setup: ", e)
	}
	if p.features&featSingleMmap == 0 {
		log.Fatal("no single mmap")
	}
	sz := int(p.sqOff.array + p.sqEntries*4)
	if c := int(p.cqOff.cqes + p.cqEntries*16); c > sz {
		sz = c
	}
	m, err := unix.Mmap(int(fd), 0, sz, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		log.Fatal(err)
	}
	s, err := unix.Mmap(int(fd), 0x10000000, int(p.sqEntries)*64, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		log.Fatal(err)
	}
	r := &ring{fd: int(fd)}
	b := unsafe.Pointer(&m[0])
	r.sqHead = (*uint32)(unsafe.Add(b, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(b, p.sqOff.tail))
	r.sqMask = *(*uint32)(unsafe.Add(b, p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(b, p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&s[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(b, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(b, p.cqOff.tail))
	r.cqMask = *(*uint32)(unsafe.Add(b, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*struct {
		userData uint64
		res      int32
		flags    uint32
	})(unsafe.Add(b, p.cqOff.cqes)), p.cqEntries)
	return r
}

func (r *ring) get() *sqe {
	t := *r.sqTail + r.pending
	i := t & r.sqMask
	r.sqArray[i] = i
	r.pending++
	q := &r.sqes[i]
	*q = sqe{}
	return q
}

func (r *ring) submit() {
	atomic.StoreUint32(r.sqTail, *r.sqTail+r.pending)
	n := r.pending
	r.pending = 0
	if _, _, e := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(n), 0, 0, 0, 0); e != 0 {
		log.Fatal("io_uring_enter: ", e)
	}
}

func (r *ring) reap() (fails int) {
	h := *r.cqHead
	t := atomic.LoadUint32(r.cqTail)
	for ; h != t; h++ {
		c := r.cqes[h&r.cqMask]
		if c.res < 0 && c.res != -int32(unix.ETIME) {
			fails++
		}
	}
	atomic.StoreUint32(r.cqHead, h)
	return
}

func main() {
	ifname := os.Args[1]
	h := os.Args[2]
	if strings.HasSuffix(h, "l") {
		runtime.LockOSThread()
		h = strings.TrimSuffix(h, "l")
	}
	horizon, _ := strconv.Atoi(h)
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		log.Fatal(err)
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 112)
	if err != nil {
		log.Fatal(err)
	}
	unix.SetsockoptString(s, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
	unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 255)
	unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_TTL, 255)
	unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0)
	unix.SetsockoptIPMreqn(s, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(ifi.Index)})
	// Everything the kernel reads after submission lives outside Go's heap.
	mem, _ := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	pay := mem[0:12]
	pay[0], pay[1], pay[2], pay[3] = 0x31, 51, 150, 1
	binary.BigEndian.PutUint16(pay[4:], 1)
	copy(pay[8:], net.IPv4(192, 0, 2, 100).To4())
	// The checksum is left 0: nobody listens in the peer namespace, and the
	// kernel's receive path costs the same whatever the advert holds.
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&mem[64]))
	sa.Family = unix.AF_INET
	sa.Addr = [4]byte{224, 0, 0, 18}
	iov := (*unix.Iovec)(unsafe.Pointer(&mem[128]))
	iov.Base = &pay[0]
	iov.SetLen(12)
	msg := (*unix.Msghdr)(unsafe.Pointer(&mem[192]))
	msg.Name = (*byte)(unsafe.Pointer(sa))
	msg.Namelen = unix.SizeofSockaddrInet4
	msg.Iov = iov
	msg.Iovlen = 1
	ts := unsafe.Slice((*unix.Timespec)(unsafe.Pointer(&mem[1024])), 64)

	r := newRing(256)
	tfd, _ := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	rc, _ := os.NewFile(uintptr(tfd), "timerfd").SyscallConn()
	const interval = 10 * time.Millisecond
	mono := func() time.Duration {
		var t unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &t)
		return time.Duration(t.Nano())
	}
	next := mono() + interval // the next advert not yet queued
	slot := 0
	queue := func() {
		// queue the adverts due before next+horizon
		for k := 0; k < horizon; k++ {
			ts[slot] = unix.NsecToTimespec(int64(next))
			t := r.get()
			t.opcode, t.flags, t.addr, t.len, t.opFlags, t.userData = opTimeout, sqeLink|sqeSkipSuccess, uint64(uintptr(unsafe.Pointer(&ts[slot]))), 1, timeoutAbs|timeoutEtimeOK, 1
			m := r.get()
			m.opcode, m.flags, m.fd, m.addr, m.userData = opSendmsg, sqeSkipSuccess, int32(s), uint64(uintptr(unsafe.Pointer(msg))), 2
			slot = (slot + 1) % 64
			next += interval
		}
		r.submit()
	}
	var fails int
	wake := func() {
		// wake half an interval before the last queued advert is due
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(next - interval - interval/2))}
		unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(tfd), unix.TFD_TIMER_ABSTIME, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	}
	queue()
	wake()
	last := time.Now()
	err = rc.Read(func(uintptr) bool {
		for mono() >= next-interval-interval/2 {
			fails += r.reap()
			queue()
			wake()
		}
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			if fails > 0 {
				log.Print("send failures: ", fails)
			}
		}
		return false
	})
	log.Fatal(err)
}
