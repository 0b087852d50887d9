package check

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// HTTP_GET and SSL_GET use a small hand-written HTTP/1.x client rather than
// net/http, for two reasons found by running keepalived's genhash:
//   - keepalived's default request is "GET path HTTP/1.0" (http_protocol 1.0,
//     no Connection header; 1.0C adds "Connection: close"; 1.1 sends
//     HTTP/1.1 with "Connection: close"), and net/http can only speak 1.1;
//   - the digest is the MD5 of the raw bytes after the header block, chunk
//     framing included, so a digest made with keepalived's genhash for a
//     chunked page only matches if the body is NOT decoded, which net/http
//     always does.
// The response header is parsed with net/textproto. Every check opens a new
// connection and closes it: keepalived never keeps one alive between checks.

// Protocol values of http_protocol.
const (
	HTTP10      = "1.0"  // GET ... HTTP/1.0, no Connection header (keepalived's default)
	HTTP10Close = "1.0C" // HTTP/1.0 plus "Connection: close"
	HTTP11      = "1.1"  // HTTP/1.1 with "Connection: close"
)

// DefaultMaxBody caps how much of a body a check reads. A health page is
// small; a larger body fails a digest or regex URL instead of using memory
// without bound.
const DefaultMaxBody = 1 << 20

// userAgent keeps the token keepalived's checker sends so that access-log
// filters written for keepalived keep working.
const userAgent = "KeepAliveClient (vigil)"

// HTTPConfig configures an HTTP_GET, or an SSL_GET with TLS set.
type HTTPConfig struct {
	Target
	TLS bool // SSL_GET
	// SNI is enable_sni: send the URL's virtual host as TLS server name.
	SNI bool
	// TLSConfig is an optional base for SSL_GET, e.g. the client certificate
	// of keepalived's SSL block. As in keepalived the server's certificate
	// is never verified: a health check tests the service, not the PKI.
	TLSConfig *tls.Config
	// Protocol is http_protocol: HTTP10 (default), HTTP10Close or HTTP11;
	// "1.0c" is accepted too, as genhash spells it.
	Protocol string
	// VirtualHost is the default Host header (the checker's, real server's
	// or virtual server's virtualhost, resolved by the caller); empty sends
	// the target address and port.
	VirtualHost string
	URLs        []URL
	// MaxBody caps the bytes read from each body; zero means DefaultMaxBody.
	MaxBody int64
}

// URL is one url block. All URLs of a checker must pass for it to be up.
type URL struct {
	Path string
	// Digest is the expected MD5 of the body, in hex as genhash prints it;
	// empty skips the comparison.
	Digest string
	// StatusCodes are the accepted codes; nil means 200-299.
	StatusCodes StatusCodes
	// VirtualHost overrides HTTPConfig.VirtualHost for this URL.
	VirtualHost string
	// Regex must match the body (keepalived uses PCRE; vigil uses Go's RE2
	// syntax, which covers the usual patterns). RegexNoMatch inverts it.
	Regex        *regexp.Regexp
	RegexNoMatch bool
	// RegexMinOffset is regex_min_offset: matching starts this many bytes
	// into the body. RegexMaxOffset is regex_max_offset: a match must start
	// at or before this offset; 0 means anywhere. Go's RE2 has no start
	// offset, so "^" matches at RegexMinOffset where PCRE2 would not.
	RegexMinOffset int
	RegexMaxOffset int
	// BadRegex, when set, is why the configured regex could not be
	// compiled (keepalived's PCRE2 syntax beyond RE2): every check of this
	// URL fails saying so, rather than the whole configuration.
	BadRegex string
}

// HTTP is an HTTP_GET or SSL_GET checker.
type HTTP struct {
	cfg  HTTPConfig
	kind string
	// For the Runner's own HTTP_GETs (httploop.go): conn opens and
	// connects the sockets, reqs are the URLs' requests, made once. conn
	// is nil for SSL_GET, which runs on a worker through Get.
	conn *TCP
	reqs [][]byte
	// okDetail is a passed check's Detail, the same every time: made once,
	// not at each check (the check loop allocates nothing per check,
	// TestLoopAllocatesNothing).
	okDetail string
}

