package main

import (
	"testing"

	"vigil/internal/testenv"
)

// The tests' servers listen on, and their clients dial, a loopback of
// their own, not the host's.
func TestMain(m *testing.M) { testenv.MainOnPrivateLoopback(m) }
