package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"vigil/control"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
)

// smtpListener is a small SMTP server (RFC 5321 greeting, HELO/EHLO, QUIT)
// listening in a lab host's namespace. greet is the greeting code it sends
// (220 serves; 554 refuses service); helos records every HELO it read.
type smtpListener struct {
	l     net.Listener
	mu    sync.Mutex
	greet int
	helos []string
	wg    sync.WaitGroup
}

func startSMTP(t *testing.T, h *netlab.Host, addr string) *smtpListener {
	t.Helper()
	s := &smtpListener{greet: 220}
	var err error
	if s.l, err = h.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c) }()
		}
	}()
	t.Cleanup(func() { s.l.Close(); s.wg.Wait() })
	return s
}

func (s *smtpListener) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	s.mu.Lock()
	greet := s.greet
	s.mu.Unlock()
	if greet != 220 {
		fmt.Fprintf(c, "%d 5.3.2 no service here\r\n", greet)
		return
	}
	fmt.Fprintf(c, "220-mx.example.test ESMTP lab\r\n220 ready\r\n")
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
		switch verb {
		case "HELO", "EHLO":
			s.mu.Lock()
			s.helos = append(s.helos, line)
			s.mu.Unlock()
			fmt.Fprintf(c, "250 mx.example.test\r\n")
		case "QUIT":
			fmt.Fprintf(c, "221 bye\r\n")
			return
		default:
			fmt.Fprintf(c, "502 not implemented\r\n")
		}
	}
}

func (s *smtpListener) setGreeting(code int) {
	s.mu.Lock()
	s.greet = code
	s.mu.Unlock()
}

func (s *smtpListener) heloLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.helos...)
}

// serviceReal finds real server rs of service svc in n's status.
func serviceReal(n *node, svc, rs string) (control.RealStatus, bool) {
	s, err := n.Status()
	if err != nil {
		return control.RealStatus{}, false
	}
	for _, v := range s.Services {
		if v.Name != svc {
			continue
		}
		for _, r := range v.RealServers {
			if r.Addr == rs {
				return r, true
			}
		}
	}
	return control.RealStatus{}, false
}

