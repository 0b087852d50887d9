//go:build tools

// Package tools pins modules that vigil uses (some only in tests or in code
// still being written) so that `go mod tidy` keeps them in go.mod.
package tools

import (
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/gopacket/gopacket/layers"
	_ "github.com/mdlayher/packet"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "go.uber.org/goleak"
	_ "golang.org/x/net/ipv4"
	_ "golang.org/x/net/ipv6"
	_ "golang.org/x/sys/unix"
	_ "pgregory.net/rapid"
	_ "sigs.k8s.io/knftables"
)
