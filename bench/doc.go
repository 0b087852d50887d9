// Package bench holds vigil's comparison benchmarks. They run real vigil
// and keepalived processes in namespace labs and print tables comparing
// them side by side in one run; docs/benchmarks.md records the results with
// the command that produced them. They run only with VIGIL_BENCH=1 (and
// root), so `go test ./...` stays fast.
package bench
