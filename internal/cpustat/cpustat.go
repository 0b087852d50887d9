// Package cpustat reads the whole machine's CPU time from /proc/stat, for
// the benchmarks that compare costs charged partly to the kernel's softirq
// work (ksoftirqd, other CPUs), which getrusage of one process misses.
package cpustat

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc/stat: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

// Busy returns the time all CPUs together have spent not idle since boot:
// user, nice, system, irq, softirq and steal (not idle or iowait; guest
// time is already inside user). Zero when /proc/stat cannot be read.
func Busy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest, guest_nice
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ
}
