// Package netlab builds throwaway network topologies out of Linux network
// namespaces, veth pairs and bridges, for vigil's integration tests, end-to-end
// tests and `vigil demo`.
//
// A Lab owns every namespace whose name starts with its prefix: hosts are
// namespaces "<prefix>-<name>", and all bridges (LAN segments) live in one
// switch namespace "<prefix>-sw", so nothing is ever created in, or attached
// to, the namespace the caller runs in. Close kills the processes a lab
// started and deletes all its namespaces; New first removes leftovers of a
// lab with the same prefix that crashed earlier.
//
// The lab drives iproute2 (`ip`) rather than netlink, because that is what an
// operator reproducing a failure would type, and every step is logged in the
// same words.
package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netns"

	"vigil/internal/nsthread"
)

// validName and validTag are compiled when a lab is made, not when a
// binary that links netlab for `vigil demo` starts (issue #7: 14 KB of
// heap at init, kept for the daemon's life).
var validName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9]{0,9}$`) })

// TagEnv names the environment variable whose value (1-4 lowercase letters
// or digits) is put in front of every lab prefix, so that several developers
// or agents running the namespace tests on one machine at once never delete
// each other's namespaces. Unset, prefixes are used as given.
const TagEnv = "VIGIL_LAB_TAG"

var validTag = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]{1,4}$`) })

// tagged returns prefix with the VIGIL_LAB_TAG in front, when one is set.
func tagged(prefix string) (string, error) {
	tag := os.Getenv(TagEnv)
	if tag == "" {
		return prefix, nil
	}
	if !validTag().MatchString(tag) {
		return "", fmt.Errorf("netlab: %s=%q: expected 1-4 lowercase letters or digits", TagEnv, tag)
	}
	return tag + prefix, nil
}

// Lab is one topology. It is safe for concurrent use.
type Lab struct {
	prefix string
	sw     string // switch namespace

	mu       sync.Mutex
	hosts    map[string]*Host
	segments map[string]bool
	nveth    int
	procs    []*exec.Cmd
	waited   map[*exec.Cmd]<-chan struct{} // StartWaited: its caller Waits
	closed   bool

	// Log, when set, receives every command the lab runs.
	Log func(format string, args ...any)
}

// Host is one network namespace in a lab.
type Host struct {
	lab  *Lab
	Name string // short name given to AddHost
	NS   string // namespace name
}

// New creates an empty lab whose namespaces are named "<prefix>-...". The
// prefix must be short lowercase letters and digits (it becomes part of
// interface-independent names only), unique per concurrently running lab.
func New(prefix string) (*Lab, error) {
	if !validName().MatchString(prefix) {
		return nil, fmt.Errorf("netlab: prefix %q: expected 1-10 lowercase letters or digits, starting with a letter", prefix)
	}
	prefix, err := tagged(prefix)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("netlab: iproute2 is not installed: %w", err)
	}
	l := &Lab{prefix: prefix, sw: prefix + "-sw", hosts: map[string]*Host{}, segments: map[string]bool{}}
	if err := Cleanup(prefix); err != nil {
		return nil, err
	}
	if err := l.addNS(l.sw); err != nil {
		return nil, err
	}
	return l, nil
}

// Cleanup deletes every namespace named "<prefix>-*" (left over from a lab
// that was killed before its Close ran).
func Cleanup(prefix string) error {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("netlab: ip netns list: %w", err)
	}
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix+"-") {
			continue
		}
		killNS(f[0])
		if o, err := exec.Command("ip", "netns", "del", f[0]).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("netlab: delete leftover namespace %s: %v: %s", f[0], err, bytes.TrimSpace(o)))
		}
	}
	return errors.Join(errs...)
}

