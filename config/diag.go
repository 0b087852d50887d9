package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"vigil/internal/enum"
	"vigil/internal/inet"
)

// Pos is a place in a configuration file. Line and Col are 1-based; Col is 0
// when the column is not known. The zero Pos means "no place".
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.File == "" && p.Line == 0:
		return "-"
	case p.Col > 0:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	default:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
}

// Severity orders diagnostics. keepalived -t fails (exit 4, 5 or 6) exactly
// when it reports something of severity Error or worse.
type Severity int

const (
	// Info is a remark (a default applied, a keyword vigil ignores harmlessly).
	Info Severity = iota
	// Warning is a problem keepalived tolerates: the config still loads.
	Warning
	// Error makes `vigil check` (and `keepalived -t`) fail; the offending
	// item is dropped but the rest of the file is still checked.
	Error
	// Fatal stops processing (for example an unreadable main file).
	Fatal
)

var severityNames = []string{Info: "info", Warning: "warning", Error: "error", Fatal: "fatal"}

func (s Severity) String() string { return enum.Name(severityNames, s, "severity") }

// Diagnostic is one finding about a configuration, tied to its place.
// Msg says what is wrong and what was expected, e.g.
// `virtual_router_id "51;" is not a number: expected an integer 1..255`.
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	// Code is set on the diagnostics that programs (vigil doctor) must
	// tell apart; the rest have none and are read by people.
	Code Code
	Msg  string
	// Repeats counts the further times the same finding (place, severity,
	// code and message) was made, as when a ~SEQ repeats a bad line: it
	// is reported once, with the count.
	Repeats int
}

// Code names a kind of Diagnostic, stably, for programs. Adding one means
// listing it in Codes; doctor's tests then fail until doctor and
// docs/doctor.md know it.
type Code string

// The codes.
const (
	// CodeNopreemptIgnored: nopreempt on an address owner or state MASTER
	// is cleared.
	CodeNopreemptIgnored Code = "nopreempt-ignored"
	// CodePreemptDelayIgnored: preempt_delay together with nopreempt is
	// cleared.
	CodePreemptDelayIgnored Code = "preempt-delay-ignored"
	// CodeUnicastNoPeers: a unicast keyword without unicast peers; the
	// instance falls back to multicast.
	CodeUnicastNoPeers Code = "unicast-no-peers"
	// CodeDuplicateVRID: two instances share a VRID on one interface and
	// family; the second is dropped.
	CodeDuplicateVRID Code = "duplicate-vrid"
)

// Codes lists every Code.
func Codes() []Code {
	return []Code{CodeNopreemptIgnored, CodePreemptDelayIgnored, CodeUnicastNoPeers, CodeDuplicateVRID}
}

func (d Diagnostic) String() string {
	if d.Repeats > 0 {
		return fmt.Sprintf("%s: %s: %s (found %d times)", d.Pos, d.Severity, d.Msg, d.Repeats+1)
	}
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Severity, d.Msg)
}

// diagKey is what makes two diagnostics the same finding.
type diagKey struct {
	pos  Pos
	sev  Severity
	code Code
	msg  string
}

func (d Diagnostic) key() diagKey { return diagKey{d.Pos, d.Severity, d.Code, d.Msg} }

// compact merges identical diagnostics into the first of them, counting
// the others in Repeats; the order is kept.
func (ds Diagnostics) compact() Diagnostics {
	if len(ds) < 2 {
		return ds
	}
	first := make(map[diagKey]int, len(ds))
	out := ds[:0]
	for _, d := range ds {
		if i, ok := first[d.key()]; ok {
			out[i].Repeats += d.Repeats + 1
			continue
		}
		first[d.key()] = len(out)
		out = append(out, d)
	}
	return out
}

// Diagnostics is every finding of one load, in file order.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an Error or Fatal.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity >= Error {
			return true
		}
	}
	return false
}

// Count returns how many diagnostics have exactly severity s.
func (ds Diagnostics) Count(s Severity) int {
	n := 0
	for _, d := range ds {
		if d.Severity == s {
			n++
		}
	}
	return n
}

func (ds Diagnostics) String() string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Env is everything the config package needs from the host. The package
// itself never touches the file system, the network or the clock (so that it
// stays pure and testable); internal/hostenv supplies the real Env and tests
// supply maps.
type Env struct {
	// ReadFile returns the contents of a file by absolute or relative path.
	// It must not block on a FIFO or a device and should refuse to read
	// more than MaxFileSize bytes (internal/hostenv's does both); the
	// preprocessor also refuses a longer result.
	ReadFile func(name string) ([]byte, error)
	// Stat describes a file, following symbolic links, without opening
	// it. The preprocessor asks before it reads an include, so that a
	// FIFO, a device, a directory or an executable file is skipped as
	// keepalived skips it, without ever opening it, and a file larger
	// than MaxFileSize is refused before it is read. Nil takes every
	// name for a regular file.
	Stat func(name string) (fs.FileInfo, error)
	// Glob expands a shell glob (no brace expansion: the preprocessor does
	// that) and returns matches sorted.
	Glob func(pattern string) ([]string, error)
	// Hostname is the short host name, the default config id for @ID lines.
	Hostname string
	// ID is the config id given with -i; empty means Hostname.
	ID string
	// InterfaceExists reports whether a network interface exists on this
	// host. Nil skips the check (as when checking a config for another host).
	InterfaceExists func(name string) bool
	// CheckScript validates a script path for execution: it must exist and
	// be executable, and with enable_script_security neither it nor any
	// directory above it may be writable by a non-root user. It returns a
	// plain-words error. Nil skips the check.
	CheckScript func(path string, security bool) error
	// UserExists reports whether a user name (or numeric uid) exists on
	// this host, for script users and keepalived's default script user
	// keepalived_script. Nil skips the check and assumes keepalived_script
	// does not exist (scripts then default to root, as on most hosts).
	UserExists func(name string) bool
	// GroupExists reports whether a group name (or numeric gid) exists.
	// Nil skips the check.
	GroupExists func(name string) bool
	// HostResolves reports whether a host name resolves to an address
	// (keepalived resolves smtp_server while reading the configuration).
	// Nil skips the check.
	HostResolves func(name string) bool
	// Forwarding reports whether this host forwards packets of a family
	// (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding); known false
	// means it could not tell. A NAT or FNAT virtual server needs it. Nil
	// skips the check (as when checking a config for another host).
	Forwarding func(f inet.Family) (on, known bool)
}

// MaxFileSize is the most vigil reads of one configuration file (the main
// file or an include): 16 MiB, far more than any hand-written or generated
// keepalived.conf (the man page's 65,024-instance ~SEQ example is under
// 1 KiB of text), and small enough that a file that keeps growing (a log
// included by mistake) cannot exhaust memory.
const MaxFileSize = 16 << 20

// ErrScriptTolerated is wrapped by an Env.CheckScript error that keepalived
// does not reject at load time, such as a script without an execute bit
// (it then fails at every run): vigil reports it as a warning, so that
// `vigil check` still fails exactly when `keepalived -t` does.
var ErrScriptTolerated = errors.New("keepalived accepts this at load time")
