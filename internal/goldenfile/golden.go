// Package goldenfile is test support for output pinned in a checked-in file (a
// golden file): a test compares what it produced with the file, and
// rewrites the file instead when run with its -update flag. Used by the nft
// renderer's golden rulesets and by docs/configuration.md, which the
// keyword tables generate.
package goldenfile

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Check fails the test when got differs from the file at path, showing the
// difference; with update it writes got to the file instead. rerun is the
// command that rewrites the file, for the failure message.
func Check(t testing.TB, path, got string, update bool, rerun string) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run %s)", err, rerun)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s is out of date (-file +now; run %s):\n%s", path, rerun, diff)
	}
}