// killNS kills every process still running in namespace ns, so that deleting
// it really releases its interfaces.
func killNS(ns string) {
	pids, _ := nsPids(ns)
	for _, pid := range pids {
		if pid > 1 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// nsPids lists the processes running in namespace ns.
func nsPids(ns string) ([]int, error) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil, fmt.Errorf("netlab: ip netns pids %s: %w", ns, err)
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

func (l *Lab) logf(format string, args ...any) {
	if l.Log != nil {
		l.Log(format, args...)
	}
}

func (l *Lab) run(args ...string) error {
	l.logf("ip %s", strings.Join(args, " "))
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (l *Lab) addNS(ns string) error {
	if err := l.run("netns", "add", ns); err != nil {
		return err
	}
	if err := l.run("-n", ns, "link", "set", "lo", "up"); err != nil {
		return err
	}
	// Duplicate address detection would delay every IPv6 address by ~2 s
	// and make timing measurements noisy; the lab's addresses are unique by
	// construction.
	for _, k := range []string{"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"} {
		_ = exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", k).Run()
	}
	return nil
}

// Prefix returns the lab's namespace prefix.
func (l *Lab) Prefix() string { return l.prefix }

// AddSegment creates a LAN segment: a bridge named name in the switch
// namespace.
func (l *Lab) AddSegment(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !validName().MatchString(name) {
		return fmt.Errorf("netlab: segment %q: expected 1-10 lowercase letters or digits", name)
	}
	if l.segments[name] {
		return fmt.Errorf("netlab: segment %q already exists", name)
	}
	if err := l.run("-n", l.sw, "link", "add", name, "type", "bridge", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return err
	}
	if err := l.run("-n", l.sw, "link", "set", name, "up"); err != nil {
		return err
	}
	l.segments[name] = true
	return nil
}

// AddHost creates a host namespace "<prefix>-<name>".
func (l *Lab) AddHost(name string) (*Host, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !validName().MatchString(name) || name == "sw" {
		return nil, fmt.Errorf("netlab: host %q: expected 1-10 lowercase letters or digits (not \"sw\")", name)
	}
	if l.hosts[name] != nil {
		return nil, fmt.Errorf("netlab: host %q already exists", name)
	}
	h := &Host{lab: l, Name: name, NS: l.prefix + "-" + name}
	if err := l.addNS(h.NS); err != nil {
		return nil, err
	}
	l.hosts[name] = h
	return h, nil
}

// Host returns the host called name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hosts[name]
}

// Connect plugs host h into segment with a veth pair: the host end is named
// ifname, the switch end is enslaved to the segment's bridge. The addresses
// (CIDR prefixes) are added to the host end, which is brought up. It returns
// the name of the switch-side port, for Cut and Heal.
func (l *Lab) Connect(h *Host, ifname, segment string, addrs ...string) (string, error) {
	l.mu.Lock()
	if !l.segments[segment] {
		l.mu.Unlock()
		return "", fmt.Errorf("netlab: no segment %q", segment)
	}
	l.nveth++
	port := fmt.Sprintf("p%d", l.nveth)
	l.mu.Unlock()
	if len(ifname) > 15 || ifname == "" {
		return "", fmt.Errorf("netlab: interface name %q: expected 1-15 characters", ifname)
	}
	for _, a := range addrs {
		if _, err := netip.ParsePrefix(a); err != nil {
			return "", fmt.Errorf("netlab: address %q: expected CIDR: %w", a, err)
		}
	}
	steps := [][]string{
		{"-n", l.sw, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", h.NS},
		{"-n", l.sw, "link", "set", port, "master", segment},
		{"-n", l.sw, "link", "set", port, "up"},
	}
	for _, a := range addrs {
		steps = append(steps, []string{"-n", h.NS, "addr", "add", a, "dev", ifname})
	}
	steps = append(steps, []string{"-n", h.NS, "link", "set", ifname, "up"})
	for _, s := range steps {
		if err := l.run(s...); err != nil {
			return "", err
		}
	}
	return port, nil
}

// Cut takes a switch-side port down: the host's interface loses carrier,
// as when a cable is pulled.
func (l *Lab) Cut(port string) error { return l.run("-n", l.sw, "link", "set", port, "down") }

// Heal brings a switch-side port back up.
func (l *Lab) Heal(port string) error { return l.run("-n", l.sw, "link", "set", port, "up") }

// Isolate detaches a switch-side port from its bridge while the link stays
// up: the host keeps carrier but hears nothing, as with a firewall or a
// broken switch (the split-brain case carrier detection cannot see).
func (l *Lab) Isolate(port string) error { return l.run("-n", l.sw, "link", "set", port, "nomaster") }

// Rejoin re-attaches an isolated port to segment.
func (l *Lab) Rejoin(port, segment string) error {
	return l.run("-n", l.sw, "link", "set", port, "master", segment)
}

// Command returns a command that runs in h's namespace. It is not tracked:
// use Start for long-running processes the lab must kill on Close.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Run runs a command in h's namespace and returns its combined output.
func (h *Host) Run(name string, args ...string) (string, error) {
	h.lab.logf("[%s] %s %s", h.Name, name, strings.Join(args, " "))
	out, err := h.Command(context.Background(), name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netlab: [%s] %s %s: %v: %s", h.Name, name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Start starts a long-running command in h's namespace. Close kills it if
// it is still running; the caller may Wait on it.
func (h *Host) Start(cmd *exec.Cmd) error {
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	if h.lab.closed {
		return errors.New("netlab: lab is closed")
	}
	h.lab.logf("[%s] start %s", h.Name, strings.Join(cmd.Args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("netlab: [%s] start %s: %w", h.Name, cmd.Path, err)
	}
	h.lab.procs = append(h.lab.procs, cmd)
	return nil
}

// StartWaited is Start for a command whose caller calls Wait itself and
// closes exited when Wait has returned: Close kills it and waits for
// exited instead of calling Wait a second time (two Waits on one Cmd race,
// and the loser blocked forever in a benchmark's Close).
func (h *Host) StartWaited(cmd *exec.Cmd, exited <-chan struct{}) error {
	if err := h.Start(cmd); err != nil {
		return err
	}
	h.lab.mu.Lock()
	if h.lab.waited == nil {
		h.lab.waited = map[*exec.Cmd]<-chan struct{}{}
	}
	h.lab.waited[cmd] = exited
	h.lab.mu.Unlock()
	return nil
}

// Pids lists the processes running in h's namespace (those a lab started
// there, and their children).
func (h *Host) Pids() ([]int, error) { return nsPids(h.NS) }

// Do runs fn on a goroutine locked to an OS thread that has entered h's
// namespace. Sockets fn opens stay in that namespace after it returns;
// goroutines fn starts do not inherit the namespace.
func (h *Host) Do(fn func() error) error {
	target, err := netns.GetFromName(h.NS)
	if err != nil {
		return fmt.Errorf("netlab: namespace %s: %w", h.NS, err)
	}
	defer target.Close()
	return nsthread.Run(target, h.NS, fn)
}

// Listen listens on the TCP (or "tcp4", "tcp6") address addr inside h's
// namespace, where the listener stays.
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// Close kills the processes the lab started and deletes all its namespaces.
// It is safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	l.closed = true
	procs, waited := l.procs, l.waited
	l.procs, l.waited = nil, nil
	l.mu.Unlock()
	for _, p := range procs {
		if ch := waited[p]; ch != nil {
			select {
			case <-ch:
			default:
				_ = p.Process.Kill()
			}
		} else if p.Process != nil && p.ProcessState == nil {
			_ = p.Process.Kill()
		}
	}
	for _, p := range procs {
		if ch := waited[p]; ch != nil {
			<-ch
		} else if p.ProcessState == nil {
			_ = p.Wait()
		}
	}
	return Cleanup(l.prefix)
}

// Lab returns the lab h belongs to.
func (h *Host) Lab() *Lab { return h.lab }
