// Package nsthread runs a function inside a network namespace, the one way
// the packages that work in another namespace than their caller's need
// (addr's sysctls, netlab's lab hosts, the nft data plane's processes):
// on an OS thread locked to a goroutine that has entered the namespace,
// because a namespace belongs to a thread, not to a process.
package nsthread

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Run runs fn on a goroutine locked to an OS thread that has entered ns
// (called name in errors) and returns fn's error. Sockets fn opens stay in
// ns after it returns; goroutines fn starts do not inherit the namespace.
//
// The thread is unlocked only after a successful return to its original
// namespace: otherwise it dies with the goroutine rather than serve others
// in the wrong namespace.
func Run(ns netns.NsHandle, name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
