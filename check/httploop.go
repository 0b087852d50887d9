package check

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The Runner drives a plain HTTP_GET itself, as it drives a TCP_CHECK,
// and as keepalived's checker process drives all its checks: a
// non-blocking socket on the loop's epoll instance, the request written
// and the response read as the socket becomes ready, the connect_timeout
// a job in the loop's heap. On a worker goroutine through net.Dialer and
// net.Conn, 3 HTTP_GETs a second cost 0.85% of a core against
// keepalived's 0.17% for its whole checker and VRRP processes
// (bench/footprint.sh; docs/benchmarks.md): every check was two goroutine
// hand-offs, parks on the runtime's poller for the connect, the request
// and each read, system calls through the runtime's Syscall, each of
// which wakes the sleeping sysmon thread to poll every 20 µs while the
// check lasts, and textproto's maps and strings. Here each step is a raw
// system call on the loop, and a plain header is read in place
// (fastHead). Measured side by side with nothing allocated per check
// either (loop.go), it is level with keepalived's checker: 0.128-0.132%
// of a core against 0.125-0.141%.
//
// HTTP.Get remains the one-shot form (HTTP.Check, SSL_GET, genhash), and
// an HTTP_GET's result is the same either way, word for word
// (TestHTTPThroughRunner runs every case of both).

// httpConn is the state of one HTTP_GET check on the loop: the URL being
// fetched, on a connection of its own.
type httpConn struct {
	c     *HTTP
	url   int       // the index of the URL being fetched
	start time.Time // the check's, for its Latency
	// step names what is under way, for a failure's words, as Get's:
	// connect, send request, read response, read body.
	step       string
	connecting bool
	req        []byte   // the request's bytes not yet written
	buf        []byte   // the response as read so far
	head       int      // the header's length in buf, once parsed
	parsed     bool     // the header is parsed: r.Status, cl and te hold it
	r          Response // the response, as judge reads it
	cl         []byte   // the Content-Length field's value, in buf
	te         bool     // a Transfer-Encoding field is there
	headErr    error    // why the header cannot be parsed, once known
}

// maxHead is the longest response header readHead accepts.
const maxHead = 64 << 10

var errHeadTooLong = errors.New("response header longer than 64 KiB")

// open starts connecting h to the target for URL h.url, on a socket with
// the checker's options. On error no socket is left open.
func (c *HTTP) open(h *httpConn) (fd int, err error) {
	// A fresh state for this URL; the check's and the buffer carry on.
	*h = httpConn{c: h.c, url: h.url, start: h.start, step: "connect", req: c.reqs[h.url], buf: h.buf[:0]}
	if fd, err = c.conn.socket(); err != nil {
		return -1, err
	}
	if h.connecting, err = c.conn.dial(fd); err != nil {
		rawClose(fd)
		return -1, err
	}
	return fd, nil
}

// advance takes h as far as fd allows without blocking: the connect's
// outcome, the request, the response. It returns the readiness to wait for
// next (EPOLLOUT or EPOLLIN) or done, with err saying why it failed;
// done without err, the response is in buf.
func (h *httpConn) advance(fd int) (wait uint32, done bool, err error) {
	if h.connecting {
		still, err := finish(fd)
		if err != nil {
			return 0, true, err
		}
		if still {
			return unix.EPOLLOUT, false, nil
		}
		h.connecting = false
	}
	if len(h.req) > 0 {
		h.step = "send request"
	}
	for len(h.req) > 0 {
		n, err := rawWrite(fd, h.req)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return unix.EPOLLOUT, false, nil
		case err != nil:
			return 0, true, err
		}
		h.req = h.req[n:]
	}
	if !h.parsed {
		h.step = "read response"
	}
	for {
		if len(h.buf) == cap(h.buf) {
			h.buf = slices.Grow(h.buf, max(4096, len(h.buf)))
		}
		n, err := rawRead(fd, h.buf[len(h.buf):cap(h.buf)])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return unix.EPOLLIN, false, nil
		case err != nil:
			return 0, true, err
		case n == 0: // the server closed: the response is what came
			return 0, true, nil
		}
		h.buf = h.buf[:len(h.buf)+n]
		if h.complete() {
			return 0, true, nil
		}
	}
}

// complete reports whether buf holds all of the response that Get would
// read before the server closes: a header, then the Content-Length's
// bytes when Get stops there, or more than MaxBody bytes of body; or a
// header that cannot be parsed, or is too long.
func (h *httpConn) complete() bool {
	if !h.parsed {
		end := headEnd(h.buf)
		if end < 0 {
			if len(h.buf) > maxHead {
				// Get would read on to the line's end and say the
				// same; this stops at the limit.
				h.headErr = errHeadTooLong
				return true
			}
			return false
		}
		if h.parse(h.buf[:end]); h.headErr != nil {
			return true
		}
	}
	body := int64(len(h.buf) - h.head)
	if n, ok := h.c.contentLength(h.cl, h.te); ok {
		return body >= n
	}
	return body > h.c.cfg.MaxBody
}

// parse parses the header b (up to its empty line): at once when it is
// plainly well formed (fastHead), else through readHead, which words
// what is wrong with it as Get would.
func (h *httpConn) parse(b []byte) {
	if status, cl, te, ok := fastHead(b); ok && len(b) <= maxHead {
		h.r.Status, h.cl, h.te = status, cl, te
	} else {
		r, err := readHead(bufio.NewReaderSize(bytes.NewReader(b), 4096))
		if err != nil {
			h.headErr = err
			return
		}
		b = r.RawHeader
		h.r.Status, h.cl, h.te = r.Status, []byte(r.Header.Get("Content-Length")), r.Header.Get("Transfer-Encoding") != ""
	}
	h.head, h.parsed, h.step = len(b), true, "read body"
}