// TestCheckersSMTPFileRegex runs SMTP_CHECK against a real SMTP listener,
// FILE_CHECK against a real file and HTTP_GET's regex keywords against
// nginx, all through vigil's real daemon in a namespace lab, and follows
// each real server's health in `vigil status`.
func TestCheckersSMTPFileRegex(t *testing.T) {
	requireLBLab(t)
	t.Parallel()
	_, hosts, _ := labtest.LAN(t, "chk", map[string][]string{
		"dir": {"198.51.100.1/24"}, "r1": {"198.51.100.11/24"},
	}, "dir", "r1")
	r1 := newRealServer(t, hosts["r1"], "r1", netip.MustParseAddr("198.51.100.11"))
	r1.start(t) // nginx: every path answers "r1\n"
	smtp := startSMTP(t, hosts["r1"], "198.51.100.11:25")

	dir := t.TempDir()
	plain, dyn := filepath.Join(dir, "maint"), filepath.Join(dir, "weight")
	for _, f := range []string{plain, dyn} {
		if err := os.WriteFile(f, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// One virtual server per case: a real server appears once per service.
	httpVS := func(port int, url string) string {
		return fmt.Sprintf(`virtual_server 192.0.2.100 %d {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 198.51.100.11 80 {
    HTTP_GET {
      connect_timeout 1
      retry 0
      warmup 0
      url {
        path /
        %s
      }
    }
  }
}
`, port, url)
	}
	conf := fmt.Sprintf(`track_file maint {
  file "%s"
  weight 0
}
track_file weight {
  file "%s"
}
virtual_server 192.0.2.100 25 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 198.51.100.11 25 {
    weight 1
    SMTP_CHECK {
      connect_timeout 1
      retry 0
      warmup 0
      helo_name vigil-checker.example.test
    }
  }
  real_server 198.51.100.12 25 {
    FILE_CHECK {
      track_file maint
    }
  }
  real_server 198.51.100.13 25 {
    weight 3
    FILE_CHECK {
      track_file weight
      weight 2
      dynamic
    }
  }
}
`, plain, dyn)
	conf += httpVS(8001, `regex "^r1"`)
	conf += httpVS(8002, "regex r1\n        regex_no_match")
	conf += httpVS(8003, "regex r\n        regex_min_offset 1")
	conf += httpVS(8004, "regex 1\n        regex_min_offset 1\n        regex_max_offset 1")
	conf += httpVS(8005, "regex 1\n        regex_max_offset 0\n        regex_min_offset 0\n        status_code 200")
	conf += httpVS(8006, `regex "r(?=1)"`) // PCRE look-ahead: RE2 cannot, the URL fails
	n := startNode(t, "vigil", hosts["dir"], conf)

	state := func(svc, rs string) (up bool, weight int, detail string) {
		r, ok := serviceReal(n, svc, rs)
		if !ok {
			return false, -1, "not in status"
		}
		return r.Up, r.Weight, r.Detail
	}
	waitState := func(svc, rs string, up bool, why string) {
		t.Helper()
		waitFor(t, 10*time.Second, fmt.Sprintf("%s %s up=%v (%s)", svc, rs, up, why), func() bool {
			u, _, _ := state(svc, rs)
			return u == up
		})
	}
	const smtpSvc, smtpRS = "192.0.2.100:25/tcp", "198.51.100.11:25"
	httpUp := map[int]bool{8001: true, 8002: false, 8003: false, 8004: true, 8005: true, 8006: false}
	// Down ones go down, and up ones are up once the first checks ran.
	time.Sleep(2500 * time.Millisecond)
	for port, up := range httpUp {
		waitState(fmt.Sprintf("192.0.2.100:%d/tcp", port), "198.51.100.11:80", up, "regex")
	}
	if _, _, d := state("192.0.2.100:8006/tcp", "198.51.100.11:80"); !strings.Contains(d, "regex cannot be used") {
		t.Errorf("look-ahead regex: detail %q, want it to say the regex cannot be used", d)
	}
	if !strings.Contains(n.Out.String(), "vigil uses Go's RE2 syntax") {
		t.Errorf("the daemon did not warn about the look-ahead regex")
	}

	// SMTP_CHECK: up with a 220 greeting and a HELO with helo_name.
	waitState(smtpSvc, smtpRS, true, "SMTP serves")
	waitFor(t, 5*time.Second, "a HELO at the SMTP listener", func() bool { return len(smtp.heloLines()) > 0 })
	if h := smtp.heloLines()[0]; h != "HELO vigil-checker.example.test" {
		t.Errorf("SMTP listener read %q, want HELO vigil-checker.example.test", h)
	}
	smtp.setGreeting(554)
	waitState(smtpSvc, smtpRS, false, "SMTP refuses service")
	if _, _, d := state(smtpSvc, smtpRS); !strings.Contains(d, "greeting 554") {
		t.Errorf("SMTP down detail %q, want the 554 greeting", d)
	}
	smtp.setGreeting(220)
	waitState(smtpSvc, smtpRS, true, "SMTP serves again")

	// FILE_CHECK with weight 0: a non-zero value takes the server down.
	const fileRS = "198.51.100.12:25"
	waitState(smtpSvc, fileRS, true, "file holds 0")
	os.WriteFile(plain, []byte("1\n"), 0o644)
	waitState(smtpSvc, fileRS, false, "file holds 1")
	os.WriteFile(plain, []byte("0\n"), 0o644)
	waitState(smtpSvc, fileRS, true, "file holds 0 again")

	// FILE_CHECK dynamic: weight 3 + value × 2; below 0 is down.
	const dynRS = "198.51.100.13:25"
	os.WriteFile(dyn, []byte("5\n"), 0o644)
	// The service has no VIP here, so it is inactive and the status has no
	// kernel weight to show: the daemon's log carries the new weight.
	waitFor(t, 5*time.Second, "dynamic FILE_CHECK weight 13", func() bool {
		u, _, _ := state(smtpSvc, dynRS)
		return u && strings.Contains(n.Out.String(), `event="server weight" server="[192.0.2.100]:tcp:25 198.51.100.13:25" weight=13`)
	})
	os.WriteFile(dyn, []byte("-2\n"), 0o644)
	waitState(smtpSvc, dynRS, false, "3 + -2×2 is negative")
}
