// The processes the lab tests run: vigil built from this tree (and its
// status), and the real keepalived they are compared with.

package labtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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

// Daemon is vigil or the real keepalived running in a lab host on a
// keepalived.conf written for it (StartVigil, StartKeepalived).
type Daemon struct {
	Kind string // "vigil" or "keepalived"
	Host *netlab.Host
	Dir  string // its own directory: configuration, pid files, control socket
	Conf string // its configuration file, in Dir
	Ctl  string // vigil's control socket, in Dir
	Cmd  *exec.Cmd
	Out  *Buffer // its standard output and error
	done chan struct{}
	// heldOutput says Wait gave up on the output (WaitDelay); read
	// after done is closed.
	heldOutput bool
}

// StartVigil writes conf into a temporary directory and runs `bin run` on
// it in h, with a control socket and the extra arguments, until the test
// ends (see start).
func StartVigil(t testing.TB, h *netlab.Host, bin, conf string, extra ...string) *Daemon {
	t.Helper()
	d := newDaemon(t, "vigil", h, conf)
	d.Ctl = filepath.Join(d.Dir, "vigil.sock")
	d.start(t, append([]string{bin, "run", "-f", d.Conf, "-control", d.Ctl}, extra...))
	return d
}

// StartKeepalived writes conf into a temporary directory and runs the
// real keepalived on it in h with flags (KeepalivedArgv) until the test
// ends (see start).
func StartKeepalived(t testing.TB, h *netlab.Host, conf string, flags ...string) *Daemon {
	t.Helper()
	return StartKeepalivedEnv(t, h, conf, nil, flags...)
}

// StartKeepalivedEnv is StartKeepalived with env (NAME=VALUE) added to
// keepalived's environment (through env(1), which execs it: the Daemon's
// process is keepalived's).
func StartKeepalivedEnv(t testing.TB, h *netlab.Host, conf string, env []string, flags ...string) *Daemon {
	t.Helper()
	d := newDaemon(t, "keepalived", h, conf)
	argv := KeepalivedArgv(d.Dir, d.Conf, flags...)
	if len(env) > 0 {
		argv = append(append([]string{"env"}, env...), argv...)
	}
	d.start(t, argv)
	return d
}

func newDaemon(t testing.TB, kind string, h *netlab.Host, conf string) *Daemon {
	t.Helper()
	dir := t.TempDir()
	d := &Daemon{Kind: kind, Host: h, Dir: dir, Conf: filepath.Join(dir, "keepalived.conf"), Out: &Buffer{}, done: make(chan struct{})}
	d.Write(t, conf)
	return d
}

// start runs argv in d's host; when the test ends it stops it (SIGTERM,
// then SIGKILL) and, if the test failed, logs its output.
func (d *Daemon) start(t testing.TB, argv []string) {
	t.Helper()
	d.Cmd = d.Host.Command(context.Background(), argv[0], argv[1:]...)
	d.Cmd.Stdout, d.Cmd.Stderr = d.Out, d.Out
	// Its children share its output (keepalived's VRRP, checker and BFD
	// children; vigil's BFD process and scripts): once the daemon itself
	// has exited, do not wait more than this for them to close it. Without
	// it one benchmark run hung for 15 minutes in a vigil pair's cleanup.
	d.Cmd.WaitDelay = 2 * time.Second
	if err := d.Host.StartWaited(d.Cmd, d.done); err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := d.Cmd.Wait(); errors.Is(err, exec.ErrWaitDelay) {
			d.heldOutput = true
		}
		close(d.done)
	}()
	t.Cleanup(func() {
		d.Stop()
		if d.heldOutput {
			t.Logf("%s in %s exited, but a process it started still held its output %v later", d.Kind, d.Host.Name, d.Cmd.WaitDelay)
		}
		if t.Failed() {
			t.Logf("--- %s in %s ---\n%s", d.Kind, d.Host.Name, d.Out.String())
		}
	})
}

// Write replaces d's configuration file with conf (a reload reads it).
func (d *Daemon) Write(t testing.TB, conf string) {
	t.Helper()
	if err := os.WriteFile(d.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Stop stops d as an operator would (SIGTERM) and waits for it to exit,
// killing it if it has not within 5 seconds.
func (d *Daemon) Stop() { d.StopWith(syscall.SIGTERM) }

// StopWith sends d sig, unless it has exited, and waits for it to exit,
// killing it if it has not within 5 seconds. (`ip netns exec` replaces
// itself with the program, so the signal reaches the daemon itself.)
func (d *Daemon) StopWith(sig syscall.Signal) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.Cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(5 * time.Second):
		_ = d.Cmd.Process.Kill()
		<-d.done
	}
}

// Exited is closed once d's process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.done }

// Status asks a vigil daemon for its status (VigilStatus).
func (d *Daemon) Status() (control.Status, error) { return VigilStatus(d.Ctl) }

// ControlReload asks a vigil daemon to reload its configuration file over
// its control socket, as `vigil reload` does, and returns the outcome; it
// waits at most timeout for the answer.
func (d *Daemon) ControlReload(timeout time.Duration) (*control.ReloadResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, err := control.Call(ctx, d.Ctl, control.Request{Cmd: "reload"})
	if err != nil {
		return nil, err
	}
	if r.Reload == nil {
		return nil, fmt.Errorf("vigil reload: no outcome: %s", r.Error)
	}
	return r.Reload, nil
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
