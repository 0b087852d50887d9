package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"vigil/daemon"
)

// runOpts is the command line of `vigil run` and of the keepalived-style
// invocation (`vigil -nlD -S 6 -f FILE`, as DAEMON_ARGS gives it): one
// parser for both, so keepalived's flags and vigil's own work in either.
type runOpts struct {
	file    string // -f; "" means the default
	id      string // -i
	control string // --control
	ctlSet  bool
	metrics string // --metrics
	level   string // --log-level; "" means info (debug with -D)

	memoryLimit string // --memory-limit; "" means the default
	// noAdvertThread is --no-advert-thread: the loop sends every advert.
	noAdvertThread bool

	console  bool   // -l
	detail   bool   // -D
	facility string // -S
	noSyslog bool   // -G
	dontFork bool   // -n

	vrrpOnly  bool // -P
	checkOnly bool // -C

	pidFile, vrrpPid, checkPid string // -p, -r, -c
	bfdPid                     string // -b
	noBFD                      bool   // -B
	dontRespawn                bool   // -R

	dumpConf bool   // -d
	umask    string // -u
	coreDump bool   // -m

	test    bool   // -t
	testLog string // -t=FILE
	signum  string // --signum
	version bool
	help    bool
	genhash bool // -T: the rest of the line is genhash's

	rest []string // arguments after -T
	args []string // positional arguments
}

// optKind says whether an option takes a value.
type optKind int

const (
	noArg optKind = iota
	reqArg
	optArg // only attached: -tFILE, --config-test=FILE
)

type optSpec struct {
	short byte
	long  string
	kind  optKind
	// own marks vigil's own flags, which may also be written with one dash
	// (-control PATH, as Go's flag package spells them).
	own bool
	set func(o *runOpts, v string) error
	// unsupported, when set, is why vigil refuses the option.
	unsupported string
}

func flagTrue(p func(o *runOpts) *bool) func(*runOpts, string) error {
	return func(o *runOpts, _ string) error { *p(o) = true; return nil }
}

func flagString(p func(o *runOpts) *string) func(*runOpts, string) error {
	return func(o *runOpts, v string) error { *p(o) = v; return nil }
}

// noop is for options whose effect vigil has by construction (--all: the
// BFD process runs whenever the configuration has bfd_instance blocks).
func noop(*runOpts, string) error { return nil }

