package addr

import (
	"testing"
	"vigil/internal/inet"
)

func TestVMACAddr(t *testing.T) {
	if got, want := VMACAddr(51, inet.IPv4).String(), "00:00:5e:00:01:33"; got != want {
		t.Errorf("VMACAddr(51, IPv4) = %s, want %s", got, want)
	}
	if got, want := VMACAddr(255, inet.IPv6).String(), "00:00:5e:00:02:ff"; got != want {
		t.Errorf("VMACAddr(255, IPv6) = %s, want %s", got, want)
	}
	for _, tc := range []struct{ in, want string }{
		{"02:00:00:00:01", "02:00:00:00:01:33"},
		{"02:00:00:00:01:07", "02:00:00:00:01:07"},
		{"01:00:5e:00:00:01", "error"},
		{"nonsense", "error"},
	} {
		got, err := ParseVMACAddr(tc.in, 51)
		s := "error"
		if err == nil {
			s = got.String()
		}
		if s != tc.want {
			t.Errorf("ParseVMACAddr(%q, 51) = %s (%v), want %s", tc.in, s, err, tc.want)
		}
	}
}
