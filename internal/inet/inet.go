// Package inet holds the one address-family type every vigil package uses:
// the VRRP codec (whose address size it fixes, RFC 5798 section 5.2.9), the
// config model, the load-balancing model, the address manager and the
// sockets. It is pure (no I/O), so the pure packages may import it.
package inet

import (
	"net/netip"

	"vigil/internal/enum"
)

// Family is an IP version. Its values are the version numbers, so the zero
// value is "not known" and is neither IPv4 nor IPv6.
type Family uint8

// The families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// Of returns the family of a: IPv4 for an IPv4 address (including an
// IPv4-mapped IPv6 one, which travels as IPv4), IPv6 for another IPv6
// address, and zero for the zero Addr.
func Of(a netip.Addr) Family {
	switch {
	case a.Unmap().Is4():
		return IPv4
	case a.Is6():
		return IPv6
	}
	return 0
}

// String returns "IPv4", "IPv6", or "Family(n)" for anything else.
func (f Family) String() string { return enum.Name(familyNames, f, "Family") }

var familyNames = []string{IPv4: "IPv4", IPv6: "IPv6"}

// AddrLen returns the size of an address of family f: 4, 16, or 0 when f is
// neither IPv4 nor IPv6.
func (f Family) AddrLen() int {
	switch f {
	case IPv4:
		return 4
	case IPv6:
		return 16
	}
	return 0
}

// Valid reports whether f is IPv4 or IPv6.
func (f Family) Valid() bool { return f == IPv4 || f == IPv6 }
