package check

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The DR path itself is tested end to end (e2e TestDRAntiSpoofing, which
// needs namespaces and a bridge filter); here only what NewDRPath accepts.
func TestNewDRPath(t *testing.T) {
	rs, vip := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.100")
	c, err := NewDRPath(DRPathConfig{Real: rs, VIP: vip, Port: 80})
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Timeout != time.Second || c.String() != "DR_PATH_CHECK 198.51.100.11 for 198.51.100.100:80" {
		t.Errorf("defaults: %+v %q", c.cfg, c.String())
	}
	for _, bad := range []struct {
		cfg  DRPathConfig
		want string
	}{
		{DRPathConfig{Real: netip.MustParseAddr("2001:db8::11"), VIP: vip, Port: 80}, "IPv4"},
		{DRPathConfig{Real: rs, VIP: vip}, "no port"},
		{DRPathConfig{Real: rs, VIP: vip, Port: 80, Timeout: -1}, "negative"},
	} {
		if _, err := NewDRPath(bad.cfg); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("NewDRPath(%+v) = %v, want an error about %s", bad.cfg, err, bad.want)
		}
	}
}
