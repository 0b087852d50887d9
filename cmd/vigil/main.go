// Command vigil keeps virtual IPs alive with VRRP and balances L4 traffic
// with nftables, reading keepalived.conf as it is.
//
// Subcommands: run, check, status, conns, doctor, demo, genhash, version.
// Invoked with keepalived-style flags and no subcommand (as an existing
// systemd unit or script would call keepalived), vigil maps them: -t/
// --config-test is `check`, anything else is `run`.
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
		{"status", "show instances and services of a running vigil", cmdStatus},
		{"conns", "list load-balanced connections like `ipvsadm -lnc`", cmdConns},
		{"doctor", "diagnose split brain and data-plane problems in plain words", cmdDoctor},
		{"demo", "build a throwaway namespace lab and show failover end to end", cmdDemo},
		{"genhash", "print the digest of a URL's body for HTTP_GET/SSL_GET checkers", cmdGenhash},
		{"version", "print the version", cmdVersion},
	}
}

func main() {
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
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	case "-v", "--version":
		return cmdVersion(ctx, nil, stdout, stderr)
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
	fmt.Fprintln(w, "keepalived-style invocation is accepted too: vigil -t -f FILE, vigil -n -l -D -f FILE")
}

// keepalivedCompat maps keepalived's command line onto vigil's commands so
// that vigil can replace the binary under an unchanged unit file.
func keepalivedCompat(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var out []string
	test := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		switch name {
		case "-t", "--config-test":
			test = true
		case "-f", "--use-file", "-i", "--config-id", "-p", "--pid", "--vrrp_pid", "-r", "--checkers_pid", "-c":
			flag := map[string]string{"-f": "-f", "--use-file": "-f", "-i": "-i", "--config-id": "-i"}[name]
			if !hasVal {
				if i+1 >= len(args) {
					fmt.Fprintf(stderr, "vigil: %s needs a value\n", name)
					return 2
				}
				i++
				val = args[i]
			}
			if flag != "" {
				out = append(out, flag, val)
			}
		case "-n", "--dont-fork", "-l", "--log-console", "-D", "--log-detail", "-P", "--vrrp", "-C", "--check",
			"-S", "--log-facility", "-G", "--no-syslog", "-d", "--dump-conf", "-x", "--snmp", "-m", "--core-dump":
			// vigil always runs in the foreground and logs to stderr (journald
			// under systemd); the other switches do not change behaviour here.
		default:
			fmt.Fprintf(stderr, "vigil: keepalived option %s is not supported\n", a)
			return 2
		}
	}
	if test {
		return cmdCheck(ctx, out, stdout, stderr)
	}
	return cmdRun(ctx, out, stdout, stderr)
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
