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
// non-blocking socket on the connect watcher's epoll instance, the
// request written and the response read as the socket becomes ready, the
// connect_timeout a job in the loop's heap. On a worker goroutine through
// net.Dialer and net.Conn, 3 HTTP_GETs a second cost 0.85% of a core
// against keepalived's 0.17% for its whole checker and VRRP processes
// (bench/footprint.sh; docs/benchmarks.md): every check was two goroutine
// hand-offs, parks on the runtime's poller for the connect, the request
// and each read, and system calls through the runtime's Syscall, each of
// which wakes the sleeping sysmon thread to poll every 20 µs while the
// check lasts. Here each step is a raw system call on the loop.
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
	req        []byte // the request's bytes not yet written
	buf        []byte // the response as read so far
	eof        bool
	head       int       // the header's length in buf, once complete
	resp       *Response // the parsed header, once complete
	headErr    error     // why the header cannot be parsed, once known
}

// maxHead is the longest response header readHead accepts.
const maxHead = 64 << 10

var errHeadTooLong = errors.New("response header longer than 64 KiB")

// open starts connecting h to the target for URL h.url, on a socket with
// the checker's options. On error no socket is left open.
func (c *HTTP) open(h *httpConn) (fd int, err error) {
	h.step, h.req, h.buf, h.eof, h.head, h.resp, h.headErr = "connect", c.reqs[h.url], h.buf[:0], false, 0, nil, nil
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
	if h.resp == nil {
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
		case n == 0:
			h.eof = true
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
	if h.resp == nil {
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
		h.head = end
		if h.resp, h.headErr = readHead(bufio.NewReaderSize(bytes.NewReader(h.buf[:end]), 16)); h.headErr != nil {
			return true
		}
		h.step = "read body"
	}
	body := int64(len(h.buf) - h.head)
	if n, ok := h.c.contentLength(h.resp); ok {
		return body >= n
	}
	return body > h.c.cfg.MaxBody
}

// headEnd is the length of the header in b, up to and including the
// empty line that ends it (CRLF or LF line ends, as readHead reads), or
// -1 while it is not all there.
func headEnd(b []byte) int {
	for k := 0; k < len(b); {
		nl := bytes.IndexByte(b[k:], '\n')
		if nl < 0 {
			return -1
		}
		line := b[k : k+nl+1]
		k += nl + 1
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			return k
		}
	}
	return -1
}

// contentLength is the body length at which Get stops reading: a valid
// Content-Length within MaxBody and no Transfer-Encoding.
func (c *HTTP) contentLength(r *Response) (int64, bool) {
	n, err := strconv.ParseInt(r.Header.Get("Content-Length"), 10, 64)
	if err != nil || n < 0 || r.Header.Get("Transfer-Encoding") != "" || n > c.cfg.MaxBody {
		return 0, false
	}
	return n, true
}

// response is the Response in h.buf once advance is done (as Get would
// have read it), or the error Get would have failed with.
func (h *httpConn) response() (*Response, error) {
	if h.resp == nil && h.headErr == nil {
		// Closed, or over the limit, inside the header: readHead says
		// which, from the bytes that came.
		h.resp, h.headErr = readHead(bufio.NewReaderSize(bytes.NewReader(h.buf), 4096))
		if h.headErr == nil {
			h.head = len(h.resp.RawHeader)
			h.step = "read body"
		}
	}
	if h.headErr != nil {
		h.step = "read response"
		return nil, h.headErr
	}
	r := h.resp
	body := h.buf[h.head:]
	if n, ok := h.c.contentLength(r); ok && int64(len(body)) > n {
		body = body[:n]
	}
	h.c.setBody(r, body)
	return r, nil
}

// setBody sets r's Body, Truncated and Digest from body, the bytes read
// after the header (at most MaxBody + 1 of them).
func (c *HTTP) setBody(r *Response, body []byte) {
	if int64(len(body)) > c.cfg.MaxBody {
		body, r.Truncated = body[:c.cfg.MaxBody], true
	}
	r.Body = body
	sum := md5.Sum(body)
	r.Digest = hex.EncodeToString(sum[:])
}

// conclude words the end of URL h.url: a step's failure (err), or the
// response judged. more says the URL passed and another follows, to be
// fetched on a new connection; otherwise res is the check's result.
func (c *HTTP) conclude(h *httpConn, err error) (res Result, more bool) {
	u := c.cfg.URLs[h.url]
	what := c.describeURL(u)
	if err != nil {
		return down(what+": "+h.step+": "+c.cfg.stepWords(err), h.start), false
	}
	r, err := h.response()
	if err != nil {
		return down(what+": "+h.step+": "+c.cfg.stepWords(err), h.start), false
	}
	if why := c.judge(u, r); why != "" {
		return down(what+": "+why, h.start), false
	}
	if h.url+1 < len(c.cfg.URLs) {
		return Result{}, true
	}
	return c.passed(h.start), false
}

// passed is the result of a check whose URLs all passed.
func (c *HTTP) passed(start time.Time) Result {
	if len(c.cfg.URLs) == 1 {
		return up(c.describeURL(c.cfg.URLs[0])+": ok", start)
	}
	return up(fmt.Sprintf("%d urls ok", len(c.cfg.URLs)), start)
}

// stepWords is stepError for the loop, which has no context: a timeout
// (errTimeout) in the words of connect_timeout.
func (t *Target) stepWords(err error) string {
	if err == errTimeout {
		return fmt.Sprintf("timed out after %v", t.Timeout)
	}
	return describe(err)
}
