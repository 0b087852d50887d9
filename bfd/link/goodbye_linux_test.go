package link

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"vigil/bfd/wire"
	"vigil/internal/childproc"
	"vigil/internal/labtest"
)

// The BFD process says goodbye (AdminDown) only when the daemon asks it
// to: a stop or a reload that removes a session. When the daemon dies its
// packets just stop, so that its peers detect the failure: an AdminDown is
// not one to them (RFC 5882 3.2), and keepalived's track_bfd then never
// goes FAULT. The peer here is a Runner: a session that heard AdminDown
// goes Down with diagnostic 3 (neighbor signaled session down) at once, one
// whose peer fell silent with diagnostic 1 (control detection time expired).

// daemonEnv makes the test binary a daemon (testDaemon) that runs a
// Process with one session to the address in the variable, as `vigil run`
// does for a bfd_instance, so that a test can SIGKILL it.
const daemonEnv = "VIGIL_TEST_BFD_DAEMON"

// testDaemon runs a Process whose BFD process is this binary, gives it a
// 30 ms x 3 session "v4" to peer, prints "bfd <pid>" and waits to be
// killed.
func testDaemon(peer string) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, daemonEnv+"=") {
			env = append(env, e)
		}
	}
	p := NewProcessCommand(nil, func() *exec.Cmd {
		cmd := exec.Command(exe)
		cmd.Env = append(env, childEnv+"=1")
		return cmd
	})
	go func() { _ = p.Run(context.Background()) }()
	if err := p.Configure([]Session{fastCfg("v4", peer)}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("bfd %d\n", p.PID())
	select {}
}

// lastDown waits for the named session of r to go Down after being Up
// and returns that event.
func lastDown(t *testing.T, r *Runner, ev *events, name string, timeout time.Duration) Event {
	t.Helper()
	waitState(t, r, name, wire.Down, timeout)
	e, ok := ev.last(name)
	if !ok || e.From != wire.Up || e.To != wire.Down {
		t.Fatalf("%s: last event %+v, want Up to Down", name, e)
	}
	return e
}

// TestDaemonKilledNoAdminDown: the daemon (a real process running a
// Process, as vigil's) is killed with SIGKILL. Its BFD process must not
// tell the peer AdminDown on its way out: the peer's session goes Down
// because nothing more arrived, and the BFD process is gone.
func TestDaemonKilledNoAdminDown(t *testing.T) {
	_, hosts, _ := labtest.LAN(t, "bfk", labAddrs, "a", "b")
	rb, evb := runIn(t, hosts["b"], fastCfg("v4", "192.0.2.1"))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := hosts["a"].Command(context.Background(), exe)
	cmd.Env = append(os.Environ(), daemonEnv+"=192.0.2.2")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the daemon said nothing: %v", err)
	}
	bfdPID, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "bfd ")))
	if err != nil || bfdPID == 0 {
		t.Fatalf("the daemon said %q", line)
	}
	waitState(t, rb, "v4", wire.Up, 5*time.Second)
	time.Sleep(200 * time.Millisecond) // past the Poll Sequence

	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	e := lastDown(t, rb, evb, "v4", 2*time.Second)
	t.Logf("the peer's session Down %v after the daemon was killed: %v (%s)", e.At.Sub(killed), e.Diag, e.Reason)
	if e.Diag != wire.DiagDetectExpired {
		t.Errorf("the peer's session went Down with %v, want %v: the BFD process of a killed daemon said goodbye", e.Diag, wire.DiagDetectExpired)
	}
	labtest.WaitFor(t, 5*time.Second, fmt.Sprintf("the BFD process %d gone with its daemon", bfdPID), func() bool {
		return syscall.Kill(bfdPID, 0) != nil
	})
}

