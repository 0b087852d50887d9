// Command vigil-bgp runs one bgp_instance's BGP sessions for vigil: the
// daemon (bgp/speaker) starts it only when the configuration has a
// bgp_instance block and talks to it over the socketpair it passes as fd 3
// (bgp/speaker/proto.go). It is not meant to be run by hand. Keeping gobgp
// in this binary keeps it out of the daemon's: docs/benchmarks.md has the
// memory this saves.
package main

import (
	"fmt"
	"os"

	"vigil/bgp/speaker"
	"vigil/bgp/speaker/gobgp"
	"vigil/cmd/internal/helperproc"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "vigil-bgp: the BGP speaker vigil starts for a bgp_instance block; it takes no arguments and is not run by hand")
		os.Exit(2)
	}
	// gobgp's peaks with many routes want the daemon's limit
	// (cmd/vigil/memlimit.go).
	conn, err := helperproc.Start(64 << 20)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vigil-bgp: fd 3 is not the daemon's socket:", err)
		os.Exit(2)
	}
	if err := speaker.Serve(conn, gobgp.New); err != nil {
		fmt.Fprintln(os.Stderr, "vigil-bgp:", err)
		os.Exit(1)
	}
}