// NewHTTP validates cfg and returns the checker; it opens nothing.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	kind := "HTTP_GET"
	if cfg.TLS {
		kind = "SSL_GET"
	}
	fail := func(err error) (*HTTP, error) { return nil, fmt.Errorf("%s: %w", kind, err) }
	if err := cfg.Target.validate(true); err != nil {
		return fail(err)
	}
	switch cfg.Protocol {
	case "":
		cfg.Protocol = HTTP10
	case HTTP10, HTTP10Close, HTTP11:
	case "1.0c":
		cfg.Protocol = HTTP10Close
	default:
		return fail(fmt.Errorf("http_protocol %q: want 1.0, 1.0C or 1.1", cfg.Protocol))
	}
	if cfg.SNI && !cfg.TLS {
		return fail(errors.New("enable_sni needs SSL_GET"))
	}
	if len(cfg.URLs) == 0 {
		return fail(errors.New("no url block"))
	}
	if cfg.MaxBody < 0 {
		return fail(fmt.Errorf("body cap %d is negative", cfg.MaxBody))
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	urls := make([]URL, len(cfg.URLs))
	for i, u := range cfg.URLs {
		if u.Path == "" {
			return fail(fmt.Errorf("url %d has no path", i+1))
		}
		if strings.ContainsAny(u.Path, " \r\n") {
			return fail(fmt.Errorf("url path %q contains white space", u.Path))
		}
		if u.Digest != "" {
			b, err := hex.DecodeString(u.Digest)
			if err != nil || len(b) != md5.Size {
				return fail(fmt.Errorf("url %s: digest %q is not 32 hex digits", u.Path, u.Digest))
			}
			u.Digest = strings.ToLower(u.Digest)
		}
		if len(u.StatusCodes) == 0 {
			u.StatusCodes = DefaultStatusCodes
		}
		if u.RegexMinOffset < 0 || u.RegexMaxOffset < 0 {
			return fail(fmt.Errorf("url %s: regex offsets must not be negative", u.Path))
		}
		urls[i] = u
	}
	cfg.URLs = urls
	c := &HTTP{cfg: cfg, kind: kind}
	if len(urls) == 1 {
		c.okDetail = c.describeURL(urls[0]) + ": ok"
	} else {
		c.okDetail = fmt.Sprintf("%d urls ok", len(urls))
	}
	if cfg.TLS {
		return c, nil // SSL_GET runs on a worker, through Get
	}
	// A target NewTCP cannot take (none that validate does not refuse)
	// keeps to Get, which says why at every check.
	if conn, err := NewTCP(TCPConfig{Target: cfg.Target}); err == nil {
		c.conn = conn
		for _, u := range urls {
			c.reqs = append(c.reqs, []byte(c.request(u)))
		}
	}
	return c, nil
}

func (c *HTTP) String() string {
	return c.kind + " " + c.cfg.Addr.String()
}

// Check fetches every URL in order on a fresh connection each and is up
// when all of them pass; the first failure is the Detail. connect_timeout
// bounds each request from connect to the last body byte.
func (c *HTTP) Check(ctx context.Context) Result {
	start := time.Now()
	for _, u := range c.cfg.URLs {
		resp, err := c.Get(ctx, u)
		if err != nil {
			return down(err.Error(), start)
		}
		if why := c.judge(u, resp); why != "" {
			return down(c.describeURL(u)+": "+why, start)
		}
	}
	return c.passed(start)
}

