// Command vigil-tools runs the subcommands of vigil that the daemon never
// calls: `vigil doctor` and `vigil demo`, which vigil executes from
// /usr/lib/vigil/vigil-tools (or from beside itself). They live in a binary
// of their own so that the daemon's process does not link and initialise
// them: in one binary, their code and the packages only they use (doctor's
// checks and capture, netlab, the probes) kept 0.3-0.6 MB more of the
// binary resident in every daemon (issue #7, docs/benchmarks.md).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "doctor":
			return cmdDoctor(ctx, args[1:], stdout, stderr)
		case "demo":
			return cmdDemo(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintln(stderr, "vigil-tools: runs `vigil doctor` and `vigil demo` for vigil; use those commands")
	return 2
}
