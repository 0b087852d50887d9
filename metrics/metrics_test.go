package metrics

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"vigil/control"
	"vigil/internal/testenv"
)

// fullStatus has something for every metric family.
func fullStatus() control.Status {
	return control.Status{
		Version: "1.2.3", ConfigFile: "/k.conf",
		ConfigLoaded: time.Unix(1700000000, 500000000),
		LastReload:   &control.ReloadResult{At: time.Unix(1700000100, 0), OK: false, Errors: []string{"x"}},
		LoopLag:      control.LoopLag{Recent: control.Duration(250 * time.Millisecond), Max: control.Duration(2 * time.Second)},
		Instances: []control.InstanceStatus{{
			Name: "VI_1", Interface: "eth0", VRID: 51, Family: "ipv4", State: "MASTER", Priority: 90, BasePriority: 100,
			VIPs: []string{"192.0.2.100/32"}, GARPSent: 10, NASent: 2, AnnounceErrors: 1, AdvertThread: true,
			Counters: map[string]uint64{"dropped_ttl": 3, "adverts_sent": 7, "adverts_received": 1, "priority0_sent": 1,
				"priority0_received": 2, "became_master": 1, "released_master": 0, "loop_lag_max_ms": 2000},
			ForeignVRIDs: map[int]uint64{7: 12},
		}, {
			Name: "VI_2", Interface: "eth0", VRID: 52, Family: "ipv4", State: "BACKUP",
			ForeignVRIDs: map[int]uint64{7: 12},
		}},
		Groups: []control.GroupStatus{{Name: "G1", State: "MASTER", Members: []string{"VI_1"}}},
		BFD: []control.BFDSessionStatus{{Name: "bfd_gw", Peer: "192.0.2.254", State: "Up", Sent: 100, Received: 99, Flaps: 1,
			Drops: map[string]uint64{"ttl": 2}, DetectTime: control.Duration(30 * time.Millisecond),
			TxInterval: control.Duration(10 * time.Millisecond), RxInterval: control.Duration(10 * time.Millisecond)}},
		BFDRunner: &control.BFDRunnerStatus{Drops: map[string]uint64{"ttl": 2, "version": 3}, WakeLateMax: control.Duration(2 * time.Millisecond)},
		BGP: []control.BGPPeerStatus{{Peer: "192.0.2.254", RemoteAS: 64512, State: "Established", Advertised: 2},
			{Peer: "192.0.2.253", RemoteAS: 64512, State: "Idle", HeldDown: "bfd_holddown after 1 flap of BFD session bfd_gw: 0.8s more"}},
		Sync: &control.SyncStatus{Interface: "eth1", Instance: "VI_1", Running: true, Synced: true, Entries: 300,
			Sent: 1, Received: 2, Installed: 3, SentPackets: 4, ReceivedPackets: 5, Dropped: map[string]uint64{"auth": 6},
			FullSyncs: 1, Gaps: 1, Overflow: 1, Lag: control.Duration(2 * time.Millisecond),
			Peers:    []control.SyncPeer{{Addr: "198.51.100.2", LastSeen: time.Unix(1700000000, 0), Age: control.Duration(time.Second)}},
			Installs: 1, LastInstall: control.SyncInstall{Entries: 300, Took: control.Duration(20 * time.Millisecond)}},
		Trackers: []control.TrackerStatus{
			{Kind: "script", Name: "chk_web", Known: true, OK: false},
			{Kind: "file", Name: "tf", Known: true, OK: true, Value: -20},
			{Kind: "process", Name: "nginx"}, // no result yet
		},
		Services: []control.ServiceStatus{{Name: "192.0.2.100:80/tcp", Active: true, Quorum: true, TableDigest: "0123456789abcdef",
			Stats: &control.Traffic{Conns: 5, InPackets: 30, InBytes: 1700, OutPackets: 20, OutBytes: 9000},
			RealServers: []control.RealStatus{{Addr: "198.51.100.1:80", Weight: 2, Up: true,
				Stats: &control.Traffic{Conns: 5, InPackets: 30, InBytes: 1700, OutPackets: 20, OutBytes: 9000}}}},
			{Name: "fwmark 1/tcp", RealServers: []control.RealStatus{{Addr: "198.51.100.2:0"}}}}, // not counted
	}
}

// registry is a scrape of s (vigil's families only) as client_golang's
// text parser reads it, with the consistency checks of its pedantic
// registry that matter for hand-written exposition: one HELP and TYPE per
// family, no sample twice, the declared labels on every sample.
func registry(s control.Status) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		var f Families
		New(func() (control.Status, bool) { return s, true }).Collect(&f)
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		f.write(w, all)
		w.Flush()
		return parse(b.String())
	})
}

