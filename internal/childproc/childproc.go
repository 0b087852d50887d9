// Package childproc is the line protocol between the daemon and a child
// process it runs for one job (the BFD process of bfd/link, vigil-bgp of
// bgp/speaker), and the daemon's handle on such a child: one JSON object
// (Msg) per line over a unix stream socketpair, fd 3 in the child.
// Requests carry an id and get exactly one reply with that id (err empty
// on success); messages without an id are events. Both ends are built
// from the same tree, so there is no version negotiation; each package
// defines its own ops and bodies. A child's log records travel as
// OpLog events and are logged again by the daemon's logger (its format,
// level and destination).
//
// A line that is not a Msg is counted and skipped, by either end: it
// does not end the connection.
package childproc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Msg is one line: a request (ID and Op), its reply (ID, and Err when it
// failed) or an event (Op only).
type Msg struct {
	ID   uint64          `json:"id,omitempty"`
	Op   string          `json:"op,omitempty"`
	Err  string          `json:"err,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// NewMsg is a Msg with body (nil for none) encoded.
func NewMsg(id uint64, op string, body any) (Msg, error) {
	m := Msg{ID: id, Op: op}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return m, err
		}
		m.Body = b
	}
	return m, nil
}

// OpLog is the event that carries one of the child's log records
// (LogBody).
const OpLog = "log"

// LogBody is one log record of the child.
type LogBody struct {
	Level slog.Level  `json:"level"`
	Msg   string      `json:"msg"`
	Attrs [][2]string `json:"attrs,omitempty"`
}

// writeTimeout bounds a write to the other end: one that stopped reading
// must not block the daemon's loop.
const writeTimeout = 5 * time.Second

// maxLine is the longest line read (a status of many sessions is long).
const maxLine = 16 << 20

// Reader reads Msgs, one a line, skipping (and counting) lines that are
// not one.
type Reader struct {
	sc        *bufio.Scanner
	malformed atomic.Uint64
}

// NewReader reads from r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &Reader{sc: sc}
}

// Next returns the next Msg, or the error that ended the stream (io.EOF
// when it ended cleanly).
func (r *Reader) Next() (Msg, error) {
	for r.sc.Scan() {
		var m Msg
		if err := json.Unmarshal(r.sc.Bytes(), &m); err != nil {
			r.malformed.Add(1)
			continue
		}
		return m, nil
	}
	if err := r.sc.Err(); err != nil {
		return Msg{}, err
	}
	return Msg{}, io.EOF
}

// Malformed counts the lines skipped for not being a Msg.
func (r *Reader) Malformed() uint64 { return r.malformed.Load() }

// Writer serialises the Msgs of several goroutines onto one connection.
type Writer struct {
	conn net.Conn
	mu   sync.Mutex
	enc  *json.Encoder
}

// NewWriter writes to conn.
func NewWriter(conn net.Conn) *Writer { return &Writer{conn: conn, enc: json.NewEncoder(conn)} }

// Write sends m, giving up after timeout (0: writeTimeout).
func (w *Writer) Write(m Msg, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = writeTimeout
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(timeout))
	return w.enc.Encode(m)
}

// Send sends the event op with body.
func (w *Writer) Send(op string, body any) error {
	m, err := NewMsg(0, op, body)
	if err != nil {
		return fmt.Errorf("encode %s: %w", op, err)
	}
	return w.Write(m, 0)
}

// Reply answers request id with body (nil for none) or err.
func (w *Writer) Reply(id uint64, body any, err error) error {
	m, merr := NewMsg(id, "", body)
	if merr != nil && err == nil {
		err = merr
	}
	if err != nil {
		m.Err = err.Error()
	}
	return w.Write(m, 0)
}

// Logger is a logger whose records at level or above go to the other end
// as OpLog events.
func (w *Writer) Logger(level slog.Level) *slog.Logger {
	return slog.New(&logForward{w: w, level: level})
}

type logForward struct {
	w     *Writer
	level slog.Level
	attrs [][2]string
}

func (h *logForward) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *logForward) Handle(_ context.Context, r slog.Record) error {
	b := LogBody{Level: r.Level, Msg: r.Message, Attrs: append([][2]string(nil), h.attrs...)}
	r.Attrs(func(a slog.Attr) bool {
		b.Attrs = append(b.Attrs, [2]string{a.Key, a.Value.String()})
		return true
	})
	return h.w.Send(OpLog, b)
}

func (h *logForward) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([][2]string(nil), h.attrs...)
	for _, a := range as {
		n.attrs = append(n.attrs, [2]string{a.Key, a.Value.String()})
	}
	return &n
}

func (h *logForward) WithGroup(string) slog.Handler { return h }

// ReplyError is an error the child answered a request with: the
// transport worked.
type ReplyError struct{ Msg string }

func (e *ReplyError) Error() string { return e.Msg }

// Child is one running child process and the daemon's end of its socket.
type Child struct {
	name    string
	conn    net.Conn
	proc    *os.Process
	w       *Writer
	r       *Reader
	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan Msg
	gone    chan struct{} // closed when the connection ended
	exited  chan struct{} // closed when the process was reaped
}

// Start starts cmd with its end of a new socketpair as fd 3, in its own
// process group (a Ctrl-C at the daemon's terminal is the daemon's to
// handle; cmd.SysProcAttr may add Pdeathsig), its stderr the daemon's
// unless cmd sets one (a panic's trace reaches the daemon's log). It
// then reads the child's lines until the connection ends: a reply goes
// to the Call waiting for it, an OpLog record to log, any other event to
// onEvent, on the reading goroutine. name names the child in errors.
func Start(cmd *exec.Cmd, name string, log *slog.Logger, onEvent func(Msg)) (*Child, error) {
	// Close-on-exec on both ends: only the child gets its end (as fd 3),
	// and no script the daemon runs inherits either, so the child sees
	// EOF the moment the daemon is gone.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), name), os.NewFile(uintptr(fds[1]), "daemon")
	defer theirs.Close()
	cmd.ExtraFiles = []*os.File{theirs}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	c := &Child{name: name, conn: conn, proc: cmd.Process, w: NewWriter(conn), r: NewReader(conn),
		pending: map[uint64]chan Msg{}, gone: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	go c.read(log, onEvent)
	return c, nil
}

// read receives replies and events until the connection ends.
func (c *Child) read(log *slog.Logger, onEvent func(Msg)) {
	defer close(c.gone)
	for {
		m, err := c.r.Next()
		if err != nil {
			return
		}
		if m.ID != 0 {
			c.mu.Lock()
			ch := c.pending[m.ID]
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		if m.Op == OpLog {
			var lb LogBody
			if json.Unmarshal(m.Body, &lb) == nil {
				args := make([]any, 0, len(lb.Attrs))
				for _, a := range lb.Attrs {
					args = append(args, slog.String(a[0], a[1]))
				}
				log.Log(context.Background(), lb.Level, lb.Msg, args...)
			}
			continue
		}
		if onEvent != nil {
			onEvent(m)
		}
	}
}

// Call sends the request op with body (nil for none) and waits for its
// reply, decoding its body into out (nil to ignore it). An error the
// child answered with is a *ReplyError (out is still decoded); ctx bounds
// the wait (and the write, at most writeTimeout).
func (c *Child) Call(ctx context.Context, op string, body, out any) error {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan Msg, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	m, err := NewMsg(id, op, body)
	if err != nil {
		return err
	}
	timeout := writeTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if err := c.w.Write(m, timeout); err != nil {
		return fmt.Errorf("%s: %w", c.name, err)
	}
	select {
	case r := <-ch:
		if out != nil && len(r.Body) > 0 {
			if err := json.Unmarshal(r.Body, out); err != nil {
				return fmt.Errorf("%s: reply to %s: %w", c.name, op, err)
			}
		}
		if r.Err != "" {
			return &ReplyError{Msg: r.Err}
		}
		return nil
	case <-c.gone:
		return fmt.Errorf("%s exited", c.name)
	case <-ctx.Done():
		return fmt.Errorf("%s did not answer %s: %w", c.name, op, ctx.Err())
	}
}

// Send sends the event op with body (nil for none).
func (c *Child) Send(op string, body any) error { return c.w.Send(op, body) }

// Kill ends the child at once and waits for it.
func (c *Child) Kill() {
	_ = c.proc.Kill()
	_ = c.conn.Close()
	<-c.exited
}

// Gone is closed when the connection to the child ended (it exited or
// closed its end).
func (c *Child) Gone() <-chan struct{} { return c.gone }

// Exited is closed once the child process was reaped.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Pid is the child's process id.
func (c *Child) Pid() int { return c.proc.Pid }

// Malformed counts the lines from the child that were not a Msg.
func (c *Child) Malformed() uint64 { return c.r.Malformed() }

// Conn is a child's end of the socketpair: fd 3.
func Conn() (net.Conn, error) { return net.FileConn(os.NewFile(3, "daemon")) }

// MainIfChild is for a test binary that its tests also run as the child
// (with the environment variable env set): then it serves Conn with serve
// and exits, 0 when serve returned nil, 1 with the error on stderr
// otherwise. Without env it returns, and the tests run.
func MainIfChild(env string, serve func(net.Conn) error) {
	if os.Getenv(env) == "" {
		return
	}
	conn, err := Conn()
	if err == nil {
		err = serve(conn)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s child: %v\n", env, err)
		os.Exit(1)
	}
	os.Exit(0)
}
