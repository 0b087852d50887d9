package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// privateEnv marks the test binary re-executed by PrivateLoopback, inside
// its own network namespace.
const privateEnv = "VIGIL_TEST_PRIVATE_LOOPBACK"

// PrivateLoopback gives a package's tests a network namespace of their
// own with only its loopback up, so that the servers they start on
// 127.0.0.1 and ::1 listen on none of the host's addresses and meet
// nothing of the host's (the project's rule for tests that use a
// network). Call it first in TestMain. It re-executes the test binary in a
// new network namespace (as root; otherwise in a new user namespace too)
// and exits with the child's status, passing on the signals that end a
// test run; in the child it brings lo up and returns. Where no namespace
// can be made (not root, user namespaces off) it says so on stderr and
// returns, and the tests use the host's loopback; under CI=true that is a
// failure, as every other privileged test's skip is. A test binary that
// already runs outside the host's namespace (ip netns exec, as
// bench/checkers.sh runs the checkers' benchmark) stays where it was put.
func PrivateLoopback() {
	if inLabNamespace() {
		return
	}
	if os.Getenv(privateEnv) != "" {
		if err := loopbackUp(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: private network namespace: bringing lo up: %v\n", err)
			os.Exit(2)
		}
		return
	}
	exe, err := os.Executable()
	if err != nil {
		noPrivate(err)
		return
	}
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: os.Geteuid(), HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: os.Getegid(), HostID: os.Getegid(), Size: 1}}
		// The same user inside, so that the tests that need root still
		// skip, with the one capability that sets lo up.
		attr.AmbientCaps = []uintptr{unix.CAP_NET_ADMIN}
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), privateEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = attr
	sigs := make(chan os.Signal, 4)
	// The go command ends a test binary that overran with SIGQUIT, for the
	// goroutine dump: that dump must be the tests' process's.
	signal.Notify(sigs, syscall.SIGQUIT, syscall.SIGINT, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		signal.Stop(sigs)
		noPrivate(err)
		return
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		os.Exit(0)
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		os.Exit(exit.ExitCode())
	default:
		fmt.Fprintf(os.Stderr, "testenv: the tests in a private network namespace: %v\n", err)
		os.Exit(2)
	}
}

// netns names the network namespace of process pid ("self" for this
// one), or is "" where it cannot be read (another user's process; pid 1
// in some sandboxes, even for root).
func netns(pid string) string {
	n, err := os.Readlink("/proc/" + pid + "/ns/net")
	if err != nil {
		return ""
	}
	return n
}

// inLabNamespace says this process already runs in a network namespace
// other than the host's: one named under /run/netns (ip netns exec, as
// the benchmarks put a test binary in a lab), or, where pid 1's can be
// read, any other than pid 1's.
func inLabNamespace() bool {
	if self, host := netns("self"), netns("1"); self != "" && host != "" && self != host {
		return true
	}
	var self unix.Stat_t
	if unix.Stat("/proc/self/ns/net", &self) != nil {
		return false
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat("/run/netns/"+e.Name(), &st) == nil && st.Dev == self.Dev && st.Ino == self.Ino {
			return true
		}
	}
	return false
}

// noPrivate reports that the tests run on the host's loopback.
func noPrivate(err error) {
	if InCI() {
		fmt.Fprintf(os.Stderr, "testenv: CI=true but no private network namespace for these tests: %v\n", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "testenv: no private network namespace (%v): the tests use the host's loopback\n", err)
}

// loopbackUp sets lo up: a new network namespace starts with it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}