// TestDaemonGoneNoAdminDown: a BFD process whose daemon's end of the
// socket closes without a stop request (the daemon is gone, and no
// PDEATHSIG ends this process: one that outlives its daemon) goes silent
// and exits; the peer's session goes Down because nothing more arrived.
func TestDaemonGoneNoAdminDown(t *testing.T) {
	_, hosts, _ := labtest.LAN(t, "bfg", labAddrs, "a", "b")
	rb, evb := runIn(t, hosts["b"], fastCfg("v4", "192.0.2.1"))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The daemon's side by hand: childproc.Start and Process would end
	// the child with the connection.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "daemon"), os.NewFile(uintptr(fds[1]), "bfd")
	cmd := hosts["a"].Command(context.Background(), exe)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	m, err := childproc.NewMsg(1, opConfigure, []Session{fastCfg("v4", "192.0.2.2")})
	if err != nil {
		t.Fatal(err)
	}
	if err := childproc.NewWriter(conn).Write(m, 0); err != nil {
		t.Fatal(err)
	}
	rd := childproc.NewReader(conn)
	for {
		r, err := rd.Next()
		if err != nil {
			t.Fatalf("no reply to configure: %v", err)
		}
		if r.ID == 1 {
			if r.Err != "" {
				t.Fatalf("configure: %s", r.Err)
			}
			break
		}
	}
	// Keep reading (events, logs): a full socket must not stall it.
	go func() {
		for {
			if _, err := rd.Next(); err != nil {
				return
			}
		}
	}()
	waitState(t, rb, "v4", wire.Up, 5*time.Second)
	time.Sleep(200 * time.Millisecond) // past the Poll Sequence

	gone := time.Now()
	conn.Close()
	e := lastDown(t, rb, evb, "v4", 2*time.Second)
	t.Logf("the peer's session Down %v after the daemon's end closed: %v (%s)", e.At.Sub(gone), e.Diag, e.Reason)
	if e.Diag != wire.DiagDetectExpired {
		t.Errorf("the peer's session went Down with %v, want %v: the BFD process said goodbye without being asked", e.Diag, wire.DiagDetectExpired)
	}
	select {
	case <-exited:
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) {
			t.Errorf("the BFD process ended with %v, want an error exit (its daemon is gone)", waitErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the BFD process runs on 5 s after its daemon's end closed")
	}
}

// TestOrderlyGoodbye: what the daemon asks for is said. A reload that
// removes a session sends its peer AdminDown (the peer's session Down,
// diagnostic 3, at once) and leaves the others Up; stopping the Process
// (the daemon stopping) sends AdminDown on the rest.
func TestOrderlyGoodbye(t *testing.T) {
	_, hosts, _ := labtest.LAN(t, "bfo", labAddrs, "a", "b")
	rb, evb := runIn(t, hosts["b"], fastCfg("v4", "192.0.2.1"), fastCfg("v6", "2001:db8::1"))
	// Detection at the peer after 50 intervals (1.5 s): only an
	// AdminDown makes it Down within the bounds below.
	slow := func(s Session) Session { s.Multiplier = 50; return s }
	pa, _, stop, done := processIn(t, hosts["a"], Scheduling{}, slow(fastCfg("v4", "192.0.2.2")), slow(fastCfg("v6", "2001:db8::2")))
	for _, n := range []string{"v4", "v6"} {
		waitState(t, rb, n, wire.Up, 5*time.Second)
	}
	time.Sleep(200 * time.Millisecond) // past the Poll Sequences

	if err := pa.Configure([]Session{slow(fastCfg("v6", "2001:db8::2"))}); err != nil {
		t.Fatal(err)
	}
	e := lastDown(t, rb, evb, "v4", 500*time.Millisecond)
	if e.Diag != wire.DiagNeighborDown {
		t.Errorf("the removed session went Down at the peer with %v, want %v (an AdminDown)", e.Diag, wire.DiagNeighborDown)
	}
	sts, _, _ := rb.Status()
	for _, s := range sts {
		if s.Name == "v6" && s.State != wire.Up {
			t.Errorf("after v4 was removed the peer's v6 is %v, want Up", s.State)
		}
	}

	stop()
	<-done
	e = lastDown(t, rb, evb, "v6", 500*time.Millisecond)
	if e.Diag != wire.DiagNeighborDown {
		t.Errorf("after the stop the peer's session went Down with %v, want %v (an AdminDown)", e.Diag, wire.DiagNeighborDown)
	}
}
