// What the tests of components that report from their own goroutines
// share: a collector of what they report, running a component until the
// test ends, and a directory a script run as another user can reach.

package labtest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Collector gathers the values a component under test reports from its own
// goroutines (notify's script results, track's tracker events) for the test
// to take in order. Add is the callback to hand the component; it blocks
// once 100 values wait untaken.
type Collector[T any] struct{ ch chan T }

// NewCollector returns an empty collector.
func NewCollector[T any]() *Collector[T] { return &Collector[T]{ch: make(chan T, 100)} }

// Add records x.
func (c *Collector[T]) Add(x T) { c.ch <- x }

// Next returns the oldest value not yet taken, failing the test if none
// comes within the duration.
func (c *Collector[T]) Next(t testing.TB, within time.Duration) T {
	t.Helper()
	select {
	case x := <-c.ch:
		return x
	case <-time.After(within):
		t.Fatalf("nothing reported within %v", within)
	}
	var zero T
	return zero
}

// None fails the test if a value is reported within the duration.
func (c *Collector[T]) None(t testing.TB, within time.Duration) {
	t.Helper()
	select {
	case x := <-c.ch:
		t.Fatalf("unexpected %+v", x)
	case <-time.After(within):
	}
}

// Run runs run in a goroutine until the test ends or stop is called
// (whichever is first), then cancels its context and fails the test if it
// returns an error or has not returned within 20 seconds.
func Run(t testing.TB, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return after its context was cancelled")
		}
	})
	t.Cleanup(stop)
	return stop
}

// StopsWithin runs run as Run does, lets it work for 200 ms (long enough to
// start what it runs, such as a script), then stops it and fails the test
// unless it returned within d of the cancel.
func StopsWithin(t testing.TB, run func(context.Context) error, d time.Duration) {
	t.Helper()
	stop := Run(t, run)
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	stop()
	if took := time.Since(start); took > d {
		t.Errorf("Run took %v to return after its context was cancelled, want at most %v", took, d)
	}
}

// PublicTempDir is a t.TempDir that users other than root can reach, for a
// script run as another user (t.TempDir's parent is private to root).
func PublicTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
