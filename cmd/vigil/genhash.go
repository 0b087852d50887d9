package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"vigil/check"
)

// cmdGenhash is `vigil genhash`, keepalived's genhash(1): fetch one URL the
// way an HTTP_GET or SSL_GET checker does and print the MD5 digest of the
// body to put in a url block's digest. It takes genhash's flags, short and
// long. Unlike genhash it exits non-zero when the page cannot be fetched,
// so that a script cannot paste an error into its configuration.
func cmdGenhash(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("genhash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		server, url, vhost, proto string
		port, mark                uint
		useSSL, useSNI, verbose   bool
		timeout                   float64
	)
	str := func(p *string, short, long, def, usage string) {
		fs.StringVar(p, short, def, usage)
		fs.StringVar(p, long, def, "same as -"+short)
	}
	str(&server, "s", "server", "", "`address` of the server to connect to (required)")
	str(&url, "u", "url", "/", "`path` to fetch")
	str(&vhost, "V", "use-virtualhost", "", "virtual `host` for the Host header (and SNI with -I)")
	str(&proto, "P", "protocol", "1.0", "HTTP `version`: 1.0, 1.0c (1.0 with Connection: close) or 1.1")
	fs.UintVar(&port, "p", 0, "`port` to connect to (default 80, or 443 with -S)")
	fs.UintVar(&port, "port", 0, "same as -p")
	fs.UintVar(&mark, "m", 0, "firewall `mark` for the connection")
	fs.UintVar(&mark, "fwmark", 0, "same as -m")
	fs.BoolVar(&useSSL, "S", false, "use TLS (as SSL_GET)")
	fs.BoolVar(&useSSL, "use-ssl", false, "same as -S")
	fs.BoolVar(&useSNI, "I", false, "send the virtual host as TLS server name (enable_sni)")
	fs.BoolVar(&useSNI, "use-sni", false, "same as -I")
	fs.BoolVar(&verbose, "v", false, "print the response header, the body and the timing too")
	fs.BoolVar(&verbose, "verbose", false, "same as -v")
	fs.Float64Var(&timeout, "t", check.DefaultConnectTimeout.Seconds(), "timeout in `seconds` for the whole request")
	fs.Float64Var(&timeout, "timeout", check.DefaultConnectTimeout.Seconds(), "same as -t")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: vigil genhash [-S [-I]] -s ADDRESS [-p PORT] [-u PATH] [-V HOST] [-P 1.0|1.0c|1.1] [-t SECONDS] [-v]")
		fmt.Fprintln(stderr, "\nPrints the MD5 digest of the body at PATH, for the digest of an HTTP_GET/SSL_GET url block.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vigil genhash: "+format+"\n", a...)
		return 1
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vigil genhash: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if server == "" {
		return usageErr("-s ADDRESS is required")
	}
	if port == 0 {
		port = 80
		if useSSL {
			port = 443
		}
	}
	if port > 65535 {
		return usageErr("port %d is out of range", port)
	}
	if mark > 1<<32-1 {
		return usageErr("fwmark %d is out of range", mark)
	}
	if timeout <= 0 {
		return usageErr("timeout %v must be positive", timeout)
	}
	if useSNI && vhost == "" {
		return usageErr("-I sends the virtual host as server name: give one with -V")
	}
	addr, err := resolveServer(ctx, server)
	if err != nil {
		return fail("%v", err)
	}
	c, err := check.NewHTTP(check.HTTPConfig{
		Target: check.Target{
			Addr:    netip.AddrPortFrom(addr, uint16(port)),
			Fwmark:  uint32(mark),
			Timeout: time.Duration(timeout * float64(time.Second)),
		},
		TLS:         useSSL,
		SNI:         useSNI,
		Protocol:    proto,
		VirtualHost: vhost,
		URLs:        []check.URL{{Path: url}},
	})
	if err != nil {
		return usageErr("%v", err)
	}
	resp, err := c.Get(ctx, check.URL{Path: url})
	if err != nil {
		return fail("%v", err)
	}
	if verbose {
		printResponse(stdout, resp)
	}
	fmt.Fprintln(stdout, resp.Digest)
	if resp.Truncated {
		fmt.Fprintf(stderr, "vigil genhash: warning: the body is larger than %d bytes; the digest covers only that much, and an HTTP_GET with this digest fails\n", check.DefaultMaxBody)
	}
	if !check.DefaultStatusCodes.Contains(resp.Status) {
		fmt.Fprintf(stderr, "vigil genhash: note: status %d; a url block without status_code accepts only %s\n", resp.Status, check.DefaultStatusCodes)
	}
	return 0
}

// resolveServer takes an address, or a name resolved to its first address
// (genhash documents an address; a name is a convenience).
func resolveServer(ctx context.Context, s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("server %q: %w", s, err)
	}
	return addrs[0].Unmap(), nil
}

// printResponse shows what the digest was computed over: the header as
// received, then the body (as text when it is, else its size).
func printResponse(w io.Writer, r *check.Response) {
	fmt.Fprintln(w, "--- response header")
	w.Write(r.RawHeader)
	fmt.Fprintf(w, "--- body (%d bytes, everything after the header, as digested)\n", len(r.Body))
	if utf8.Valid(r.Body) && !strings.ContainsRune(string(r.Body), 0) {
		w.Write(r.Body)
		if len(r.Body) > 0 && r.Body[len(r.Body)-1] != '\n' {
			fmt.Fprintln(w)
		}
	} else {
		fmt.Fprintln(w, "(binary, not shown)")
	}
	fmt.Fprintf(w, "--- response time %s, MD5 digest:\n", strconv.FormatFloat(float64(r.Latency.Microseconds())/1000, 'f', 1, 64)+"ms")
}
