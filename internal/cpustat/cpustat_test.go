package cpustat

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// Busy grows by at least the CPU time this process burns.
func TestBusyCountsWork(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc/stat")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b0 := Busy()
	if b0 <= 0 {
		t.Fatalf("Busy() = %v on a running machine", b0)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	// Tick accounting samples at HZ; 300 ms of spinning is at least 200 ms.
	if d := Busy() - b0; d < 200*time.Millisecond {
		t.Errorf("Busy grew by %v over 300 ms of spinning", d)
	}
}
