package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vigil/config"
	"vigil/internal/testenv"
)

// `vigil check` stops when SIGINT or SIGTERM cancels its context, even
// while the configuration is still loading.
func TestCheckStopsOnSignal(t *testing.T) {
	release, loading := make(chan struct{}), make(chan struct{})
	defer close(release)
	loadConfig = func(string, config.Env) (*config.Config, config.Diagnostics) {
		close(loading)
		<-release // a load that would never end
		return nil, nil
	}
	defer func() { loadConfig = config.Load }()
	ctx, cancel := context.WithCancel(context.Background())
	// Cancelled once the load has begun: then the check is stopped while
	// it loads, and its goroutine has read loadConfig before the deferred
	// restore writes it (go test -race found the two unordered when the
	// cancel came after a fixed sleep).
	go func() {
		select {
		case <-loading:
		case <-time.After(10 * time.Second):
		}
		cancel()
	}()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- dispatch(ctx, []string{"check", "-f", "/nonexistent.conf"}, &out, &errb) }()
	select {
	case code := <-done:
		if code != exitInterrupted || !strings.Contains(errb.String(), "interrupted") {
			t.Errorf("exit %d, stderr %q; want %d and a note", code, errb.String(), exitInterrupted)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("vigil check did not stop when its context was cancelled")
	}
}

// A FIFO included by the configuration (or given as the configuration)
// must not block the check: it is skipped before it is opened, as
// keepalived skips it, and includer makes it an error.
func TestCheckFIFOInclude(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		testenv.Unavailable(t, fmt.Sprintf("cannot make a FIFO here: %v", err))
	}
	conf := filepath.Join(dir, "main.conf")
	for _, c := range []struct {
		kw   string
		code int
	}{{"include", 0}, {"includer", exitConfigError}} {
		if err := os.WriteFile(conf, []byte(c.kw+" fifo.conf\nglobal_defs {\n  router_id r1\n}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		done := make(chan int, 1)
		var out, errb bytes.Buffer
		go func() {
			done <- dispatch(context.Background(), []string{"check", "-no-host-checks", "-f", conf}, &out, &errb)
		}()
		select {
		case code := <-done:
			if code != c.code || !strings.Contains(errb.String(), "FIFO") {
				t.Errorf("%s of a FIFO: exit %d (want %d): %s", c.kw, code, c.code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s of a FIFO blocked vigil check", c.kw)
		}
	}
	var out, errb bytes.Buffer
	if code := dispatch(context.Background(), []string{"check", "-f", fifo}, &out, &errb); code != exitConfigFatal {
		t.Errorf("a FIFO as the configuration: exit %d: %s", code, errb.String())
	}
}

// A DR virtual server announced over BGP with a scheduler DR cannot honour
// (rr takes turns and has weights ignored under DR) gets a warning on its
// bgp_announce line saying what DR does instead; with mh there is none.
func TestCheckDRSchedulerBehindBGP(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "k.conf")
	for _, c := range []struct{ algo, want string }{{"rr", "k.conf:9:2:"}, {"mh", ""}} {
		text := "bgp_instance EDGE {\n local_as 65001\n router_id 192.0.2.11\n neighbor 192.0.2.1 {\n  remote_as 65000\n }\n}\n" +
			"virtual_server 192.0.2.100 80 {\n bgp_announce EDGE\n lb_algo " + c.algo + "\n lb_kind DR\n protocol TCP\n real_server 192.0.2.20 80 {\n  weight 2\n }\n}\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		code := dispatch(context.Background(), []string{"check", "-no-host-checks", conf}, &out, &errb)
		warned := strings.Contains(errb.String(), "lb_algo "+c.algo+" with lb_kind DR behind BGP")
		if code != 0 || warned != (c.want != "") {
			t.Errorf("lb_algo %s: exit %d, stderr:\n%s", c.algo, code, errb.String())
		}
		if c.want != "" && !strings.Contains(errb.String(), c.want) {
			t.Errorf("lb_algo %s: the warning does not point at the bgp_announce line (%s):\n%s", c.algo, c.want, errb.String())
		}
	}
}

// A configuration with a bgp_instance is checked for vigil-bgp, which the
// daemon starts for it: missing, `vigil check` warns at the block.
func TestCheckBGPHelperMissing(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "k.conf")
	text := "bgp_instance EDGE {\n local_as 65001\n router_id 192.0.2.11\n neighbor 192.0.2.1 {\n  remote_as 65000\n }\n}\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		helper string
		warn   bool
	}{{"/nonexistent/vigil-bgp", true}, {"/bin/true", false}} {
		t.Setenv("VIGIL_BGP_HELPER", c.helper)
		var out, errb bytes.Buffer
		code := dispatch(context.Background(), []string{"check", conf}, &out, &errb)
		warned := strings.Contains(errb.String(), "k.conf:1:1: warning: bgp_instance EDGE: the BGP speaker /nonexistent/vigil-bgp")
		if code != 0 || warned != c.warn {
			t.Errorf("helper %s: exit %d, stderr:\n%s", c.helper, code, errb.String())
		}
	}
}