// headEnd is the length of the header in b, up to and including the
// empty line that ends it (a line of nothing but CRs, as readHead reads
// it), or -1 while it is not all there.
func headEnd(b []byte) int {
	for k := 0; k < len(b); {
		nl := bytes.IndexByte(b[k:], '\n')
		if nl < 0 {
			return -1
		}
		line := b[k : k+nl]
		k += nl + 1
		if len(bytes.Trim(line, "\r")) == 0 {
			return k
		}
	}
	return -1
}

// fastHead parses a header block that is plainly well formed: a status
// line "HTTP/... NNN ...", then fields of a token, a colon and a value of
// visible characters, spaces and tabs, each line ending in LF or CRLF, up
// to the empty line. It returns the status, the first Content-Length's
// value (trimmed) and whether there is a Transfer-Encoding, as readHead's
// Response would hold them; ok is false for anything else (a folded
// line, a control character, a malformed status line...), which readHead
// then parses. Every block it takes, textproto takes too, so the two agree;
// it spares each check the lines, the map and the collections they cost.
func fastHead(b []byte) (status int, cl []byte, te, ok bool) {
	line, rest := cutLine(b)
	proto, after, _ := bytes.Cut(line, []byte(" "))
	code, _, _ := bytes.Cut(after, []byte(" "))
	if !bytes.HasPrefix(proto, []byte("HTTP/")) || len(code) != 3 || !fieldValue(line) {
		return 0, nil, false, false
	}
	for _, d := range code {
		if d < '0' || d > '9' {
			return 0, nil, false, false
		}
		status = status*10 + int(d-'0')
	}
	haveCL := false
	for {
		line, rest = cutLine(rest)
		if len(line) == 0 {
			return status, cl, te, len(rest) == 0
		}
		key, val, found := bytes.Cut(line, []byte(":"))
		if !found || len(key) == 0 || !token(key) || !fieldValue(val) {
			return 0, nil, false, false
		}
		val = bytes.Trim(val, " \t")
		switch {
		case !haveCL && bytes.EqualFold(key, []byte("Content-Length")):
			cl, haveCL = val, true
		case bytes.EqualFold(key, []byte("Transfer-Encoding")):
			te = te || len(val) > 0
		}
	}
}

// cutLine cuts b after its first LF; line is without the LF and one CR
// before it.
func cutLine(b []byte) (line, rest []byte) {
	line, rest, _ = bytes.Cut(b, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), rest
}

// token says b is all RFC 9110 token characters (a field name).
func token(b []byte) bool {
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0:
		default:
			return false
		}
	}
	return true
}

// fieldValue says b has no control character but tabs.
func fieldValue(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// contentLength is the body length at which Get stops reading, from the
// Content-Length field's value cl and whether there is a
// Transfer-Encoding: a valid length within MaxBody and no encoding.
func (c *HTTP) contentLength(cl []byte, te bool) (int64, bool) {
	n, err := strconv.ParseInt(string(cl), 10, 64)
	if err != nil || n < 0 || te || n > c.cfg.MaxBody {
		return 0, false
	}
	return n, true
}

// response is the Response in h.buf once advance is done (as Get would
// have read it, its digest only where u asks for one), or the error Get
// would have failed with.
func (h *httpConn) response(u URL) (*Response, error) {
	if !h.parsed && h.headErr == nil {
		// Closed inside the header (complete parses a whole header as
		// soon as it is in buf): readHead words what came, as Get would.
		_, h.headErr = readHead(bufio.NewReaderSize(bytes.NewReader(h.buf), 4096))
	}
	if h.headErr != nil {
		h.step = "read response"
		return nil, h.headErr
	}
	body := h.buf[h.head:]
	if n, ok := h.c.contentLength(h.cl, h.te); ok && int64(len(body)) > n {
		body = body[:n]
	}
	h.c.setBody(&h.r, body, u.Digest != "")
	return &h.r, nil
}

// setBody sets r's Body, Truncated and, with digest, Digest from body,
// the bytes read after the header (at most MaxBody + 1 of them).
func (c *HTTP) setBody(r *Response, body []byte, digest bool) {
	if int64(len(body)) > c.cfg.MaxBody {
		body, r.Truncated = body[:c.cfg.MaxBody], true
	}
	r.Body = body
	if digest {
		sum := md5.Sum(body)
		r.Digest = hex.EncodeToString(sum[:])
	}
}

// conclude words the end of URL h.url: a step's failure (err), or the
// response judged. more says the URL passed and another follows, to be
// fetched on a new connection; otherwise res is the check's result.
func (c *HTTP) conclude(h *httpConn, err error) (res Result, more bool) {
	u := c.cfg.URLs[h.url]
	if err != nil {
		return down(c.describeURL(u)+": "+h.step+": "+c.cfg.stepWords(err), h.start), false
	}
	r, err := h.response(u)
	if err != nil {
		return down(c.describeURL(u)+": "+h.step+": "+c.cfg.stepWords(err), h.start), false
	}
	if why := c.judge(u, r); why != "" {
		return down(c.describeURL(u)+": "+why, h.start), false
	}
	if h.url+1 < len(c.cfg.URLs) {
		return Result{}, true
	}
	return c.passed(h.start), false
}

// passed is the result of a check whose URLs all passed.
func (c *HTTP) passed(start time.Time) Result { return up(c.okDetail, start) }

// stepWords is stepError for the loop, which has no context: a timeout
// (errTimeout) in the words of connect_timeout.
func (t *Target) stepWords(err error) string {
	if err == errTimeout {
		return fmt.Sprintf("timed out after %v", t.Timeout)
	}
	return describe(err)
}
