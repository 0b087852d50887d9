package nft

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
	"vigil/lb"
)

// TestHelperServer is not a test: the lab re-executes the test binary
// with it as a real server inside a namespace. It answers every HTTP
// request with its name (body and X-Server header), keep-alive included,
// except /reset, which it answers by resetting the connection (a real
// server that dies or aborts with the request in flight).
func TestHelperServer(t *testing.T) {
	name := helperEnv(t, "VIGIL_NFT_HELPER", "the lab tests")
	ln, err := net.Listen("tcp", os.Getenv("VIGIL_NFT_LISTEN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/reset" {
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				// Linger 0: close sends a reset, not a FIN.
				_ = c.(*net.TCPConn).SetLinger(0)
				c.Close()
			}
			return
		}
		w.Header().Set("X-Server", name)
		io.WriteString(w, name)
	})
	_ = http.Serve(ln, h)
	os.Exit(0)
}

// helperEnv returns the environment variable key that makes this test
// binary a helper process (a lab's real server, bench/dataplane.sh's
// tools) rather than a test; without it the "test" skips.
func helperEnv(t *testing.T, key, of string) string {
	v := os.Getenv(key)
	if v == "" {
		t.Skip("helper process for " + of)
	}
	return v
}

// lab is a client, a director and three real servers.
type lab struct {
	l        *netlab.Lab
	client   *netlab.Host
	director *netlab.Host
	rs       []*netlab.Host
	dp       *Dataplane
}

func newLab(t *testing.T, prefix string) *lab {
	t.Helper()
	testenv.RequireLab(t, "nft")
	l := labtest.New(t, prefix)
	x := &lab{l: l}
	x.client, x.director = labtest.AddHost(t, l, "client"), labtest.AddHost(t, l, "dir")
	for i := 1; i <= 3; i++ {
		x.rs = append(x.rs, labtest.AddHost(t, l, fmt.Sprintf("rs%d", i)))
	}
	return x
}

// serve starts the HTTP real servers, each named after its host, and waits
// until they listen.
func (x *lab) serve(t *testing.T) {
	t.Helper()
	for _, h := range x.rs {
		cmd := h.Command(context.Background(), os.Args[0], "-test.run=^TestHelperServer$")
		cmd.Env = append(os.Environ(), "VIGIL_NFT_HELPER="+h.Name, "VIGIL_NFT_LISTEN=:80")
		cmd.Stderr = os.Stderr
		if err := h.Start(cmd); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range x.rs {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := h.Do(func() error {
				c, err := net.DialTimeout("tcp", "127.0.0.1:80", time.Second)
				if err == nil {
					c.Close()
				}
				return err
			})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: server not listening: %v", h.Name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (x *lab) dataplane(t *testing.T) *Dataplane {
	t.Helper()
	dp, err := New(Config{NetNS: x.director.NS})
	if err != nil {
		t.Fatal(err)
	}
	x.dp = dp
	t.Cleanup(func() { dp.Close() })
	return dp
}

// conn is a client's HTTP/1.1 keep-alive connection, made inside the
// client's namespace.
type conn struct {
	c net.Conn
	r *bufio.Reader
}

// oneHost returns the host "h" of a new lab with prefix, removed when the
// test ends.
func oneHost(t *testing.T, prefix string) *netlab.Host {
	t.Helper()
	testenv.RequireLab(t, "nft")
	return labtest.AddHost(t, labtest.New(t, prefix), "h")
}

// keepAlive opens a keep-alive connection to vip (closed when the test
// ends) and returns it with the real server that answered its first
// request, the backend of bs (named rs1, rs2, ... in order) that is, with
// weight 0 for draining, and the others.
func (x *lab) keepAlive(t *testing.T, vip string, bs []lb.Backend) (c *conn, first string, drained lb.Backend, live []lb.Backend) {
	t.Helper()
	c, err := x.dial(vip)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if first, err = c.get(); err != nil {
		t.Fatal(err)
	}
	for i, b := range bs {
		if fmt.Sprintf("rs%d", i+1) == first {
			drained = b
			drained.Weight = 0
		} else {
			live = append(live, b)
		}
	}
	return c, first, drained, live
}

// dial connects from the client to vip, from a port the kernel picks.
func (x *lab) dial(vip string) (*conn, error) { return x.dialFrom(0, vip) }

// dialFrom connects from the client's address and port port to vip; port
// 0 leaves the port to the kernel at connect, without binding first.
func (x *lab) dialFrom(port uint16, vip string) (*conn, error) {
	var c *conn
	err := x.client.Do(func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		if port != 0 {
			d.LocalAddr = &net.TCPAddr{Port: int(port)}
		}
		nc, err := d.Dial("tcp", vip)
		if err == nil {
			c = newConn(nc)
		}
		return err
	})
	return c, err
}

func newConn(c net.Conn) *conn { return &conn{c: c, r: bufio.NewReader(c)} }

// get requests / and returns the real server that answered.
func (c *conn) get() (string, error) { return c.request("/") }

func (c *conn) request(path string) (string, error) {
	c.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c.c, "GET "+path+" HTTP/1.1\r\nHost: vip\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-Server"), nil
}

