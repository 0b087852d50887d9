package ctsync

import "net/netip"

// matches reports whether a flow's original direction is to one of svcs.
func matches(svcs []Service, proto uint8, dst netip.Addr, dport uint16) bool {
	for _, s := range svcs {
		if s.VIP == dst && s.Proto == proto && (s.Port == 0 || s.Port == dport) {
			return true
		}
	}
	return false
}
