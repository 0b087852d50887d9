//go:build vigil_bench

package config

import (
	"os"
	"testing"
)

// TestWriteBigConfig writes the benchmark's 10,000-instance config to
// $VIGIL_WRITE_BIG_CONFIG, for bench/config.sh to time `vigil check` and
// `keepalived -t` on the same file.
func TestWriteBigConfig(t *testing.T) {
	path := os.Getenv("VIGIL_WRITE_BIG_CONFIG")
	if path == "" {
		t.Fatal("set VIGIL_WRITE_BIG_CONFIG=FILE: the file to write the benchmark config to (bench/config.sh does)")
	}
	if err := os.WriteFile(path, bigConfig(10000), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoadedConfigRetainsLittle holds the memory a loaded Config keeps for
// the daemon's life (issue #7): the live heap after a collection, per
// instance of bigConfig. What only validation needs (the keyword positions,
// 320 bytes of each Instance) must not be part of it.
