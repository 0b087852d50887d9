// Command vigil keeps virtual IPs alive with VRRP and balances L4 traffic
// with nftables, reading keepalived.conf as it is.
//
// Subcommands: run, check, reload, status, conns, doctor, demo, genhash,
// version. Invoked with keepalived-style flags and no subcommand (as an
// existing systemd unit or script calls keepalived), vigil takes every
// option of keepalived 2.2.7 (flags.go): -t/--config-test is `check`,
// anything else is `run`, and an option vigil cannot honour exits with the
// reason instead of being ignored.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"vigil/bfd/link"
	"vigil/internal/version"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "run VRRP instances and virtual servers from a keepalived.conf (foreground)", cmdRun},
		{"check", "check a keepalived.conf like `keepalived -t`; exit non-zero on errors", cmdCheck},
		{"reload", "make the running vigil reload its configuration; exit non-zero if it was rejected", cmdReload},
		{"status", "show instances and services of a running vigil", cmdStatus},
		{"conns", "list load-balanced connections like `ipvsadm -lnc`", cmdConns},
		{"doctor", "diagnose split brain and data-plane problems in plain words", cmdDoctor},
		{"demo", "build a throwaway namespace lab and show failover end to end", cmdDemo},
		{"genhash", "print the digest of a URL's body for HTTP_GET/SSL_GET checkers", cmdGenhash},
		{"version", "print the version", cmdVersion},
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == link.ChildArg {
		os.Exit(bfdProcess(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-help", "help":
		args = []string{"--help"}
	}
	if strings.HasPrefix(args[0], "-") {
		return keepalivedCompat(ctx, args, stdout, stderr)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "vigil: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: vigil <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "keepalived's command line works too: vigil -t -f FILE, vigil -nlD -S 6 -f FILE (vigil --help lists the options)")
}

func cmdVersion(_ context.Context, _ []string, stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "vigil %s\n", version.Version)
	return 0
}

// notBuilt is what a subcommand whose capability has not landed yet does:
// say so plainly and fail, so no script mistakes it for success.
func notBuilt(name, issue string) func(context.Context, []string, io.Writer, io.Writer) int {
	return func(_ context.Context, _ []string, _, stderr io.Writer) int {
		fmt.Fprintf(stderr, "vigil %s: not built yet (%s)\n", name, issue)
		return 3
	}
}

var errUsage = errors.New("usage")
