package addr_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"vigil/addr"
	"vigil/internal/inet"
	"vigil/internal/netlab"
	"vigil/internal/testenv"
)

// kernelState is what a host's kernel shows of VIPs and VMACs, read with
// iproute2 and /proc, normalised for comparison.
type kernelState struct {
	Addrs   []string          // "dev local/len brd B scope S label L flags..."
	Links   map[string]string // VMAC name -> "mac mode addrgenmode"
	Sysctls map[string]string
}

func snapshot(t *testing.T, h *netlab.Host, devs ...string) kernelState {
	t.Helper()
	s := kernelState{Links: map[string]string{}, Sysctls: map[string]string{}}
	for _, dev := range devs {
		for k, a := range addrsOf(t, h, dev) {
			line := fmt.Sprintf("%s %s brd=%s peer=%s scope=%s label=%s nodad=%v deprecated=%v preferred=%d",
				dev, k, a.Broadcast, a.Address, a.Scope, strings.TrimPrefix(a.Label, dev), a.NoDAD, a.Deprecated, a.Preferred)
			s.Addrs = append(s.Addrs, line)
		}
		if dev == "eth0" {
			continue
		}
		l := linkOf(t, h, dev)
		s.Links[dev] = fmt.Sprintf("%s %s %s on %s", l.Address, l.LinkInfo.InfoKind, l.LinkInfo.InfoData.Mode, l.Link)
	}
	sort.Strings(s.Addrs)
	for _, dev := range append([]string{"all", "default"}, devs...) {
		for _, k := range []string{"arp_ignore", "arp_filter", "accept_local", "rp_filter"} {
			p := "net/ipv4/conf/" + dev + "/" + k
			s.Sysctls[p] = sysctl(t, h, p)
		}
		if dev != "all" {
			p := "net/ipv6/conf/" + dev + "/addr_gen_mode"
			s.Sysctls[p] = sysctl(t, h, p)
		}
	}
	return s
}

// TestMatchesKeepalived runs keepalived 2.2.7 as master of three instances
// (plain VIPs with options, an IPv4 VMAC, an IPv6 VMAC) in a lab namespace,
// records what it did to the kernel, stops it, then does the same through
// Manager and compares: vigil must leave the kernel in the state keepalived
// would, for the same keepalived.conf lines.
func TestMatchesKeepalived(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "keepalived")
	r := newRig(t, "adrka", []string{"192.0.2.1/24", "2001:db8:c::1/64"}, []string{"192.0.2.2/24", "2001:db8:c::2/64"})
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	const text = `global_defs {
  router_id vigiltest
}
vrrp_instance plain {
  state MASTER
  interface eth0
  virtual_router_id 61
  priority 255
  advert_int 1
  virtual_ipaddress {
    192.0.2.100/24
    192.0.2.101 dev eth0 label eth0:vip
    192.0.2.102/24 brd 192.0.2.255 dev eth0
  }
  virtual_ipaddress_excluded {
    2001:db8:c::100/64 dev eth0
    2001:db8:c::101 dev eth0
    2001:db8:c::102 dev eth0 preferred_lft forever
  }
}
vrrp_instance vmac4 {
  state MASTER
  interface eth0
  virtual_router_id 62
  priority 255
  advert_int 1
  use_vmac
  virtual_ipaddress {
    192.0.2.110/32
  }
}
vrrp_instance vmac6 {
  state MASTER
  interface eth0
  virtual_router_id 63
  priority 255
  advert_int 1
  use_vmac
  virtual_ipaddress {
    2001:db8:c::300
  }
}
`
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	devs := []string{"eth0", "vrrp.62", "vrrp.63"}
	want := 1 + 3 + 1 + 3 + 1 + 1 + 1 + 1 // eth0: 2 own + link-local + 6 VIPs; vmacs: VIP (+ link-local)

	// Reverse path filtering on for all interfaces: keepalived.conf(5) says
	// how use_vmac moves it out of the VMAC's way.
	if _, err := r.a.Run("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, r.a, "eth0")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := r.a.Command(ctx, "keepalived", "-n", "-l", "-P", "-f", conf,
		"-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"))
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	if err := r.a.Start(cmd); err != nil {
		t.Fatal(err)
	}
	var ka kernelState
	deadline := time.Now().Add(15 * time.Second)
	for {
		if n := countAddrs(t, r.a, devs); n == want {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("keepalived did not configure %d addresses in time (has %d); log:\n%s", want, n, log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	ka = snapshot(t, r.a, devs...)
	// Stop it: it removes its VIPs and VMACs, but leaves the parent's
	// sysctls, which are reset so that vigil starts from the same state.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	for _, s := range []string{"net.ipv4.conf.eth0.arp_ignore=0", "net.ipv4.conf.eth0.arp_filter=0"} {
		if _, err := r.a.Run("sysctl", "-qw", s); err != nil {
			t.Fatal(err)
		}
	}
	if after := snapshot(t, r.a, "eth0"); !cmp.Equal(before, after) {
		t.Errorf("keepalived did not restore what it changed (-before +after):\n%s", cmp.Diff(before, after))
	}
	if out, err := r.a.Run("ip", "-br", "link", "show", "dev", "vrrp.62"); err == nil {
		t.Fatalf("keepalived left vrrp.62 behind: %s", out)
	}

	v := func(s, dev string) addr.VIP { return vip(s, dev) }
	vips := []addr.VIP{
		v("192.0.2.100/24", "eth0"),
		{Prefix: netip.MustParsePrefix("192.0.2.101/32"), Dev: "eth0", Label: "eth0:vip"},
		{Prefix: netip.MustParsePrefix("192.0.2.102/24"), Dev: "eth0", Brd: netip.MustParseAddr("192.0.2.255")},
		v("2001:db8:c::100/64", "eth0"),
		v("2001:db8:c::101/128", "eth0"),
		{Prefix: netip.MustParsePrefix("2001:db8:c::102/128"), Dev: "eth0", PreferredLft: addr.Forever, PreferredLftSet: true},
	}
	for _, x := range vips {
		if err := r.m.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []struct {
		vrid uint8
		fam  inet.Family
		vip  string
	}{{62, inet.IPv4, "192.0.2.110/32"}, {63, inet.IPv6, "2001:db8:c::300/128"}} {
		name, err := r.m.EnsureVMAC("eth0", x.vrid, x.fam, "vrrp."+strconv.Itoa(int(x.vrid)))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.m.Add(v(x.vip, name)); err != nil {
			t.Fatal(err)
		}
	}
	vg := snapshot(t, r.a, devs...)
	if diff := cmp.Diff(ka, vg); diff != "" {
		t.Errorf("kernel state differs from keepalived's (-keepalived +vigil):\n%s", diff)
	}
}

func countAddrs(t *testing.T, h *netlab.Host, devs []string) int {
	n := 0
	for _, d := range devs {
		var links []struct {
			AddrInfo []ipAddr `json:"addr_info"`
		}
		out, err := h.Run("ip", "-j", "addr", "show", "dev", d)
		if err != nil {
			continue // the VMAC does not exist yet
		}
		if err := jsonUnmarshal(out, &links); err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			n += len(l.AddrInfo)
		}
	}
	return n
}