func (c *HTTP) judge(u URL, r *Response) string {
	if !u.StatusCodes.Contains(r.Status) {
		return fmt.Sprintf("status %d, want %s", r.Status, u.StatusCodes)
	}
	if r.Truncated && (u.Digest != "" || u.Regex != nil) {
		return fmt.Sprintf("body larger than %d bytes", c.cfg.MaxBody)
	}
	if u.BadRegex != "" {
		return "regex cannot be used: " + u.BadRegex
	}
	if u.Digest != "" && r.Digest != u.Digest {
		return fmt.Sprintf("digest %s, want %s", r.Digest, u.Digest)
	}
	if u.Regex != nil {
		m := regexMatch(u, r.Body)
		switch {
		case !m && !u.RegexNoMatch:
			return fmt.Sprintf("body does not match %q", u.Regex)
		case m && u.RegexNoMatch:
			return fmt.Sprintf("body matches %q (regex_no_match)", u.Regex)
		}
	}
	return ""
}

// regexMatch applies u's regex to body within regex_min_offset and
// regex_max_offset. The leftmost match is the one with the smallest start,
// so if it starts past the maximum no match can start within it.
func regexMatch(u URL, body []byte) bool {
	if u.RegexMinOffset > len(body) {
		return false
	}
	loc := u.Regex.FindIndex(body[u.RegexMinOffset:])
	if loc == nil {
		return false
	}
	return u.RegexMaxOffset == 0 || u.RegexMinOffset+loc[0] <= u.RegexMaxOffset
}

func (c *HTTP) host(u URL) string {
	if u.VirtualHost != "" {
		return u.VirtualHost
	}
	return c.cfg.VirtualHost
}

func (c *HTTP) describeURL(u URL) string {
	s := "GET " + u.Path + " on " + c.cfg.Addr.String()
	if h := c.host(u); h != "" {
		s += " (Host " + h + ")"
	}
	return s
}

// Response is what one GET returned.
type Response struct {
	Status     int
	StatusLine string
	Header     textproto.MIMEHeader
	RawHeader  []byte // status line and header block as received
	Body       []byte // raw bytes after the header, as digested
	Truncated  bool   // the body went past MaxBody and was cut
	Digest     string // hex MD5 of Body
	Latency    time.Duration
}

// Get performs one request for u, as Check does, and returns the response;
// `vigil genhash` uses it to print the digest an HTTP_GET would compare.
// An error says which step failed, in words.
func (c *HTTP) Get(ctx context.Context, u URL) (*Response, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	what := c.describeURL(u)
	fail := func(step string, err error) (*Response, error) {
		return nil, fmt.Errorf("%s: %s: %w", what, step, c.cfg.stepError(ctx, err))
	}
	// dial ties the connection's deadline to ctx: every read and write
	// below gives up when the request's time is spent, and ctx
	// cancellation (shutdown) ends them early.
	conn, release, err := c.cfg.dial(ctx, "tcp")
	if err != nil {
		return fail("connect", err)
	}
	defer release()

	var rw io.ReadWriter = conn
	if c.cfg.TLS {
		tc := tls.Client(conn, c.tlsConfig(u))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail("TLS handshake", err)
		}
		rw = tc
	}
	if _, err := io.WriteString(rw, c.request(u)); err != nil {
		return fail("send request", err)
	}
	br := bufio.NewReaderSize(rw, 4096)
	resp, err := readHead(br)
	if err != nil {
		return fail("read response", err)
	}
	var src io.Reader = br
	if n, ok := c.contentLength([]byte(resp.Header.Get("Content-Length")), resp.Header.Get("Transfer-Encoding") != ""); ok {
		// Stop at Content-Length rather than wait for a close that a
		// server ignoring "Connection: close" might never send.
		src = io.LimitReader(br, n)
	}
	var body bytes.Buffer
	if _, err := io.Copy(&body, io.LimitReader(src, c.cfg.MaxBody+1)); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fail("read body", err)
	}
	c.setBody(resp, body.Bytes(), true)
	resp.Latency = time.Since(start)
	return resp, nil
}

