// Package check implements the health checkers keepalived runs for the real
// servers of a virtual_server (keepalived.conf(5), "Virtual server(s)"):
// TCP_CHECK, HTTP_GET, SSL_GET (with regex, regex_no_match and the regex
// offsets), MISC_CHECK, DNS_CHECK, UDP_CHECK, PING_CHECK, SMTP_CHECK
// (RFC 5321 greeting and HELO), FILE_CHECK (a track_file's value) and the
// vigil extension DR_PATH_CHECK (forwarded frames reach a DR real server), the
// per-server state machine keepalived applies around them
// (retry, delay_before_retry, warmup, delay_loop, alpha, omega, and the
// URL-by-URL recovery of HTTP_GET without fast_recovery), and a Runner that
// schedules thousands of checkers from one goroutine.
//
// Every checker has the same shape: a Config struct holding keepalived's
// defaults (zero fields take them), a constructor that validates it and
// starts nothing, Check(ctx) returning a Result in plain words, and String()
// naming the checker and its target the way an operator would.
//
// The package does not read keepalived.conf: the daemon maps the parsed
// configuration onto these structs, which keeps check free of the config
// model and lets each checker be tested against real sockets on loopback.
//
// Time and randomness are arguments of the state machine (State); only the
// Runner reads the clock, and it owns every goroutine it starts. The
// checkers use Linux socket options (SO_MARK, SO_BINDTODEVICE, ICMP
// sockets), so the package is Linux-only, like vigil. README.md maps every
// keepalived keyword to a field.
package check