// options is keepalived 2.2.7's `keepalived --help`, every line, plus
// vigil's own flags.
var options = []optSpec{
	{short: 'f', long: "use-file", kind: reqArg, set: flagString(func(o *runOpts) *string { return &o.file })},
	{short: 'P', long: "vrrp", set: flagTrue(func(o *runOpts) *bool { return &o.vrrpOnly })},
	{short: 'C', long: "check", set: flagTrue(func(o *runOpts) *bool { return &o.checkOnly })},
	{short: 'B', long: "no_bfd", set: flagTrue(func(o *runOpts) *bool { return &o.noBFD })},
	{long: "all", set: noop},
	{short: 'l', long: "log-console", set: flagTrue(func(o *runOpts) *bool { return &o.console })},
	{short: 'D', long: "log-detail", set: flagTrue(func(o *runOpts) *bool { return &o.detail })},
	{short: 'S', long: "log-facility", kind: reqArg, set: flagString(func(o *runOpts) *string { return &o.facility })},
	{short: 'G', long: "no-syslog", set: flagTrue(func(o *runOpts) *bool { return &o.noSyslog })},
	{short: 'u', long: "umask", kind: reqArg, set: flagString(func(o *runOpts) *string { return &o.umask })},
	{short: 'X', long: "release-vips", unsupported: "vigil has no signal that forces a transition, so there is nothing to drop VIPs on"},
	{short: 'V', long: "dont-release-vrrp", unsupported: "vigil always sends a priority 0 advert and removes its VIPs and virtual routes when it stops, so a backup takes over at once"},
	{short: 'I', long: "dont-release-ipvs", unsupported: "vigil always removes its nftables load-balancing tables when it stops"},
	{short: 'R', long: "dont-respawn", set: flagTrue(func(o *runOpts) *bool { return &o.dontRespawn })},
	{short: 'n', long: "dont-fork", set: flagTrue(func(o *runOpts) *bool { return &o.dontFork })},
	{short: 'd', long: "dump-conf", set: flagTrue(func(o *runOpts) *bool { return &o.dumpConf })},
	{short: 'p', long: "pid", kind: reqArg, set: flagString(func(o *runOpts) *string { return &o.pidFile })},
	{short: 'r', long: "vrrp_pid", kind: reqArg, set: flagString(func(o *runOpts) *string { return &o.vrrpPid })},
	{short: 'T', long: "genhash", set: flagTrue(func(o *runOpts) *bool { return &o.genhash })},
	{short: 'c', long: "checkers_pid", kind: reqArg, set: flagString(func(o *runOpts) *string { return &o.checkPid })},
	{short: 'a', long: "address-monitoring", unsupported: "address monitoring is not logged; `ip monitor address` shows the same"},
	// Written once BFD runs, which it does only for bfd_instance blocks
	// (keepalived starts its BFD child only for them too).
	{short: 'b', long: "bfd_pid", kind: reqArg, set: flagString(func(o *runOpts) *string { return &o.bfdPid })},
	{short: 'x', long: "snmp", unsupported: "SNMP; use --metrics ADDR for Prometheus metrics, or `vigil status --json`"},
	{short: 'A', long: "snmp-agent-socket", kind: reqArg, unsupported: "SNMP; use --metrics ADDR for Prometheus metrics"},
	{short: 's', long: "namespace", kind: reqArg, unsupported: "network namespaces; run it as `ip netns exec NAME vigil ...`"},
	{short: 'm', long: "core-dump", set: flagTrue(func(o *runOpts) *bool { return &o.coreDump })},
	{short: 'M', long: "core-dump-pattern", kind: optArg, unsupported: "changing the host's kernel.core_pattern; set it with sysctl and use -m"},
	{short: 'e', long: "all-config", unsupported: "failing on missing include files; use `includet` in the configuration"},
	{short: 'i', long: "config-id", kind: reqArg, set: flagString(func(o *runOpts) *string { return &o.id })},
	{long: "signum", kind: reqArg, set: flagString(func(o *runOpts) *string { return &o.signum })},
	{short: 't', long: "config-test", kind: optArg, set: func(o *runOpts, v string) error { o.test, o.testLog = true, v; return nil }},
	{short: 'v', long: "version", set: flagTrue(func(o *runOpts) *bool { return &o.version })},
	{short: 'h', long: "help", set: flagTrue(func(o *runOpts) *bool { return &o.help })},

	{long: "control", kind: reqArg, own: true, set: func(o *runOpts, v string) error { o.control, o.ctlSet = v, true; return nil }},
	{long: "metrics", kind: reqArg, own: true, set: flagString(func(o *runOpts) *string { return &o.metrics })},
	{long: "log-level", kind: reqArg, own: true, set: flagString(func(o *runOpts) *string { return &o.level })},
	{long: "memory-limit", kind: reqArg, own: true, set: flagString(func(o *runOpts) *string { return &o.memoryLimit })},
	{long: "no-advert-thread", own: true, set: flagTrue(func(o *runOpts) *bool { return &o.noAdvertThread })},
}

// usageError is a command line vigil cannot run; the message says why.
type usageError string

func (e usageError) Error() string { return string(e) }

func optName(s *optSpec) string {
	switch {
	case s.short != 0 && s.long != "":
		return fmt.Sprintf("-%c/--%s", s.short, s.long)
	case s.short != 0:
		return fmt.Sprintf("-%c", s.short)
	}
	return "--" + s.long
}

// parseRunArgs parses args as getopt_long does for keepalived (clusters
// such as -nlD, values attached or separate, --name=value, unambiguous long
// prefixes, options and arguments in any order, "--" ending options), and
// also takes vigil's own flags with one dash.
func parseRunArgs(args []string) (*runOpts, error) {
	o := &runOpts{}
	apply := func(s *optSpec, v string) error {
		if s.unsupported != "" {
			return usageError(fmt.Sprintf("%s is not supported by vigil: %s", optName(s), s.unsupported))
		}
		return s.set(o, v)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			o.args = append(o.args, args[i+1:]...)
			return o, nil
		case strings.HasPrefix(a, "--") || (strings.HasPrefix(a, "-") && ownLong(a[1:]) != nil):
			name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
			s, err := findLong(name)
			if err != nil {
				return nil, err
			}
			switch s.kind {
			case noArg:
				if hasVal {
					return nil, usageError(fmt.Sprintf("option --%s takes no value", s.long))
				}
			case reqArg:
				if !hasVal {
					if i+1 >= len(args) {
						return nil, usageError(fmt.Sprintf("option --%s needs a value", s.long))
					}
					i++
					val = args[i]
				}
			}
			if err := apply(s, val); err != nil {
				return nil, err
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				s := findShort(a[j])
				if s == nil {
					return nil, usageError(fmt.Sprintf("unknown option -%c (in %q); `vigil --help` lists them", a[j], a))
				}
				val := ""
				switch s.kind {
				case reqArg:
					val = a[j+1:]
					if val == "" {
						if i+1 >= len(args) {
							return nil, usageError(fmt.Sprintf("option -%c needs a value", s.short))
						}
						i++
						val = args[i]
					}
					j = len(a)
				case optArg:
					val = a[j+1:]
					j = len(a)
				}
				if err := apply(s, val); err != nil {
					return nil, err
				}
				if o.genhash {
					// keepalived -T hands the rest of the line to genhash.
					o.rest = args[i+1:]
					return o, nil
				}
			}
		default:
			o.args = append(o.args, a)
		}
		if o.genhash {
			o.rest = args[i+1:]
			return o, nil
		}
	}
	return o, nil
}

