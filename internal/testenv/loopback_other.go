//go:build !linux

package testenv

// PrivateLoopback needs Linux's network namespaces; elsewhere the tests
// use the host's loopback.
func PrivateLoopback() {}
