// The processes the lab tests run: vigil built from this tree (and its
// status), and the real keepalived they are compared with.

package labtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vigil/control"
	"vigil/internal/netlab"
)

// Binary is vigil built from this tree once per test binary, on first use:
// tests ask for it only after their skip checks, so an unprivileged
// `go test ./...` builds nothing. It lives in a temporary directory, not a
// test's TempDir (which would vanish before the next test); the package's
// TestMain is Main, or calls Remove after m.Run.
type Binary struct {
	Pattern string   // os.MkdirTemp pattern of the directory
	Pkgs    []string // packages built into it; Path returns the first's binary
	Flags   []string // more go build flags (e.g. -trimpath)
	Env     []string // more environment for go build (e.g. CGO_ENABLED=0)

	once sync.Once
	dir  string
	path string
	err  error
}

// Path builds the binaries the first time and returns the first one's path.
func (b *Binary) Path() (string, error) {
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", b.Pattern)
		if err != nil {
			b.err = err
			return
		}
		b.dir = dir
		args := append(append([]string{"build"}, b.Flags...), "-o", dir+"/")
		args = append(args, b.Pkgs...)
		cmd := exec.Command("go", args...)
		if len(b.Env) > 0 {
			cmd.Env = append(os.Environ(), b.Env...)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		b.path = filepath.Join(dir, filepath.Base(b.Pkgs[0]))
	})
	return b.path, b.err
}

// MustPath is Path for a test: a failed build fails it.
func (b *Binary) MustPath(t testing.TB) string {
	t.Helper()
	p, err := b.Path()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Main is a TestMain that runs the tests and then removes the binaries.
func (b *Binary) Main(m *testing.M) {
	code := m.Run()
	b.Remove()
	os.Exit(code)
}

// Remove deletes the directory, if Path made one.
func (b *Binary) Remove() {
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
}

// KeepalivedArgv is the command line of the real keepalived in the
// foreground on confPath with flags (-P: VRRP only; -l -D: log to the
// console, in detail), the pid file of each of its processes in dir
// (keepalived.pid, vrrp.pid, checkers.pid, bfd.pid), so that a lab's
// keepalived never shares the host's or another lab's.
func KeepalivedArgv(dir, confPath string, flags ...string) []string {
	argv := []string{"keepalived", "-n", "-f", confPath}
	for _, p := range []struct{ flag, name string }{{"-p", "keepalived"}, {"-r", "vrrp"}, {"-c", "checkers"}, {"-b", "bfd"}} {
		argv = append(argv, p.flag, filepath.Join(dir, p.name+".pid"))
	}
	return append(argv, flags...)
}

// StartKeepalived starts the real keepalived in h in the foreground on
// confPath (VRRP only, logging to the console, its pid files in dir) and
// returns it with the buffer its output goes to. Stop it with Stop.
func StartKeepalived(t testing.TB, h *netlab.Host, dir, confPath string) (*exec.Cmd, *Buffer) {
	t.Helper()
	argv := KeepalivedArgv(dir, confPath, "-P", "-l", "-D")
	cmd := h.Command(t.Context(), argv[0], argv[1:]...)
	out := &Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := h.Start(cmd); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// VigilStatus asks the vigil whose control socket is sock for its status,
// waiting at most 3 seconds.
func VigilStatus(sock string) (control.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, err := control.Call(ctx, sock, control.Request{Cmd: "status"})
	if err != nil {
		return control.Status{}, err
	}
	if r.Status == nil {
		return control.Status{}, fmt.Errorf("vigil status: no status: %s", r.Error)
	}
	return *r.Status, nil
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
