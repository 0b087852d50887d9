// Package helperproc is the start of the helper processes the vigil
// daemon runs beside itself, as keepalived runs its children: the BFD
// process (`vigil _bfd`, bfd/link) and the BGP speaker (vigil-bgp,
// bgp/speaker). Each talks to the daemon over the socketpair the daemon
// passes as fd 3 and is not meant to be run by hand.
package helperproc

import (
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"vigil/internal/childproc"
)

// GOGC is the helpers' collector target unless GOGC is set: a collection
// when the heap has grown by half of what was live.
const GOGC = 50

// Start prepares a helper process and returns its connection to the
// daemon, fd 3.
//
// The daemon decides when a helper stops (BFD's AdminDowns come after
// VRRP's priority 0 adverts; BGP withdraws and drains before its Cease):
// a SIGTERM that systemd sends the whole unit, or a Ctrl-C, must not end
// the helper first, so it ignores SIGINT, SIGTERM and SIGHUP and ends on
// the daemon's stop request or when the daemon's end of the socket
// closes. Unless GOGC or GOMEMLIMIT say otherwise, the runtime collects
// at GOGC and keeps to the soft memoryLimit.
func Start(memoryLimit int64) (net.Conn, error) {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GOGC)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	return childproc.Conn()
}
