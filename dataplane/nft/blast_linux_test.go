package nft

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"vigil/internal/cpustat"
)

// TestBenchBlast is not a test: bench/dataplane.sh runs it in the client's
// namespace to measure what the director's rules cost per packet, apart
// from everything else a request costs.
//
// It sends small UDP packets to VIGIL_BLAST_DST port 80 through a raw
// socket, in sendmmsg batches, each from a new source (an address in
// VIGIL_BLAST_SRCNET, a /24, hosts .128 to .247, and a port), so that every
// packet is a new flow to conntrack and walks the director's nat chains as
// the first packet of a connection does. With VIGIL_BLAST_FLOWS=N the
// packets go round N flows instead: the packets of flows a DR director
// remembers (its flow map, drFlows).
//
// The two rulesets under comparison take turns: VIGIL_BLAST_A and
// VIGIL_BLAST_B are commands that load each, and the run is
// VIGIL_BLAST_SEGMENTS segments of VIGIL_BLAST_N packets in the order
// A B B A A B B A ..., so that a machine whose speed drifts over seconds
// (a shared VM does, by tens of percent) weighs on both alike. Per segment
// it takes the sender's wall time (the sender is pinned to one CPU and
// the kernel forwards each packet inline on it, through the veths and the
// bridge) and the whole machine's busy time (/proc/stat, which also
// catches work deferred to ksoftirqd). It prints per variant the median
// wall ns per packet, the total busy ns per packet, and the median of the
// differences B - A within each adjacent pair of segments with its 95%
// confidence interval (distribution-free, from order statistics).
func TestBenchBlast(t *testing.T) {
	dst := helperEnv(t, "VIGIL_BLAST_DST", "bench/dataplane.sh")
	n, err := strconv.Atoi(os.Getenv("VIGIL_BLAST_N"))
	if err != nil || n <= 0 {
		t.Fatalf("VIGIL_BLAST_N=%q", os.Getenv("VIGIL_BLAST_N"))
	}
	segments, err := strconv.Atoi(os.Getenv("VIGIL_BLAST_SEGMENTS"))
	if err != nil || segments < 2 || segments%2 != 0 {
		t.Fatalf("VIGIL_BLAST_SEGMENTS=%q: want an even number", os.Getenv("VIGIL_BLAST_SEGMENTS"))
	}
	load := [2][]string{strings.Fields(os.Getenv("VIGIL_BLAST_A")), strings.Fields(os.Getenv("VIGIL_BLAST_B"))}
	if len(load[0]) == 0 || len(load[1]) == 0 {
		t.Fatal("VIGIL_BLAST_A and VIGIL_BLAST_B: the commands that load each ruleset")
	}
	// The sender's own CPU time (user and system, the forwarding it does
	// inline included) is far less disturbed by other load on a shared
	// machine than its wall time or the machine's busy time: it needs the
	// goroutine on one OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b := newBlaster(t, netip.MustParseAddr(dst), netip.MustParsePrefix(os.Getenv("VIGIL_BLAST_SRCNET")))
	if v := os.Getenv("VIGIL_BLAST_FLOWS"); v != "" {
		if b.cycle, err = strconv.Atoi(v); err != nil || b.cycle < 0 {
			t.Fatalf("VIGIL_BLAST_FLOWS=%q", v)
		}
	}
	defer unix.Close(b.fd)

	b.send(t, n/4) // warm up: ARP, caches, conntrack's steady state
	var wall [2][]float64
	var busy [2]int64
	var pairs []float64 // B - A within each pair, wall ns per packet
	var cpu [2][]float64
	var cpuPairs []float64 // the same for the sender thread's CPU ns per packet
	for i := range segments {
		v := (i + i/2) % 2 // 0 1 1 0 0 1 1 0 ...
		if out, err := exec.Command(load[v][0], load[v][1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", load[v], err, out)
		}
		time.Sleep(20 * time.Millisecond)
		b0, start, c0 := int64(cpustat.Busy()), time.Now(), threadCPU(t)
		b.send(t, n)
		w := float64(time.Since(start).Nanoseconds()) / float64(n)
		cpu[v] = append(cpu[v], float64(threadCPU(t)-c0)/float64(n))
		busy[v] += int64(cpustat.Busy()) - b0
		wall[v] = append(wall[v], w)
		if i%2 == 1 {
			a, bb := wall[0][len(wall[0])-1], wall[1][len(wall[1])-1]
			pairs = append(pairs, bb-a)
			cpuPairs = append(cpuPairs, cpu[1][len(cpu[1])-1]-cpu[0][len(cpu[0])-1])
		}
	}
	med := func(xs []float64) float64 {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2]
	}
	per := float64(n * segments / 2)
	lo, hi := medianCI(pairs)
	fmt.Printf("blast %d %.1f %.1f %.1f %.1f %.1f %.1f %.1f\n", n*segments/2,
		med(wall[0]), med(wall[1]), float64(busy[0])/per, float64(busy[1])/per,
		med(pairs), lo, hi)
	clo, chi := medianCI(cpuPairs)
	fmt.Printf("blastcpu %.1f %.1f %.1f %.1f %.1f\n", med(cpu[0]), med(cpu[1]), med(cpuPairs), clo, chi)
}

