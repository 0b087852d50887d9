package link

import (
	"net"
	"os"
	"runtime"
	"testing"

	"go.uber.org/goleak"

	"vigil/internal/childproc"
)

// childEnv makes the test binary the BFD process (Serve on fd 3), as
// `vigil _bfd` is for the daemon.
const childEnv = "VIGIL_TEST_BFD_PROCESS"

// TestMain fails the package if a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	childproc.MainIfChild(childEnv, func(conn net.Conn) error {
		runtime.GOMAXPROCS(1)
		return Serve(conn, false)
	})
	if peer := os.Getenv(daemonEnv); peer != "" {
		os.Exit(testDaemon(peer))
	}
	goleak.VerifyTestMain(m)
}
