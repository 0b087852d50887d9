package addr

import "testing"

func TestVMACAddr(t *testing.T) {
	if got, want := VMACAddr(51, IPv4).String(), "00:00:5e:00:01:33"; got != want {
		t.Errorf("VMACAddr(51, IPv4) = %s, want %s", got, want)
	}
	if got, want := VMACAddr(255, IPv6).String(), "00:00:5e:00:02:ff"; got != want {
		t.Errorf("VMACAddr(255, IPv6) = %s, want %s", got, want)
	}
	if !isVRRPMAC(VMACAddr(1, IPv4)) || isVRRPMAC([]byte{0, 0, 0x5e, 0, 3, 1}) {
		t.Error("isVRRPMAC misjudges")
	}
}
