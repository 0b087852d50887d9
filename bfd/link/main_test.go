package link

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

// childEnv makes the test binary the BFD process (Serve on fd 3), as
// `vigil _bfd` is for the daemon.
const childEnv = "VIGIL_TEST_BFD_PROCESS"

// TestMain fails the package if a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runtime.GOMAXPROCS(1)
		conn, err := net.FileConn(os.NewFile(3, "daemon"))
		if err == nil {
			err = Serve(conn, false)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bfd process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
