package labtest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vigil/internal/netlab"
)

// StartKeepalived starts the real keepalived in h in the foreground on
// confPath (VRRP only, logging to the console, its pid files in dir) and
// returns it with the buffer its output goes to. Stop it with Stop.
func StartKeepalived(t testing.TB, h *netlab.Host, dir, confPath string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := h.Command(t.Context(), "keepalived", "-P", "-n", "-l", "-D", "-f", confPath,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := h.Start(cmd); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// Stop sends cmd SIGTERM and waits for it to exit, killing it if it has
// not within 5 seconds.
func Stop(cmd *exec.Cmd) {
	cmd.Process.Signal(unix.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// FIFOLines opens the FIFO path read-write (so that it never reads end of
// file while no writer has it open) and sends its lines on the channel
// until stop (or the end of the test) ends the reader, drains the channel and
// closes the FIFO.
func FIFOLines(t testing.TB, path string) (lines <-chan string, stop func()) {
	t.Helper()
	r, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan string, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			r.SetReadDeadline(time.Now()) // unblock the reader
			for range ch {
			}
			r.Close()
		})
	}
	t.Cleanup(stop)
	return ch, stop
}