func (c *conn) Close() { c.c.Close() }

// once makes one request on a new connection.
func (x *lab) once(vip string) (string, error) {
	c, err := x.dial(vip)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.get()
}

// spread makes n requests on new connections and counts the servers.
func (x *lab) spread(t *testing.T, vip string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		s, err := x.once(vip)
		if err != nil {
			t.Fatalf("request %d to %s: %v", i, vip, err)
		}
		got[s]++
	}
	return got
}

func backend(ap string, w int) lb.Backend {
	a := netip.MustParseAddrPort(ap)
	return lb.Backend{Addr: a.Addr(), Port: a.Port(), Weight: w}
}

// expiry is the countdown nft prints for dynamic set elements (persistence,
// DR pins): it changes between two listings without any change of state.
var expiry = regexp.MustCompile(` expires [0-9hms]+`)

func listRuleset(t *testing.T, h *netlab.Host) string {
	t.Helper()
	return expiry.ReplaceAllString(labtest.MustRun(t, h, "nft", "list", "ruleset"), "")
}

// counts are the packet and byte counts nft prints for counters and set
// elements with counters (the traffic statistics): a late packet of an
// earlier connection moves them between two listings without any change of
// rules.
var counts = regexp.MustCompile(`counter packets [0-9]+ bytes [0-9]+`)

// listRules is listRuleset without the counts: the rules and elements only.
func listRules(t *testing.T, h *netlab.Host) string {
	t.Helper()
	return counts.ReplaceAllString(listRuleset(t, h), "counter")
}

// checkIdempotent applies d again and requires that nothing is sent and
// that the kernel's ruleset stays the same.
func checkIdempotent(t *testing.T, x *lab, d lb.Desired) {
	t.Helper()
	before := listRules(t, x.director)
	n := x.dp.txs
	if err := x.dp.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if x.dp.txs != n {
		t.Errorf("second Apply of the same state sent a transaction:\n%s", x.dp.lastTx)
	}
	if after := listRules(t, x.director); after != before {
		t.Errorf("ruleset changed by a repeated Apply:\n%s\n---\n%s", before, after)
	}
}

// checkClosed closes the data plane and requires that vigil's tables are
// gone and the operator's own table is untouched.
func checkClosed(t *testing.T, x *lab) {
	t.Helper()
	if err := x.dp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.dp.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := x.dp.Apply(context.Background(), lb.Desired{}); err == nil {
		t.Error("Apply after Close: no error")
	}
	out := labtest.MustRun(t, x.director, "nft", "list", "tables")
	if strings.Contains(out, TableName) {
		t.Errorf("tables left after Close:\n%s", out)
	}
	if !strings.Contains(out, "table inet operator") {
		t.Errorf("Close removed a table vigil does not own:\n%s", out)
	}
}

// operatorTable adds a table of the operator's own, which vigil must never
// touch.
func operatorTable(t *testing.T, h *netlab.Host) {
	t.Helper()
	labtest.MustRun(t, h, "nft", "add table inet operator; add chain inet operator c { type filter hook forward priority 0 ; }; add rule inet operator c counter")
}

func sysctl(t *testing.T, h *netlab.Host, kv ...string) {
	t.Helper()
	for _, x := range kv {
		labtest.MustRun(t, h, "sysctl", "-qw", x)
	}
}