func ownLong(s string) *optSpec {
	name, _, _ := strings.Cut(s, "=")
	for i := range options {
		if options[i].own && options[i].long == name {
			return &options[i]
		}
	}
	return nil
}

func findShort(c byte) *optSpec {
	for i := range options {
		if options[i].short == c {
			return &options[i]
		}
	}
	return nil
}

// findLong finds an option by its long name or an unambiguous prefix of it.
func findLong(name string) (*optSpec, error) {
	var found []*optSpec
	for i := range options {
		if options[i].long == name {
			return &options[i], nil
		}
		if name != "" && strings.HasPrefix(options[i].long, name) {
			found = append(found, &options[i])
		}
	}
	switch len(found) {
	case 0:
		return nil, usageError(fmt.Sprintf("unknown option --%s; `vigil --help` lists them", name))
	case 1:
		return found[0], nil
	}
	var names []string
	for _, s := range found {
		names = append(names, "--"+s.long)
	}
	return nil, usageError(fmt.Sprintf("option --%s is ambiguous: %s", name, strings.Join(names, ", ")))
}

// signums are the signals vigil acts on, by keepalived's --signum names:
// the daemon's own (daemon/signals.go). JSON is keepalived's SIGRTMIN+2
// (36 with glibc), so tools that ask keepalived for the number get the
// same one.
var signums = map[string]int{"STOP": int(syscall.SIGTERM), "RELOAD": int(daemon.SigReload),
	"DATA": int(daemon.SigData), "STATS": int(daemon.SigStats), "JSON": int(daemon.SigJSON)}

// parseUmask reads -u as keepalived does: a number in C notation (a
// leading 0 is octal).
func parseUmask(s string) (int, error) {
	n, err := strconv.ParseUint(s, 0, 32)
	if err != nil || n > 0o777 {
		return 0, usageError(fmt.Sprintf("umask %q: expected a number such as 0022", s))
	}
	return int(n), nil
}

const optionsHelp = `keepalived's options (keepalived 2.2.7 --help), as vigil takes them:
  -f, --use-file=FILE          configuration file (default /etc/keepalived/keepalived.conf)
  -P, --vrrp                   run VRRP only (no virtual servers or health checks)
  -C, --check                  run virtual servers and health checks only (no VRRP)
  -B, --no_bfd                 do not run BFD (a configuration with bfd_instance blocks is refused)
      --all                    accepted (the BFD process runs only for bfd_instance blocks)
  -l, --log-console            log to the console (stderr)
  -D, --log-detail             detailed log messages (log level debug)
  -S, --log-facility=FAC       syslog facility: 0-7 (local0-7), local0-7, user or daemon (default)
  -G, --no-syslog              do not log to syslog
  -u, --umask=MASK             umask for files vigil creates
  -R, --dont-respawn           do not restart a BFD process that dies: stop instead
  -n, --dont-fork              stay in the foreground (vigil run always does)
  -d, --dump-conf              log the configuration at startup
  -p, --pid=FILE               pid file (keepalived style default /run/vigil.pid)
  -r, --vrrp_pid=FILE          pid file written while VRRP runs
  -c, --checkers_pid=FILE      pid file written while health checks run
  -b, --bfd_pid=FILE           pid file written while BFD runs (only with bfd_instance blocks)
  -T, --genhash                the rest of the line is for genhash (vigil genhash)
  -m, --core-dump              dump core on a crash
  -i, --config-id=ID           config id for @ID lines (default: the short host name)
      --signum=SIGFUNC         print the signal number for STOP, RELOAD, DATA, STATS, JSON
  -t, --config-test[=FILE]     check the configuration (vigil check), to FILE if given
  -v, --version                print the version
  -h, --help                   print this help
not supported by vigil (they exit with the reason): -X -V -I -a -x -A -s -M -e, --signum=STATS_CLEAR
vigil's own, with one or two dashes:
  --control=PATH               control socket (default /run/vigil/vigil.sock; empty: none)
  --metrics=ADDR               serve Prometheus metrics on ADDR (e.g. 127.0.0.1:9650)
  --log-level=LEVEL            debug, info, warn or error
  --memory-limit=SIZE          cap of the Go runtime's soft memory limit, which follows the live heap
                               while the daemon is idle unless GOGC is set (e.g. 64MiB; off: no cap;
                               default 64MiB, or GOMEMLIMIT)
  --no-advert-thread           send every advert from the event loop, not from the thread that sends
                               the steady-state adverts of masters below advert_int 1 s
`
