package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

const confMetrics = `
global_defs {
  enable_script_security
  script_user root
}
vrrp_script chk_ok {
  script "/bin/true"
  interval 1
}
vrrp_script chk_fail {
  script "/bin/false"
  interval 1
  weight -10
}
vrrp_instance VI_M {
  interface eth0
  state BACKUP
  virtual_router_id 71
  version 3
  priority 150
  advert_int 0.1
  track_script {
    chk_ok
    chk_fail
  }
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

// metricsAddr is where the lab's vigil serves metrics, inside its host.
const metricsAddr = "127.0.0.1:9650"

// scrape fetches path from a vigil's metrics listener inside host h.
func scrape(t *testing.T, h *netlab.Host, path string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			err = h.Do(func() error {
				var d net.Dialer
				conn, err = d.DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		},
	}}
	resp, err := c.Get("http://" + metricsAddr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// promtoolCheck fails the test unless `promtool check metrics` accepts a
// scrape.
func promtoolCheck(t *testing.T, body string) {
	t.Helper()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics on vigil's /metrics: %v\n%s", err, out)
	}
}

// hasSeries reports whether a scrape has the exposition line want (a
// series with its labels as Prometheus prints them, then its value).
func hasSeries(body, want string) bool {
	for _, l := range strings.Split(body, "\n") {
		if l == want {
			return true
		}
	}
	return false
}

// TestMetrics: a real vigil serving --metrics passes `promtool check
// metrics`, reports its VRRP state, tracker results, announcements and
// reload outcome, answers /healthz, and serves nothing else.
func TestMetrics(t *testing.T) {
	requireVRRPLab(t)
	testenv.RequireTool(t, "promtool")
	t.Parallel()
	h := labtest.OneHost(t, "met")
	a := startNode(t, "vigil", h, confMetrics, "-metrics", metricsAddr)
	vip := netip.MustParseAddr("192.0.2.100")
	waitFor(t, 10*time.Second, "vigil to become master", func() bool { return a.hasAddr(vip) })

	var body string
	inst := `iname="VI_M",intf="eth0",vrid="71"`
	want := []string{
		`vigil_vrrp_state{iname="VI_M",intf="eth0",state="MASTER",vrid="71"} 1`,
		`vigil_vrrp_priority{` + inst + `} 140`,
		`vigil_tracker_up{kind="script",name="chk_ok"} 1`,
		`vigil_tracker_up{kind="script",name="chk_fail"} 0`,
		`vigil_config_last_reload_successful 1`,
		`vigil_vrrp_became_master_total{` + inst + `} 1`,
	}
	var missing string
	deadline := time.Now().Add(10 * time.Second)
	for {
		var code int
		code, body = scrape(t, h, "/metrics")
		missing = ""
		for _, w := range want {
			if code != 200 || !hasSeries(body, w) {
				missing = w
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no %s after 10 s:\n%s", missing, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	promtoolCheck(t, body)
	for _, w := range []string{`vigil_vrrp_garp_sent_total{` + inst + `} `, `vigil_info{`, `vigil_loop_lag_seconds `,
		`vigil_config_last_reload_success_timestamp_seconds `, `process_resident_memory_bytes `, `go_goroutines `} {
		if !strings.Contains(body, w) {
			t.Errorf("/metrics has no %q", w)
		}
	}
	// The VIP goes in before its gratuitous ARPs go out (and are
	// counted): a scrape in between, on a loaded machine, sees 0.
	waitFor(t, 5*time.Second, "a gratuitous ARP counted in /metrics", func() bool {
		_, body := scrape(t, h, "/metrics")
		return strings.Contains(body, `vigil_vrrp_garp_sent_total{`+inst+`} `) && !strings.Contains(body, `vigil_vrrp_garp_sent_total{`+inst+`} 0`)
	})
	if code, b := scrape(t, h, "/healthz"); code != 200 || b != "ok\n" {
		t.Errorf("/healthz: %d %q", code, b)
	}
	if code, _ := scrape(t, h, "/"); code != 404 {
		t.Errorf("/: %d, want 404", code)
	}

	// A rejected reload shows in vigil_config_last_reload_successful; the
	// success timestamp stays the start's.
	a.hup(t, strings.Replace(confMetrics, "priority 150", "priority 150;", 1))
	waitFor(t, 5*time.Second, "the rejected reload in /metrics", func() bool {
		_, b := scrape(t, h, "/metrics")
		return hasSeries(b, "vigil_config_last_reload_successful 0")
	})
	_, after := scrape(t, h, "/metrics")
	if ts := seriesValue(body, "vigil_config_last_reload_success_timestamp_seconds"); ts == "" || ts != seriesValue(after, "vigil_config_last_reload_success_timestamp_seconds") {
		t.Errorf("the success timestamp moved on a rejected reload: %q then %q", ts, seriesValue(after, "vigil_config_last_reload_success_timestamp_seconds"))
	}
	promtoolCheck(t, after)
}

// seriesValue returns the value of the unlabelled series name in a scrape.
func seriesValue(body, name string) string {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestMetricsLB: through a real vigil director, the per real server
// connection counters in /metrics grow by exactly the connections each
// real server answered, bytes flow both ways for FNAT (in only for DR,
// whose replies bypass the director), and the scrape passes promtool.
func TestMetricsLB(t *testing.T) {
	requireLBLab(t)
	testenv.RequireTool(t, "promtool")
	for _, tc := range []struct{ prefix, kind string }{{"mlbf", "FNAT"}, {"mlbd", "DR"}} {
		t.Run(tc.kind, func(t *testing.T) {
			t.Parallel()
			x := newLBLab(t, tc.prefix, tc.kind, 1)
			d := startNode(t, "vigil", x.dirs[0], x.conf("rr", 150, nil), "-metrics", metricsAddr)
			c := newLBClient(x.client, 2*time.Second)
			x.waitServing(d, c)
			vs := x.vip.String() + ":80/tcp"
			value := func(body, name, labels string) float64 {
				t.Helper()
				prefix := name + "{" + labels + "} "
				for _, l := range strings.Split(body, "\n") {
					if v, ok := strings.CutPrefix(l, prefix); ok {
						f, err := strconv.ParseFloat(v, 64)
						if err != nil {
							t.Fatalf("%s%s: %v", prefix, v, err)
						}
						return f
					}
				}
				t.Fatalf("/metrics has no %s\n%s", prefix, body)
				return 0
			}
			rsLabels := func(r *realServer) string {
				return `real_server="` + r.addr.String() + `:80",virtual_server="` + vs + `"`
			}
			_, before := scrape(t, x.dirs[0], "/metrics")
			const n = 60
			got := c.spread(t, x.url(), n)
			code, after := scrape(t, x.dirs[0], "/metrics")
			if code != 200 {
				t.Fatalf("/metrics: %d", code)
			}
			promtoolCheck(t, after)
			for _, r := range x.rs {
				l := rsLabels(r)
				if d := value(after, "vigil_real_server_connections_total", l) - value(before, "vigil_real_server_connections_total", l); int(d) != got[r.name] {
					t.Errorf("%s answered %d connections; vigil_real_server_connections_total grew by %v", r.name, got[r.name], d)
				}
				in := value(after, "vigil_real_server_bytes_total", `direction="in",`+l) - value(before, "vigil_real_server_bytes_total", `direction="in",`+l)
				out := value(after, "vigil_real_server_bytes_total", `direction="out",`+l) - value(before, "vigil_real_server_bytes_total", `direction="out",`+l)
				if in < float64(100*got[r.name]) {
					t.Errorf("%s: %d connections, %v bytes in", r.name, got[r.name], in)
				}
				if tc.kind == "FNAT" && out <= in {
					t.Errorf("%s: %v bytes out for %v in: each nginx answer is larger than its request", r.name, out, in)
				}
				if tc.kind == "DR" && out != 0 {
					t.Errorf("%s: DR counted %v reply bytes, but replies bypass the director", r.name, out)
				}
			}
			vl := `virtual_server="` + vs + `"`
			if d := value(after, "vigil_virtual_server_connections_total", vl) - value(before, "vigil_virtual_server_connections_total", vl); d != n {
				t.Errorf("vigil_virtual_server_connections_total grew by %v for %d connections", d, n)
			}
			t.Logf("%s: %v; director's counters:\n%s", tc.kind, got, grepLines(after, "vigil_real_server_", "_total"))
			if t.Failed() {
				out, _ := x.dirs[0].Run("nft", "list", "ruleset")
				t.Logf("director's ruleset:\n%s", out)
			}
		})
	}
}

func grepLines(body string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		ok := !strings.HasPrefix(l, "#")
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