// threadCPU is the calling OS thread's user and system CPU time in ns.
func threadCPU(t *testing.T) int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// medianCI is a 95% confidence interval for the median of xs: the order
// statistics k and n-k+1 with k = n/2 - 0.98·sqrt(n) (normal approximation
// to the binomial), which assumes nothing about the distribution.
func medianCI(xs []float64) (lo, hi float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	k := int(float64(n)/2 - 0.98*math.Sqrt(float64(n)))
	k = max(k, 1)
	return s[k-1], s[n-k]
}

type blaster struct {
	fd  int
	src [4]byte
	// cycle, when above 0, is the number of flows the packets go round
	// (VIGIL_BLAST_FLOWS): all but the first packet of each flow are then
	// packets of a flow the director has seen.
	cycle int
	bufs  [][46]byte // IPv4 20 + UDP 8 + 18 bytes: a minimum Ethernet frame
	iovs  []unix.Iovec
	hdrs  []unix.Mmsghdr
	sa    unix.RawSockaddrInet4
	flow  int
}

func newBlaster(t *testing.T, dst netip.Addr, srcnet netip.Prefix) *blaster {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW) // implies IP_HDRINCL
	if err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	const batch = 64
	daddr := dst.As4()
	bl := &blaster{fd: fd, src: srcnet.Masked().Addr().As4(), bufs: make([][46]byte, batch),
		iovs: make([]unix.Iovec, batch), hdrs: make([]unix.Mmsghdr, batch),
		sa: unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: daddr}}
	for i := range batch {
		p := bl.bufs[i][:]
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		binary.BigEndian.PutUint16(p[6:], 0x4000) // DF
		p[8], p[9] = 64, unix.IPPROTO_UDP
		copy(p[16:20], daddr[:])
		binary.BigEndian.PutUint16(p[22:], 80)
		binary.BigEndian.PutUint16(p[24:], uint16(len(p)-20))
		bl.iovs[i] = unix.Iovec{Base: &p[0]}
		bl.iovs[i].SetLen(len(p))
		bl.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&bl.sa))
		bl.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
		bl.hdrs[i].Hdr.Iov = &bl.iovs[i]
		bl.hdrs[i].Hdr.SetIovlen(1)
	}
	return bl
}

// send sends n packets, each from a source the run has not used yet.
func (bl *blaster) send(t *testing.T, n int) {
	for sent := 0; sent < n; {
		k := min(len(bl.hdrs), n-sent)
		for i := range k {
			p := bl.bufs[i][:]
			f := bl.flow
			if bl.cycle > 0 {
				f %= bl.cycle
			}
			src := bl.src
			src[3] = byte(128 + (f/64512)%120)
			copy(p[12:16], src[:])
			binary.BigEndian.PutUint16(p[20:], uint16(1024+f%64512))
			bl.flow++
		}
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(bl.fd), uintptr(unsafe.Pointer(&bl.hdrs[0])), uintptr(k), 0, 0, 0)
		if errno == unix.ENOBUFS || errno == unix.EAGAIN {
			continue
		}
		if errno != 0 {
			t.Fatalf("sendmmsg: %v", errno)
		}
		sent += int(r)
	}
}
