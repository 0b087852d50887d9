package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"vigil/bfd/link"
)

// bfdProcess is the BFD process the daemon starts for bfd_instance blocks
// (link.Process): `vigil _bfd` with the daemon's socket as fd 3. It is
// not meant to be run by hand.
func bfdProcess(args []string) int {
	// One P: the sessions' one goroutine parks in the runtime's poller
	// and nothing else runs, so the runtime never hands a P around.
	runtime.GOMAXPROCS(1)
	// The daemon decides when BFD stops (its AdminDowns come after
	// VRRP's priority 0 adverts): a SIGTERM systemd sends the whole unit,
	// or a Ctrl-C, must not end it first. It ends on the daemon's stop
	// request, when the daemon's end of the socket closes, or by
	// PDEATHSIG when the daemon dies.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(16 << 20)
	}
	conn, err := net.FileConn(os.NewFile(3, "daemon"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "vigil _bfd: the BFD process vigil starts for bfd_instance blocks; fd 3 is not the daemon's socket:", err)
		return 2
	}
	debugLog := len(args) > 0 && args[0] == link.ChildDebugArg
	if err := link.Serve(conn, debugLog); err != nil {
		fmt.Fprintln(os.Stderr, "vigil _bfd:", err)
		return 1
	}
	return 0
}
