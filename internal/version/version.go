// Package version holds vigil's version, stamped at build time, so that the
// command line (`vigil --version`), the metrics (`vigil_info`) and the
// status output report the same string.
package version

// Version is set with -ldflags "-X vigil/internal/version.Version=..." by the
// Makefile and the package build; a plain `go build` reports "dev".
var Version = "dev"
