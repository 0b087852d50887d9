// Package logging builds vigil's logger the way keepalived logs (keepalived(8)
// -l, -S, -G): to syslog by default with a configurable facility, to the
// console with -l, or nowhere. Console output under systemd (JOURNAL_STREAM
// naming stderr) carries sd-daemon(3) "<N>" priority prefixes, so that
// journald records each line's priority and `journalctl -p err` finds the
// errors.
//
// Records are slog records; the syslog form drops the time and level (syslog
// stamps both) and puts the message first, so a transition line reads
// "(VI_1) Entering MASTER STATE from=BACKUP ..." as keepalived's does.
package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Dest is where log records go.
type Dest int

const (
	Console Dest = iota // stderr, slog text format
	Syslog              // the local syslog socket (/dev/log)
	None                // nowhere (keepalived -G without -l)
	Both                // console and syslog (keepalived -l without -G)
)

// Options say how to log.
type Options struct {
	Dest     Dest
	Level    slog.Level
	Facility syslog.Priority // for Syslog; LOG_DAEMON when zero
	Ident    string          // syslog tag; "vigil" when empty
	// Journal prefixes console lines with "<N>" (sd-daemon priorities).
	Journal bool
	// Network and Addr name the syslog socket; empty means the local one
	// (/dev/log), as keepalived uses.
	Network, Addr string
}

// ParseFacility reads keepalived's -S argument: 0-7 (LOG_LOCAL0..7),
// local0..local7, user or daemon.
func ParseFacility(s string) (syslog.Priority, error) {
	switch strings.ToLower(s) {
	case "user":
		return syslog.LOG_USER, nil
	case "daemon":
		return syslog.LOG_DAEMON, nil
	}
	n := strings.TrimPrefix(strings.ToLower(s), "local")
	if i, err := strconv.Atoi(n); err == nil && i >= 0 && i <= 7 && n != "" {
		return syslog.LOG_LOCAL0 + syslog.Priority(i)<<3, nil
	}
	return 0, fmt.Errorf("log facility %q: expected 0-7, local0-local7, user or daemon", s)
}

// UnderJournal reports whether stderr is the journal stream systemd set up
// for this service (JOURNAL_STREAM is "device:inode" of that stream, and a
// child whose stderr was redirected must not use the prefixes).
func UnderJournal(stderr *os.File) bool {
	id, ok := StreamID(stderr)
	return ok && os.Getenv("JOURNAL_STREAM") == id
}

// StreamID is f's "device:inode", as JOURNAL_STREAM names a stream; false
// when f is nil or cannot be stat'ed.
func StreamID(f *os.File) (string, bool) {
	if f == nil {
		return "", false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return "", false
	}
	return strconv.FormatUint(st.Dev, 10) + ":" + strconv.FormatUint(st.Ino, 10), true
}

// New returns the logger and a Close for its resources. A syslog that
// cannot be reached falls back to the console with a warning, so a daemon
// never runs blind.
func New(o Options, stderr io.Writer) (*slog.Logger, func() error, error) {
	noClose := func() error { return nil }
	switch o.Dest {
	case None:
		return slog.New(discard{}), noClose, nil
	case Syslog, Both:
		w, err := dialSyslog(o)
		if err != nil {
			log := slog.New(consoleHandler(stderr, o))
			log.Warn("syslog unreachable; logging to the console instead", "err", err)
			return log, noClose, nil
		}
		h := newSyslogHandler(w, o.Level)
		if o.Dest == Both {
			h = tee{consoleHandler(stderr, o), h}
		}
		return slog.New(h), w.Close, nil
	}
	return slog.New(consoleHandler(stderr, o)), noClose, nil
}

func dialSyslog(o Options) (*syslog.Writer, error) {
	fac := o.Facility
	if fac == 0 {
		fac = syslog.LOG_DAEMON
	}
	ident := o.Ident
	if ident == "" {
		ident = "vigil"
	}
	return syslog.Dial(o.Network, o.Addr, fac|syslog.LOG_INFO, ident)
}

