package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vigil/control"
	"vigil/doctor"
	"vigil/internal/doctortest"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// node is one VRRP router process in a lab host: vigil or the real
// keepalived, run on a keepalived.conf written for it.
type node struct {
	t    *testing.T
	kind string // "vigil" or "keepalived"
	host *netlab.Host
	dir  string
	conf string
	cmd  *exec.Cmd
	out  *labtest.Buffer
	nl   *netlink.Handle
	ctl  string // vigil's control socket
	done chan struct{}
}

// requireVRRPLab skips or, under CI, fails unless the lab can run.
func requireVRRPLab(t *testing.T, tools ...string) {
	t.Helper()
	testenv.RequireLab(t, tools...)
}

// startNode writes conf into a temporary directory and starts kind on it in
// host h, vigil with the extra arguments given. The process is stopped
// (SIGTERM, then SIGKILL) when the test ends.
func startNode(t *testing.T, kind string, h *netlab.Host, conf string, extra ...string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, kind: kind, host: h, dir: dir, conf: filepath.Join(dir, "keepalived.conf"), out: &labtest.Buffer{}, done: make(chan struct{})}
	n.write(t, conf)
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		t.Fatal(err)
	}
	n.nl, err = netlink.NewHandleAt(ns)
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	switch kind {
	case "vigil":
		bin := mustVigilBinary(t)
		n.ctl = filepath.Join(dir, "vigil.sock")
		argv = append([]string{bin, "run", "-f", n.conf, "-control", n.ctl, "-log-level", "debug"}, extra...)
	case "keepalived":
		argv = labtest.KeepalivedArgv(dir, n.conf, "-l", "-D", "-P")
	case "keepalived-bfd":
		// VRRP and BFD children (bfd_instance needs the BFD process).
		argv = labtest.KeepalivedArgv(dir, n.conf, "-l", "-D")
	default:
		t.Fatalf("unknown node kind %q", kind)
	}
	n.cmd = h.Command(context.Background(), argv[0], argv[1:]...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := h.Start(n.cmd); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		n.stop(syscall.SIGTERM)
		n.nl.Close()
		if t.Failed() {
			t.Logf("--- %s in %s ---\n%s", kind, h.Name, n.out.String())
		}
	})
	return n
}

// stop signals the process and waits up to 5 s for it to exit.
func (n *node) stop(sig syscall.Signal) {
	select {
	case <-n.done:
		return
	default:
	}
	// `ip netns exec` replaces itself with the program, so the pid is the
	// router's own.
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// write replaces the node's configuration file with conf.
func (n *node) write(t *testing.T, conf string) {
	t.Helper()
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// hup writes conf as the node's configuration and sends it SIGHUP (both
// vigil and keepalived reload on it); it does not wait for the reload.
func (n *node) hup(t *testing.T, conf string) {
	t.Helper()
	n.write(t, conf)
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// lastReload is the outcome of a vigil node's last reload (zero before
// one).
func (n *node) lastReload() (ok bool, at time.Time, errs []string) {
	s, err := n.status()
	if err != nil || s.LastReload == nil {
		return false, time.Time{}, nil
	}
	return s.LastReload.OK, s.LastReload.At, s.LastReload.Errors
}

// reload is hup on a vigil node, then waits (up to timeout, naming what)
// until a reload newer than the last one is reported; it returns that
// reload's outcome and how long after the signal it was reported.
func (n *node) reload(t *testing.T, conf, what string, timeout time.Duration) (ok bool, errs []string, took time.Duration) {
	t.Helper()
	_, prev, _ := n.lastReload()
	n.hup(t, conf)
	took = waitFor(t, timeout, what, func() bool { _, at, _ := n.lastReload(); return at.After(prev) })
	ok, _, errs = n.lastReload()
	return ok, errs, took
}

// vigil runs the vigil command args against n's control socket and
// returns its standard output; a failure fails the test.
func (n *node) vigil(t *testing.T, args ...string) []byte {
	t.Helper()
	args = append(args, "-control", n.ctl)
	out, err := exec.Command(mustVigilBinary(t), args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("vigil %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// vigilJSON is vigil, decoding the output into v.
func (n *node) vigilJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := n.vigil(t, args...)
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("vigil %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// doctor runs `vigil doctor -json` next to vigil node n, capturing each
// VRRP interface for sniff, and returns the report and the exit status.
func (n *node) doctor(t *testing.T, sniff string, extra ...string) (doctor.Report, int) {
	t.Helper()
	args := append([]string{"-f", n.conf, "-control", n.ctl, "-sniff", sniff}, extra...)
	return doctortest.Run(t, n.host, mustVigilBinary(t), args...)
}

// hasAddr reports whether the node's host has address a on any interface.
func (n *node) hasAddr(a netip.Addr) bool {
	addrs, err := n.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a {
			return true
		}
	}
	return false
}

// status asks a vigil node for its status.
func (n *node) status() (control.Status, error) {
	return labtest.VigilStatus(n.ctl)
}

// waitFor is labtest.WaitFor: it polls cond every 5 ms until it holds or
// timeout passes, and returns how long it took.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return labtest.WaitFor(t, timeout, what, cond)
}

// soleOwner waits until exactly want holds vip among nodes, and checks that
// it stays that way for hold (no split brain, no flapping).
func soleOwner(t *testing.T, vip netip.Addr, want *node, hold, timeout time.Duration, nodes ...*node) {
	t.Helper()
	owners := func() []string {
		var o []string
		for _, n := range nodes {
			if n.hasAddr(vip) {
				o = append(o, n.kind+"@"+n.host.Name)
			}
		}
		return o
	}
	waitFor(t, timeout, fmt.Sprintf("%s@%s to be the only holder of %v", want.kind, want.host.Name, vip), func() bool {
		o := owners()
		return len(o) == 1 && o[0] == want.kind+"@"+want.host.Name
	})
	deadline := time.Now().Add(hold)
	for time.Now().Before(deadline) {
		if o := owners(); len(o) != 1 || o[0] != want.kind+"@"+want.host.Name {
			t.Fatalf("%v: holders became %v while %s@%s should hold it alone", vip, o, want.kind, want.host.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// confFor fills a keepalived.conf template: @PRIO@, @SRC@, @PEER@.
func confFor(tmpl string, prio int, src, peer string) string {
	r := strings.NewReplacer("@PRIO@", fmt.Sprint(prio), "@SRC@", src, "@PEER@", peer)
	return r.Replace(tmpl)
}
