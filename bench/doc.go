// Package bench holds vigil's comparison benchmarks. They run real vigil
// and keepalived processes in namespace labs and print tables comparing
// them side by side in one run; docs/benchmarks.md records the results with
// the command that produced them. Their files are built only with the
// build tag vigil_bench (the bench/*.sh scripts pass -tags vigil_bench; run
// them as root), so `go test ./...` stays fast and never reports a
// benchmark it did not run as a skipped test.
package bench