func parse(text string) ([]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	byName, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("%w in\n%s", err, text)
	}
	var out []*dto.MetricFamily
	for name, mf := range byName {
		seen := map[string]bool{}
		for _, m := range mf.GetMetric() {
			// As a registry gathers them: label pairs sorted by name.
			slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return strings.Compare(a.GetName(), b.GetName()) })
			var key []string
			for _, lp := range m.GetLabel() {
				key = append(key, lp.GetName()+"="+lp.GetValue())
			}
			k := strings.Join(key, ",")
			if seen[k] {
				return nil, fmt.Errorf("%s{%s} exported twice", name, k)
			}
			seen[k] = true
			if d := slices.IndexFunc(all, func(m *metric) bool { return m.Name == name }); d >= 0 && len(key) != len(all[d].Labels) {
				return nil, fmt.Errorf("%s{%s}: labels %v declared", name, k, all[d].Labels)
			}
		}
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

func TestCollectorExportsSnapshot(t *testing.T) {
	want := `
# HELP vigil_vrrp_state 1 for the state the VRRP instance is in, 0 for the others.
# TYPE vigil_vrrp_state gauge
vigil_vrrp_state{iname="VI_1",intf="eth0",state="BACKUP",vrid="51"} 0
vigil_vrrp_state{iname="VI_1",intf="eth0",state="FAULT",vrid="51"} 0
vigil_vrrp_state{iname="VI_1",intf="eth0",state="INIT",vrid="51"} 0
vigil_vrrp_state{iname="VI_1",intf="eth0",state="MASTER",vrid="51"} 1
vigil_vrrp_state{iname="VI_2",intf="eth0",state="BACKUP",vrid="52"} 1
vigil_vrrp_state{iname="VI_2",intf="eth0",state="FAULT",vrid="52"} 0
vigil_vrrp_state{iname="VI_2",intf="eth0",state="INIT",vrid="52"} 0
vigil_vrrp_state{iname="VI_2",intf="eth0",state="MASTER",vrid="52"} 0
# HELP vigil_vrrp_advert_thread 1 while the master's steady-state adverts go out from its advert thread, 0 otherwise.
# TYPE vigil_vrrp_advert_thread gauge
vigil_vrrp_advert_thread{iname="VI_1",intf="eth0",vrid="51"} 1
vigil_vrrp_advert_thread{iname="VI_2",intf="eth0",vrid="52"} 0
# HELP vigil_vrrp_adverts_dropped_total Advertisements dropped, by reason (ttl, checksum, auth, vrid list mismatch and so on).
# TYPE vigil_vrrp_adverts_dropped_total counter
vigil_vrrp_adverts_dropped_total{iname="VI_1",intf="eth0",reason="ttl",vrid="51"} 3
# HELP vigil_vrrp_foreign_adverts_total Advertisements received on an interface for a VRID no local instance runs there (another router sharing the segment).
# TYPE vigil_vrrp_foreign_adverts_total counter
vigil_vrrp_foreign_adverts_total{family="ipv4",intf="eth0",vrid="7"} 12
# HELP vigil_vrrp_garp_sent_total Gratuitous ARP frames sent for the instance's IPv4 virtual addresses.
# TYPE vigil_vrrp_garp_sent_total counter
vigil_vrrp_garp_sent_total{iname="VI_1",intf="eth0",vrid="51"} 10
vigil_vrrp_garp_sent_total{iname="VI_2",intf="eth0",vrid="52"} 0
# HELP vigil_config_last_reload_successful 1 if the last configuration load (at start or by reload) succeeded, 0 if the last reload was rejected or applied with errors.
# TYPE vigil_config_last_reload_successful gauge
vigil_config_last_reload_successful 0
# HELP vigil_config_last_reload_success_timestamp_seconds Unix time the running configuration was loaded: at start, or by the last reload that succeeded.
# TYPE vigil_config_last_reload_success_timestamp_seconds gauge
vigil_config_last_reload_success_timestamp_seconds 1.7000000005e+09
# HELP vigil_loop_lag_seconds Largest delay, over the last one to two minutes, between a deadline of the event loop (advert timers) and the loop waking for it.
# TYPE vigil_loop_lag_seconds gauge
vigil_loop_lag_seconds 0.25
# HELP vigil_tracker_up 1 while the tracker passes (vrrp_script succeeding, interface up, process quorum met, file readable), 0 while it fails; absent until it has a result.
# TYPE vigil_tracker_up gauge
vigil_tracker_up{kind="file",name="tf"} 1
vigil_tracker_up{kind="script",name="chk_web"} 0
# HELP vigil_tracker_file_value The number a vrrp_track_file currently holds.
# TYPE vigil_tracker_file_value gauge
vigil_tracker_file_value{name="tf"} -20
# HELP vigil_info Always 1; the labels say which vigil runs and on which configuration file.
# TYPE vigil_info gauge
vigil_info{config_file="/k.conf",version="1.2.3"} 1
# HELP vigil_real_server_bytes_total Bytes of the real server's connections, by direction (in, out).
# TYPE vigil_real_server_bytes_total counter
vigil_real_server_bytes_total{direction="in",real_server="198.51.100.1:80",virtual_server="192.0.2.100:80/tcp"} 1700
vigil_real_server_bytes_total{direction="out",real_server="198.51.100.1:80",virtual_server="192.0.2.100:80/tcp"} 9000
# HELP vigil_virtual_server_connections_total Connections the virtual server has scheduled (DR: TCP SYNs forwarded).
# TYPE vigil_virtual_server_connections_total counter
vigil_virtual_server_connections_total{virtual_server="192.0.2.100:80/tcp"} 5
# HELP vigil_bfd_session_state 1 for the RFC 5880 state the BFD session is in, 0 for the others.
# TYPE vigil_bfd_session_state gauge
vigil_bfd_session_state{peer="192.0.2.254",session="bfd_gw",state="AdminDown"} 0
vigil_bfd_session_state{peer="192.0.2.254",session="bfd_gw",state="Down"} 0
vigil_bfd_session_state{peer="192.0.2.254",session="bfd_gw",state="Init"} 0
vigil_bfd_session_state{peer="192.0.2.254",session="bfd_gw",state="Up"} 1
# HELP vigil_bgp_session_up 1 while the BGP session is Established, 0 otherwise.
# TYPE vigil_bgp_session_up gauge
vigil_bgp_session_up{peer="192.0.2.253",remote_as="64512"} 0
vigil_bgp_session_up{peer="192.0.2.254",remote_as="64512"} 1
# HELP vigil_bgp_session_held_down 1 while vigil keeps the BGP session down: its bfd_instance is not Up, or bfd_holddown runs after a flap.
# TYPE vigil_bgp_session_held_down gauge
vigil_bgp_session_held_down{peer="192.0.2.253",remote_as="64512"} 1
vigil_bgp_session_held_down{peer="192.0.2.254",remote_as="64512"} 0
# HELP vigil_real_server_weight Weight the scheduler gives the real server.
# TYPE vigil_real_server_weight gauge
vigil_real_server_weight{real_server="198.51.100.1:80",virtual_server="192.0.2.100:80/tcp"} 2
vigil_real_server_weight{real_server="198.51.100.2:0",virtual_server="fwmark 1/tcp"} 0
`
	names := []string{"vigil_vrrp_state", "vigil_vrrp_advert_thread", "vigil_vrrp_adverts_dropped_total", "vigil_vrrp_foreign_adverts_total", "vigil_vrrp_garp_sent_total",
		"vigil_config_last_reload_successful", "vigil_config_last_reload_success_timestamp_seconds", "vigil_loop_lag_seconds",
		"vigil_tracker_up", "vigil_tracker_file_value", "vigil_info", "vigil_real_server_weight",
		"vigil_real_server_bytes_total", "vigil_virtual_server_connections_total", "vigil_bfd_session_state", "vigil_bgp_session_up", "vigil_bgp_session_held_down"}
	if err := testutil.GatherAndCompare(registry(fullStatus()), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

// TestEveryDefExported: a metric listed (and so documented) but never
// exported is as wrong as one exported and not listed.
func TestEveryDefExported(t *testing.T) {
	mfs, err := registry(fullStatus()).Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
		if !slices.ContainsFunc(Defs(), func(d Def) bool { return d.Name == mf.GetName() }) {
			t.Errorf("%s is exported but not in Defs", mf.GetName())
		}
	}
	for _, d := range Defs() {
		if !got[d.Name] {
			t.Errorf("%s is in Defs but the full snapshot does not export it", d.Name)
		}
		for _, l := range d.Labels {
			if l == "instance" || l == "job" {
				t.Errorf("%s has label %q, which Prometheus reserves for the target", d.Name, l)
			}
		}
		if (d.Kind == Counter) != strings.HasSuffix(d.Name, "_total") {
			t.Errorf("%s: a %s; counters and only counters end in _total", d.Name, d.Kind)
		}
	}
}

func TestLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(registry(fullStatus()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestReloadMetricsAtStart(t *testing.T) {
	s := fullStatus()
	s.LastReload = nil // no reload yet: the load at start counts
	want := `
# HELP vigil_config_last_reload_successful 1 if the last configuration load (at start or by reload) succeeded, 0 if the last reload was rejected or applied with errors.
# TYPE vigil_config_last_reload_successful gauge
vigil_config_last_reload_successful 1
`
	if err := testutil.GatherAndCompare(registry(s), strings.NewReader(want), "vigil_config_last_reload_successful"); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	defer func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		s.mu.Lock()
		s.closed = false // the tests reuse a server
		s.done = make(chan struct{})
		s.mu.Unlock()
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestHandlerPaths(t *testing.T) {
	up := NewServer(func(context.Context) (control.Status, error) { return fullStatus(), nil }, func(context.Context) error { return nil })
	if code, body := get(t, up, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	code, body := get(t, up, "/metrics")
	for _, want := range []string{"vigil_info{", "go_goroutines ", "process_start_time_seconds "} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics: %d, no %q in\n%s", code, want, body)
		}
	}
	if code, _ := get(t, up, "/"); code != 404 {
		t.Errorf("/: %d, want 404: metrics are served on /metrics only", code)
	}
	down := NewServer(func(context.Context) (control.Status, error) { return control.Status{}, errors.New("stuck") },
		func(context.Context) error { return errors.New("stuck") })
	if code, body := get(t, down, "/healthz"); code != 503 || !strings.Contains(body, "stuck") {
		t.Errorf("/healthz of a stuck daemon: %d %q", code, body)
	}
	if code, body := get(t, down, "/metrics"); code != 200 || strings.Contains(body, "vigil_") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics of a stuck daemon: %d\n%s", code, body)
	}
}

// PromtoolCheck runs `promtool check metrics` over a scrape and fails the
// test on any problem it reports. The e2e test uses it on a real daemon.
func TestPromtoolCheckMetrics(t *testing.T) {
	testenv.RequireTool(t, "promtool")
	h := NewServer(func(context.Context) (control.Status, error) { return fullStatus(), nil }, func(context.Context) error { return nil })
	_, body := get(t, h, "/metrics")
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestServerRequests: the server answers HEAD without a body, refuses
// other methods, malformed request lines, other HTTP versions and
// oversized heads with their status, takes the request forms RFC 9112
// has a server take, says so when a head's input ends early, and drops a
// client whose head does not come within its timeout without an answer.
func TestServerRequests(t *testing.T) {
	s := NewServer(func(context.Context) (control.Status, error) { return fullStatus(), nil }, func(context.Context) error { return nil })
	s.headTimeout = 300 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	defer s.Close()
	for _, c := range []struct{ req, status, not string }{
		{"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n", "vigil_info"},
		{"GET /healthz?x=1 HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\n", ""},
		{"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\n", "vigil_info"},
		{"GET /metrics\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", "vigil_info"},
		{"GET /metrics HTTP/1.1\r\nX: " + strings.Repeat("a", maxHead) + "\r\n\r\n", "HTTP/1.1 431 ", "vigil_info"},
		{"GET /nope HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found\r\n", ""},
		// RFC 9112: an empty line before the request is ignored, and the
		// absolute form of the target is accepted.
		{"\r\nGET /healthz HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n", ""},
		{"GET http://127.0.0.1:9650/healthz?x HTTP/1.1\r\nHost: 127.0.0.1:9650\r\n\r\n", "HTTP/1.1 200 OK\r\n", ""},
		{"GET HTTP://vigil HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found\r\n", ""},
		{"OPTIONS * HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed\r\n", ""},
		{"GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", "vigil_info"},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", ""},
		{"GET /metrics HTTP/1.1 x\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", "vigil_info"},
		{"GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n", "vigil_info"},
		{"GET /metrics HTTP/1.1\r\n" + strings.Repeat("\r\n", maxHead), "HTTP/1.1 200 OK\r\n", ""}, // the head ends at the first
		{strings.Repeat("\r\n", maxHead/2+1) + "GET /healthz HTTP/1.1\r\n\r\n", "HTTP/1.1 431 ", ""},
		// A head that does not end before the head timeout gets no
		// answer (nor does one cut by a reset), as from net/http.
		{"GET /metrics HTTP/1.1\r\nHost: x\r\n", "", ""},
		{"GET /metr", "", ""},
	} {
		got := rawRequest(t, ln.Addr().String(), c.req)
		if c.status == "" && got != "" || !strings.HasPrefix(got, c.status) || c.not != "" && strings.Contains(got, c.not) {
			t.Errorf("%.40q: %.200q, want %q without %q", c.req, got, c.status, c.not)
		}
	}
	// A client that ends its input in the middle of a head is told.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if b, _ := io.ReadAll(c); !strings.HasPrefix(string(b), "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(string(b), "empty line") {
		t.Errorf("a head cut by the end of input: %q, want 400 saying so", b)
	}
	c.Close()
	// A client that sends nothing is dropped after the timeout.
	c, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || time.Since(start) > 4*time.Second {
		t.Errorf("an idle client: read %d bytes, %v after %v; want the connection closed after the timeout", n, err, time.Since(start))
	}
}
