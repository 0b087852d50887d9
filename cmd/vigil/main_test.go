package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"vigil/control"
	"vigil/internal/labtest"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestGenhashMatchesBodyDigest(t *testing.T) {
	body := "hello from a real server\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	code, out, errs := run(t, "genhash", "-s", host, "-p", port, "-u", "/health")
	if code != 0 {
		t.Fatalf("genhash exited %d: %s", code, errs)
	}
	sum := md5.Sum([]byte(body))
	if want := hex.EncodeToString(sum[:]); !strings.Contains(out, want) {
		t.Fatalf("genhash printed %q, want the MD5 of the body %s", out, want)
	}
	if code, _, _ := run(t, "genhash", "-s", "127.0.0.1", "-p", "1", "-u", "/", "-t", "1"); code == 0 {
		t.Fatal("genhash against a closed port exited 0")
	}
}

func TestCheckExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	conf := "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  virtual_ipaddress {\n    192.0.2.100/24\n  }\n}\n"
	if err := os.WriteFile(good, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(strings.Replace(conf, "51", "51;", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := run(t, "check", "-no-host-checks", "-f", good); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("good config: exit %d\n%s%s", code, out, errs)
	}
	code, _, errs := run(t, "check", "-no-host-checks", "-f", bad)
	if code != exitConfigError || !strings.Contains(errs, "bad.conf:3:") || !strings.Contains(errs, "expected an integer 1..255") {
		t.Fatalf("bad config: exit %d, want %d with file:line and what was expected\n%s", code, exitConfigError, errs)
	}
	// keepalived's own flag spelling reaches the same check.
	if code, _, _ := run(t, "-t", "-f", bad); code != exitConfigError {
		t.Fatalf("vigil -t -f bad: exit %d, want %d", code, exitConfigError)
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, errs := run(t, "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if code, out, _ := run(t, "version"); code != 0 || !strings.HasPrefix(out, "vigil ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// `vigil status` and `vigil conns` ask a running daemon's control socket
// and print its answer as text or, with -json, as JSON; without a daemon
// they say why and exit 1.
func TestStatusAndConnsQueryTheDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "vigil.sock")
	srv := &control.Server{Path: sock, Handler: func(_ context.Context, req control.Request) control.Response {
		switch req.Cmd {
		case "status":
			return control.Response{Status: &control.Status{Version: "9.9-test", Instances: []control.InstanceStatus{{Name: "VI_T", State: "MASTER"}}}}
		case "conns":
			return control.Response{Conns: []control.Conn{{Proto: "tcp", State: "ESTABLISHED", Client: "192.0.2.10:40000", Virtual: "192.0.2.100:80", Real: "198.51.100.11:80"}}}
		}
		return control.Response{Error: "unknown command"}
	}}
	labtest.Run(t, srv.Run)
	labtest.WaitFor(t, 2*time.Second, "the control socket", func() bool { _, err := os.Stat(sock); return err == nil })
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"status"}, "VI_T"},
		{[]string{"status", "-json"}, `"version": "9.9-test"`},
		{[]string{"conns"}, "198.51.100.11:80"},
		{[]string{"conns", "-json"}, `"real": "198.51.100.11:80"`},
	} {
		code, out, errs := run(t, append(c.args, "-control", sock)...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("vigil %s = %d, %q (stderr %q), want 0 and %q", strings.Join(c.args, " "), code, out, errs, c.want)
		}
	}
	for _, cmd := range []string{"status", "conns"} {
		code, _, errs := run(t, cmd, "-control", filepath.Join(t.TempDir(), "none.sock"))
		if code != 1 || !strings.HasPrefix(errs, "vigil "+cmd+": ") {
			t.Errorf("vigil %s without a daemon = %d, stderr %q, want 1 and the reason", cmd, code, errs)
		}
	}
}