func (c *HTTP) tlsConfig(u URL) *tls.Config {
	var tc *tls.Config
	if c.cfg.TLSConfig != nil {
		tc = c.cfg.TLSConfig.Clone()
	} else {
		tc = &tls.Config{}
	}
	tc.InsecureSkipVerify = true
	tc.ServerName = ""
	if c.cfg.SNI {
		tc.ServerName = c.host(u)
	}
	if tc.MinVersion == 0 {
		// Old appliances still speak TLS 1.0; a health check should reach
		// them as keepalived (OpenSSL defaults) does.
		tc.MinVersion = tls.VersionTLS10
	}
	return tc
}

func (c *HTTP) request(u URL) string {
	host := c.host(u)
	if host == "" {
		host = c.cfg.Addr.String()
	}
	var b strings.Builder
	b.WriteString("GET ")
	b.WriteString(u.Path)
	if c.cfg.Protocol == HTTP11 {
		b.WriteString(" HTTP/1.1\r\n")
	} else {
		b.WriteString(" HTTP/1.0\r\n")
	}
	b.WriteString("User-Agent: " + userAgent + "\r\n")
	if c.cfg.Protocol != HTTP10 {
		b.WriteString("Connection: close\r\n")
	}
	b.WriteString("Host: " + host + "\r\n\r\n")
	return b.String()
}

// readHead reads the status line and header block, keeping the raw bytes
// for genhash -v.
func readHead(br *bufio.Reader) (*Response, error) {
	// Line by line from br, so that the body bytes stay in br untouched.
	var raw bytes.Buffer
	var lines []string
	for {
		line, err := br.ReadString('\n')
		raw.WriteString(line)
		if err != nil {
			if err == io.EOF {
				if raw.Len() == 0 {
					return nil, errors.New("connection closed before any response")
				}
				return nil, errors.New("connection closed inside the response header")
			}
			return nil, err
		}
		if raw.Len() > maxHead {
			return nil, errHeadTooLong
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return nil, errors.New("empty response header")
	}
	proto, rest, _ := strings.Cut(lines[0], " ")
	codeStr, _, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeStr)
	if !strings.HasPrefix(proto, "HTTP/") || err != nil || len(codeStr) != 3 {
		return nil, fmt.Errorf("malformed status line %q", lines[0])
	}
	hdr, err := textproto.NewReader(bufio.NewReader(strings.NewReader(strings.Join(lines[1:], "\r\n") + "\r\n\r\n"))).ReadMIMEHeader()
	if err != nil {
		return nil, fmt.Errorf("malformed header: %w", err)
	}
	return &Response{Status: code, StatusLine: lines[0], Header: hdr, RawHeader: raw.Bytes()}, nil
}

// DefaultStatusCodes is keepalived's default: any 2xx.
var DefaultStatusCodes = StatusCodes{{200, 299}}

// StatusCodes is the status_code list of a url block.
type StatusCodes []CodeRange

// CodeRange is an inclusive range of status codes; a single code has Lo == Hi.
type CodeRange struct{ Lo, Hi int }

// ParseStatusCodes parses status_code arguments: codes and ranges such as
// "200-299 301", given as words (a word may hold several, separated by
// spaces or commas).
func ParseStatusCodes(words ...string) (StatusCodes, error) {
	var out StatusCodes
	for _, w := range words {
		for _, f := range strings.FieldsFunc(w, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' }) {
			lo, hi, isRange := strings.Cut(f, "-")
			if !isRange {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("status_code %q: not a code or range", f)
			}
			if l < 100 || h > 599 || l > h {
				return nil, fmt.Errorf("status_code %q: want codes from 100 to 599, low before high", f)
			}
			out = append(out, CodeRange{l, h})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("status_code: no codes")
	}
	return out, nil
}

// Contains reports whether code is accepted.
func (s StatusCodes) Contains(code int) bool {
	for _, r := range s {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

func (s StatusCodes) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		if r.Lo == r.Hi {
			parts[i] = strconv.Itoa(r.Lo)
		} else {
			parts[i] = strconv.Itoa(r.Lo) + "-" + strconv.Itoa(r.Hi)
		}
	}
	return strings.Join(parts, " ")
}
