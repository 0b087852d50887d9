package daemon

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vigil/notify"
)

// TestHostNotifier: the real notifier edge opens the notify FIFO it is
// given, writes each event's line to it and runs the event's script;
// a FIFO it cannot open is left out, not fatal.
func TestHostNotifier(t *testing.T) {
	dir := t.TempDir()
	fifo, out := filepath.Join(dir, "fifo"), filepath.Join(dir, "ran")
	if err := os.WriteFile(filepath.Join(dir, "bad"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	results := make(chan notify.Result, 1)
	n := newHostNotifier([]notify.FifoConfig{{Path: filepath.Join(dir, "bad")}, {Path: fifo}},
		slog.New(slog.NewTextHandler(io.Discard, nil)), func(r notify.Result) { results <- r })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	n.Notify(notify.Event{Scope: notify.Instance, Name: "VI_1", State: notify.StateMaster, Priority: 100},
		notify.Scripts{Master: &notify.Command{Argv: []string{"/bin/sh", "-c", "echo ran > " + out}}})
	r, err := os.OpenFile(fifo, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sc := bufio.NewScanner(r)
	if !sc.Scan() || sc.Text() != `INSTANCE "VI_1" MASTER 100` {
		t.Errorf("FIFO line %q, want %q (%v)", sc.Text(), `INSTANCE "VI_1" MASTER 100`, sc.Err())
	}
	select {
	case res := <-results:
		if !res.OK() {
			t.Fatalf("notify_master failed: %+v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("notify_master did not run")
	}
	if b, err := os.ReadFile(out); err != nil || strings.TrimSpace(string(b)) != "ran" {
		t.Errorf("notify_master's output %q, %v", b, err)
	}
}
