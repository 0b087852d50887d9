package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"vigil/doctor"
	"vigil/internal/doctortest"
	"vigil/internal/labtest"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// node is one VRRP router process in a lab host: vigil or the real
// keepalived, run on a keepalived.conf written for it, with a netlink
// handle in its host.
type node struct {
	*labtest.Daemon
	nl *netlink.Handle
}

// requireVRRPLab skips or, under CI, fails unless the lab can run.
func requireVRRPLab(t *testing.T, tools ...string) {
	t.Helper()
	testenv.RequireLab(t, tools...)
}

// startNode writes conf into a temporary directory and starts kind on it in
// host h: vigil (logging in detail, with the extra arguments), keepalived
// (VRRP only) or keepalived-bfd (VRRP and BFD: bfd_instance needs the BFD
// process). The process is stopped (SIGTERM, then SIGKILL) when the test
// ends.
func startNode(t *testing.T, kind string, h *netlab.Host, conf string, extra ...string) *node {
	t.Helper()
	n := &node{}
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		t.Fatal(err)
	}
	n.nl, err = netlink.NewHandleAt(ns)
	ns.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.nl.Close() }) // after the daemon's stop (cleanups run last first)
	switch kind {
	case "vigil":
		n.Daemon = labtest.StartVigil(t, h, mustVigilBinary(t), conf, append([]string{"-log-level", "debug"}, extra...)...)
	case "keepalived":
		n.Daemon = labtest.StartKeepalived(t, h, conf, "-l", "-D", "-P")
	case "keepalived-bfd":
		n.Daemon = labtest.StartKeepalived(t, h, conf, "-l", "-D")
	default:
		t.Fatalf("unknown node kind %q", kind)
	}
	return n
}

// hup writes conf as the node's configuration and sends it SIGHUP (both
// vigil and keepalived reload on it); it does not wait for the reload.
func (n *node) hup(t *testing.T, conf string) {
	t.Helper()
	n.Write(t, conf)
	if err := n.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// lastReload is the outcome of a vigil node's last reload (zero before
// one).
func (n *node) lastReload() (ok bool, at time.Time, errs []string) {
	s, err := n.Status()
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
	args = append(args, "-control", n.Ctl)
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
	args := append([]string{"-f", n.Conf, "-control", n.Ctl, "-sniff", sniff}, extra...)
	return doctortest.Run(t, n.Host, mustVigilBinary(t), args...)
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
				o = append(o, n.Kind+"@"+n.Host.Name)
			}
		}
		return o
	}
	waitFor(t, timeout, fmt.Sprintf("%s@%s to be the only holder of %v", want.Kind, want.Host.Name, vip), func() bool {
		o := owners()
		return len(o) == 1 && o[0] == want.Kind+"@"+want.Host.Name
	})
	deadline := time.Now().Add(hold)
	for time.Now().Before(deadline) {
		if o := owners(); len(o) != 1 || o[0] != want.Kind+"@"+want.Host.Name {
			t.Fatalf("%v: holders became %v while %s@%s should hold it alone", vip, o, want.Kind, want.Host.Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pairVIP is the VIP of the two-router labs of vigilPair.
var pairVIP = netip.MustParseAddr("192.0.2.100")

// vigilPair starts vigil on the template conf (confFor) in hosts m and b
// at priorities 150 and 100, srcs (if given) as their @SRC@, and waits
// until m alone holds pairVIP for hold.
func vigilPair(t *testing.T, conf string, m, b *netlab.Host, hold time.Duration, srcs ...string) (*node, *node) {
	t.Helper()
	src := func(i int) string {
		if i < len(srcs) {
			return srcs[i]
		}
		return ""
	}
	mn := startNode(t, "vigil", m, confFor(conf, 150, src(0), ""))
	bn := startNode(t, "vigil", b, confFor(conf, 100, src(1), ""))
	soleOwner(t, pairVIP, mn, hold, 15*time.Second, mn, bn)
	return mn, bn
}

// confFor fills a keepalived.conf template: @PRIO@, @SRC@, @PEER@.
func confFor(tmpl string, prio int, src, peer string) string {
	r := strings.NewReplacer("@PRIO@", fmt.Sprint(prio), "@SRC@", src, "@PEER@", peer)
	return r.Replace(tmpl)
}
