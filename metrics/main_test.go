package metrics

import (
	"os"
	"testing"

	"vigil/internal/testenv"
)

// The tests' servers listen on, and their clients dial, a loopback of
// their own, not the host's (testenv.PrivateLoopback).
func TestMain(m *testing.M) {
	testenv.PrivateLoopback()
	os.Exit(m.Run())
}
