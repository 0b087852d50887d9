// Command vigil-bgp runs one bgp_instance's BGP sessions for vigil: the
// daemon (bgp/speaker) starts it only when the configuration has a
// bgp_instance block and talks to it over the socketpair it passes as fd 3
// (bgp/speaker/proto.go). It is not meant to be run by hand. Keeping gobgp
// in this binary keeps it out of the daemon's: docs/benchmarks.md has the
// memory this saves.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"vigil/bgp/speaker"
	"vigil/bgp/speaker/gobgp"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "vigil-bgp: the BGP speaker vigil starts for a bgp_instance block; it takes no arguments and is not run by hand")
		os.Exit(2)
	}
	// The daemon decides when the sessions end (withdraw, drain, Cease):
	// a SIGTERM that systemd sends the whole unit, or a Ctrl-C, must not
	// close them before the daemon has drained. The helper ends on the
	// daemon's stop request, or when the daemon's end of the socket closes.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	// The daemon's defaults (cmd/vigil/memlimit.go), unless the
	// environment sets them.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
	conn, err := net.FileConn(os.NewFile(3, "daemon"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "vigil-bgp: fd 3 is not the daemon's socket:", err)
		os.Exit(2)
	}
	if err := speaker.Serve(conn, gobgp.New); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-bgp:", err)
		os.Exit(1)
	}
}