func consoleHandler(w io.Writer, o Options) slog.Handler {
	if !o.Journal {
		return slog.NewTextHandler(w, &slog.HandlerOptions{Level: o.Level})
	}
	lw := &levelWriter{out: w}
	return &levelHandler{mu: &sync.Mutex{}, lw: lw, inner: slog.NewTextHandler(lw, &slog.HandlerOptions{Level: o.Level})}
}

// Priority is the syslog severity of a slog level (RFC 5424 numbers).
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3 // err
	case l >= slog.LevelWarn:
		return 4 // warning
	case l >= slog.LevelInfo:
		return 6 // info
	}
	return 7 // debug
}

// levelHandler lets the writer below a slog.TextHandler know the level of
// the record being written: the text handler writes each record with one
// Write call, made while mu is held.
type levelHandler struct {
	mu    *sync.Mutex
	lw    *levelWriter
	inner slog.Handler
}

type levelWriter struct {
	out   io.Writer
	level slog.Level
	// sink, when set, receives each record instead of out (syslog).
	sink func(level slog.Level, line []byte) error
}

func (w *levelWriter) Write(p []byte) (int, error) {
	if w.sink != nil {
		return len(p), w.sink(w.level, bytes.TrimRight(p, "\n"))
	}
	// One prefix per line: a multi-line message must not lose its priority.
	var b bytes.Buffer
	prefix := "<" + strconv.Itoa(Priority(w.level)) + ">"
	for _, line := range bytes.SplitAfter(p, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		b.WriteString(prefix)
		b.Write(line)
	}
	if _, err := w.out.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (h *levelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *levelHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lw.level = r.Level
	return h.inner.Handle(ctx, r)
}

func (h *levelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &levelHandler{mu: h.mu, lw: h.lw, inner: h.inner.WithAttrs(as)}
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	return &levelHandler{mu: h.mu, lw: h.lw, inner: h.inner.WithGroup(name)}
}

// syslogWriter is the part of *syslog.Writer the handler uses.
type syslogWriter interface {
	Err(string) error
	Warning(string) error
	Info(string) error
	Debug(string) error
}

// newSyslogHandler formats records as "message key=value ..." (no time, no
// level: syslog adds both) and sends each at its severity.
func newSyslogHandler(w syslogWriter, level slog.Level) slog.Handler {
	lw := &levelWriter{sink: func(l slog.Level, line []byte) error {
		s := bareLine(string(line))
		switch Priority(l) {
		case 3:
			return w.Err(s)
		case 4:
			return w.Warning(s)
		case 6:
			return w.Info(s)
		}
		return w.Debug(s)
	}}
	inner := slog.NewTextHandler(lw, &slog.HandlerOptions{Level: level, ReplaceAttr: bareMessage})
	return &levelHandler{mu: &sync.Mutex{}, lw: lw, inner: inner}
}

// bareMessage drops time and level: syslog stamps both.
func bareMessage(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey) {
		return slog.Attr{}
	}
	return a
}

// bareLine turns `msg="(VI_1) Entering MASTER STATE" k=v` into
// `(VI_1) Entering MASTER STATE k=v`, so that a syslog line starts with the
// message as keepalived's do.
func bareLine(s string) string {
	rest, ok := strings.CutPrefix(s, slog.MessageKey+"=")
	if !ok {
		return s
	}
	if strings.HasPrefix(rest, `"`) {
		if q, err := strconv.QuotedPrefix(rest); err == nil {
			if m, err := strconv.Unquote(q); err == nil {
				return m + rest[len(q):]
			}
		}
		return rest
	}
	return rest
}

// tee sends each record to both handlers.
type tee [2]slog.Handler

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	return t[0].Enabled(ctx, l) || t[1].Enabled(ctx, l)
}

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	var errs [2]error
	for i, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs[i] = h.Handle(ctx, r.Clone())
		}
	}
	if errs[0] != nil {
		return errs[0]
	}
	return errs[1]
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	return tee{t[0].WithAttrs(as), t[1].WithAttrs(as)}
}

func (t tee) WithGroup(name string) slog.Handler {
	return tee{t[0].WithGroup(name), t[1].WithGroup(name)}
}

type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }
