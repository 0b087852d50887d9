package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"vigil/check"
	"vigil/lb"
)

// TestRefreshMACsAsksOnlyForDRReals: the neighbour lookup (host I/O behind
// Daemon.host.neighbours) is asked for the DR real servers once each, and what
// it finds reaches the model.
func TestRefreshMACsAsksOnlyForDRReals(t *testing.T) {
	rs := func(a string) lb.RealServerConfig {
		return lb.RealServerConfig{Addr: netip.MustParseAddr(a), Port: 80, Weight: 1}
	}
	specs := []lb.ServiceConfig{
		{Proto: lb.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 80, Method: lb.DR, Interface: "eth0", RealServers: []lb.RealServerConfig{rs("198.51.100.1"), rs("198.51.100.2")}},
		{Proto: lb.TCP, VIP: netip.MustParseAddr("192.0.2.10"), Port: 443, Method: lb.DR, Interface: "eth0", RealServers: []lb.RealServerConfig{rs("198.51.100.1")}},
		{Proto: lb.TCP, VIP: netip.MustParseAddr("192.0.2.11"), Port: 80, Method: lb.NAT, RealServers: []lb.RealServerConfig{rs("198.51.100.3")}},
	}
	m, err := lb.New(specs)
	if err != nil {
		t.Fatal(err)
	}
	mac := [6]byte{2, 0, 0, 0, 0, 1}
	var asked []netip.Addr
	d := &Daemon{bal: &balancer{lbConfig: lbConfig{specs: specs}, model: m}, host: edges{neighbours: func(want []netip.Addr) (map[netip.Addr][6]byte, error) {
		asked = want
		return map[netip.Addr][6]byte{netip.MustParseAddr("198.51.100.1"): mac}, nil
	}}}
	d.refreshMACs()
	slices.SortFunc(asked, netip.Addr.Compare)
	if want := []netip.Addr{netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")}; !slices.Equal(asked, want) {
		t.Errorf("asked for %v, want %v", asked, want)
	}
	if !d.bal.dirty {
		t.Error("a new MAC did not mark the balancer for a push")
	}
	d.bal.dirty = false
	d.refreshMACs()
	if d.bal.dirty {
		t.Error("the same MAC again marked the balancer for a push")
	}
}

// TestReloadQuorumNotifyUsesNewConfig: the quorum notification a reload
// causes runs the script of the configuration just loaded, judged by its
// quorum, as keepalived does; not the script of the one it replaces.
func TestReloadQuorumNotifyUsesNewConfig(t *testing.T) {
	quorumConf := func(quorum int, up, down string) string {
		conf := strings.Replace(lbConf, "real_server 198.51.100.2 80 {\n", "real_server 198.51.100.2 80 {\n    notify_up \"/bin/echo rs-up\"\n", 1)
		return scriptConf + strings.Replace(conf, "  protocol TCP\n", fmt.Sprintf("  protocol TCP\n  quorum %d\n  quorum_up \"%s\"\n  quorum_down \"%s\"\n", quorum, up, down), 1)
	}
	conf := quorumConf(2, "/bin/echo old-up", "/bin/echo old-down")
	l := newLab(t, conf)
	becomeMaster(l)
	down := realServerID(l.d.bal, "198.51.100.2:80")
	from := l.h.mark()
	l.d.checked(check.Event{Server: down, Kind: check.ServerDown, Weight: 1, Detail: "refused"})
	l.turn()
	execs := func(ops []string) []string {
		var out []string
		for _, op := range ops {
			if strings.HasPrefix(op, "exec ") {
				out = append(out, op)
			}
		}
		return out
	}
	if got, want := execs(l.h.took(from)), []string{"exec 192.0.2.100:80/tcp quorum down /bin/echo old-down"}; !slices.Equal(got, want) {
		t.Fatalf("after a real server went down: %q, want %q", got, want)
	}

	// reloadTo reloads conf and returns the scripts the reload ran.
	reloadTo := func(conf string) []string {
		t.Helper()
		l.rewrite(conf)
		from := l.h.mark()
		if res := l.d.reload(l.now); !res.OK {
			t.Fatalf("reload: %+v", res)
		}
		l.turn()
		return execs(l.h.took(from))
	}

	// Quorum 1 and new scripts: the one live server is enough, and the
	// new quorum_up runs.
	if got, want := reloadTo(quorumConf(1, "/bin/echo new-up", "/bin/echo new-down")), []string{"exec 192.0.2.100:80/tcp quorum up /bin/echo new-up"}; !slices.Equal(got, want) {
		t.Errorf("after the reload to quorum 1: %q, want %q", got, want)
	}

	// Quorum 2 again and another quorum_down: the new one runs.
	if got, want := reloadTo(quorumConf(2, "/bin/echo new-up", "/bin/echo newer-down")), []string{"exec 192.0.2.100:80/tcp quorum down /bin/echo newer-down"}; !slices.Equal(got, want) {
		t.Errorf("after the reload back to quorum 2: %q, want %q", got, want)
	}

	// Only scripts change: the checks keep running as they are, but the
	// next quorum change and real server change run the new scripts.
	l.rewrite(strings.Replace(quorumConf(2, "/bin/echo newest-up", "/bin/echo newer-down"), "rs-up", "rs-new-up", 1))
	starts := l.h.checkStarts
	if res := l.d.reload(l.now); !res.OK {
		t.Fatalf("reload: %+v", res)
	}
	if l.h.checkStarts != starts {
		t.Errorf("a reload of scripts only restarted the health checks")
	}
	from = l.h.mark()
	l.d.checked(check.Event{Server: down, Kind: check.ServerUp, Weight: 1})
	l.turn()
	if got, want := execs(l.h.took(from)), []string{"exec " + down + " server up /bin/echo rs-new-up", "exec 192.0.2.100:80/tcp quorum up /bin/echo newest-up"}; !slices.Equal(got, want) {
		t.Errorf("after a reload of the scripts only and the real server back up: %q, want %q", got, want)
	}
}

// realServerID is the balancer's id (check.Server) of the real server at
// addrPort, "" if it has none.
func realServerID(b *balancer, addrPort string) string {
	for id := range b.rs {
		if strings.HasSuffix(id, " "+addrPort) {
			return id
		}
	}
	return ""
}
