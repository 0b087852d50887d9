package main

import (
	"fmt"
	"os"
	"runtime"

	"vigil/bfd/link"
	"vigil/cmd/internal/helperproc"
)

// bfdProcess is the BFD process the daemon starts for bfd_instance blocks
// (link.Process): `vigil _bfd` with the daemon's socket as fd 3. It is
// not meant to be run by hand.
func bfdProcess(args []string) int {
	// One P: the sessions' one goroutine parks in the runtime's poller
	// and nothing else runs, so the runtime never hands a P around.
	runtime.GOMAXPROCS(1)
	// It ends as every helper does (helperproc.Start), or by PDEATHSIG
	// when the daemon dies.
	conn, err := helperproc.Start(16 << 20)
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
