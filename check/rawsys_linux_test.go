package check

import (
	"net"
	"net/netip"
	"testing"
)

// TestRawConnectBothFamilies: the raw connect's address (toRawSockaddr)
// reaches a listener of either family on its port, and a closed port is
// refused, through a TCP_CHECK.
func TestRawConnectBothFamilies(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1:0"
			if network == "tcp6" {
				host = "[::1]:0"
			}
			l, err := net.Listen(network, host)
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			serveTCP(t, l, func(c net.Conn) { c.Close() })
			addr := listenAddr(l)
			c, err := NewTCP(TCPConfig{Target{Addr: addr}})
			checkWant(t, c, err, true, "connected to "+addr.String())
			l.Close()
			c, err = NewTCP(TCPConfig{Target{Addr: netip.AddrPortFrom(addr.Addr(), addr.Port())}})
			checkWant(t, c, err, false, "refused")
		})
	}
}
