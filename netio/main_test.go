package netio

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// goroutine the package or its tests start has an owner that ends it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
