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
	release := make(chan struct{})
	defer close(release)
	loadConfig = func(string, config.Env) (*config.Config, config.Diagnostics) {
		<-release // a load that would never end
		return nil, nil
	}
	defer func() { loadConfig = config.Load }()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
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
