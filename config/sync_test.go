package config

import (
	"io/fs"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// syncConf is a director's config with lvs_sync_daemon args on line 2,
// extra global lines after it, an instance VI_1 (VRID 51) owning
// 192.0.2.100 and 198.51.100.10, and an FNAT service using local
// addresses laddrs.
func syncConf(args, extra, laddrs string) string {
	return "global_defs {\n lvs_sync_daemon " + args + "\n" + extra + "}\n" +
		"vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  192.0.2.100/24\n  198.51.100.10/24 dev eth1\n }\n}\n" +
		"local_address_group LG {\n " + laddrs + "\n}\n" +
		"virtual_server 192.0.2.100 80 {\n lb_algo rr\n lb_kind FNAT\n laddr_group_name LG\n protocol TCP\n real_server 203.0.113.20 80 {\n }\n}\n"
}

const goodKey = " lvs_sync_auth_key 0123456789abcdef\n"

// syncDirector is syncConf with an authentication key and the local
// address 198.51.100.10, a VIP of VI_1: what most cases vary only in args.
func syncDirector(args string) string { return syncConf(args, goodKey, "198.51.100.10") }

func TestSyncDaemonModel(t *testing.T) {
	cases := []struct {
		name, conf string
		want       *SyncDaemon // Pos and AuthPos ignored
	}{
		{"defaults", syncDirector("eth0 VI_1"), &SyncDaemon{
			Interface: "eth0", Instance: "VI_1", ID: 51, Port: 8848, TTL: 1,
			AuthKey: []byte("0123456789abcdef"),
		}},
		{"every option", syncDirector("eth1 inst VI_1 id 0 maxlen 1400 port 9000 ttl 2 group ff02::1:2"), &SyncDaemon{
			Interface: "eth1", Instance: "VI_1", ID: 0, MaxLen: 1400, Port: 9000, TTL: 2,
			Group: netip.MustParseAddr("ff02::1:2"), AuthKey: []byte("0123456789abcdef"),
		}},
		{"key before the daemon", "global_defs {\n" + goodKey + "}\n" + syncConf("eth0 VI_1", "", "198.51.100.10"), &SyncDaemon{
			Interface: "eth0", Instance: "VI_1", ID: 51, Port: 8848, TTL: 1,
			AuthKey: []byte("0123456789abcdef"),
		}},
		{"unknown instance turns it off", syncDirector("eth0 VI_9"), nil},
		{"no instance turns it off", syncDirector("eth0"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := LoadBytes("-", []byte(tc.conf), testEnv())
			if diags.HasErrors() {
				t.Fatalf("errors:\n%s", diags)
			}
			got := cfg.Global.LVSSyncDaemon
			if got != nil {
				c := *got
				c.Pos, c.AuthPos = Pos{}, Pos{}
				got = &c
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("LVSSyncDaemon (-want +got):\n%s", diff)
			}
		})
	}
}

// The verdicts of keepalived 2.2.7 (keepalived -t in a namespace with eth0)
// on each form, and vigil's warnings where keepalived accepts what cannot
// run.
var syncSnippets = []snippetCase{
	{"ok/sync", syncDirector("eth0 VI_1 id 5 port 8848 ttl 1 group 224.0.0.81 maxlen 1400"), nil},
	{"ok/sync-inst-keyword", syncDirector("eth0 inst VI_1"), nil},
	{"ok/sync-group-v6", syncDirector("eth0 VI_1 group ff02::1"), nil},
	{"fail/sync-no-interface", syncDirector(""), []wantDiag{{2, Error, "lvs_sync_daemon: missing value: expected an interface name"}}},
	{"fail/sync-id-256", syncDirector("eth0 VI_1 id 256"), []wantDiag{{2, Error, `lvs_sync_daemon id "256": expected an integer 0..255`}}},
	{"fail/sync-bare-syncid", syncDirector("eth0 VI_1 5"), []wantDiag{{2, Error, "write the sync id as id 5"}}},
	{"fail/sync-third-word", syncDirector("eth0 VI_1 VI_2"), []wantDiag{{2, Error, `unexpected "VI_2"`}}},
	{"fail/sync-extra-after-id", syncDirector("eth0 VI_1 id 5 7"), []wantDiag{{2, Error, `unexpected "7"`}}},
	{"fail/sync-maxlen-0", syncDirector("eth0 VI_1 maxlen 0"), []wantDiag{{2, Error, "maxlen"}}},
	{"fail/sync-maxlen-65508", syncDirector("eth0 VI_1 maxlen 65508"), []wantDiag{{2, Error, "maxlen"}}},
	{"fail/sync-port-0", syncDirector("eth0 VI_1 port 0"), []wantDiag{{2, Error, "port"}}},
	{"fail/sync-port-70000", syncDirector("eth0 VI_1 port 70000"), []wantDiag{{2, Error, "port"}}},
	{"fail/sync-ttl-0", syncDirector("eth0 VI_1 ttl 0"), []wantDiag{{2, Error, "ttl"}}},
	{"fail/sync-ttl-256", syncDirector("eth0 VI_1 ttl 256"), []wantDiag{{2, Error, "ttl"}}},
	{"fail/sync-group-unicast", syncDirector("eth0 VI_1 group 192.0.2.5"), []wantDiag{{2, Error, "expected a multicast address"}}},
	{"fail/sync-group-word", syncDirector("eth0 VI_1 group foo"), []wantDiag{{2, Error, "expected an IPv4 or IPv6 address"}}},
	{"fail/sync-group-missing", syncDirector("eth0 VI_1 group"), []wantDiag{{2, Error, "group: missing value"}}},
	{"fail/sync-id-missing", syncDirector("eth0 VI_1 id"), []wantDiag{{2, Error, "id: missing value"}}},
	// keepalived -t accepts these; vigil warns (the first two turn the sync off).
	{"ok/sync-unknown-instance", syncDirector("eth0 VI_9"), []wantDiag{{2, Warning, "vrrp_instance VI_9 does not exist: connection sync is off"}}},
	{"ok/sync-no-instance", syncDirector("eth0"), []wantDiag{{2, Warning, "no vrrp_instance named"}}},
	{"ok/sync-unknown-interface", syncDirector("eth9 VI_1"), []wantDiag{{2, Warning, "interface eth9 does not exist"}}},
	{"ok/sync-no-key", syncConf("eth0 VI_1", "", "198.51.100.10"), []wantDiag{{2, Warning, "not authenticated"}}},
	{"ok/sync-laddr-not-vip", syncConf("eth0 VI_1", goodKey, "198.51.100.10-11"), []wantDiag{{16, Warning, "local_address_group LG has 198.51.100.10, not among the virtual_ipaddress of vrrp_instance VI_1"}}},
	{"ok/sync-group-with-unicast", strings.Replace(syncDirector("eth0 VI_1 group 224.0.0.81"), " virtual_router_id 51\n", " virtual_router_id 51\n unicast_peer {\n  192.0.2.2\n }\n", 1), []wantDiag{{2, Warning, "has unicast peers, so the sync goes to them: group ignored"}}},
	// A local address among the VIPs of another member of the sync
	// instance's vrrp_sync_group moves with it: no warning. One of an
	// instance outside the group still warns.
	{"ok/sync-laddr-sync-group", syncConf("eth0 VI_1", goodKey, "203.0.113.7") + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress {\n  203.0.113.7/24\n }\n}\nvrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n}\n", nil},
	{"ok/sync-laddr-other-instance", syncConf("eth0 VI_1", goodKey, "203.0.113.7") + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 52\n virtual_ipaddress {\n  203.0.113.7/24\n }\n}\n", []wantDiag{{16, Warning, "do not move with the master"}}},
	{"ok/sync-laddr-other", syncConf("eth0 VI_1", goodKey, "203.0.113.7"), []wantDiag{{16, Warning, "do not move with the master"}}},
	// The vigil extension.
	{"fail/sync-key-short", syncConf("eth0 VI_1", " lvs_sync_auth_key short\n", "198.51.100.10"), []wantDiag{{3, Error, "the key is 5 characters: expected at least 16"}}},
	{"ok/sync-key-without-daemon", "global_defs {\n" + goodKey + "}\n", []wantDiag{{2, Warning, "lvs_sync_auth_key without lvs_sync_daemon: ignored"}}},
	{"fail/sync-key-file-missing", syncConf("eth0 VI_1", " lvs_sync_auth_key_file /etc/vigil/nosuch\n", "198.51.100.10"), []wantDiag{{3, Error, "lvs_sync_auth_key_file /etc/vigil/nosuch"}}},
}

func TestSyncSnippets(t *testing.T) {
	runSnippets(t, syncSnippets)
}

// The key file is read through Env, trimmed of its newline, and a key
// others can read is warned about.
func TestSyncAuthKeyFile(t *testing.T) {
	env := testEnv()
	env.ReadFile = func(name string) ([]byte, error) {
		if name == "/etc/vigil/sync.key" || name == "/etc/vigil/open.key" {
			return []byte("0123456789abcdef0123\n"), nil
		}
		return nil, fs.ErrNotExist
	}
	env.Stat = func(name string) (fs.FileInfo, error) {
		mode := fs.FileMode(0o600)
		if strings.Contains(name, "open") {
			mode = 0o644
		}
		return fakeInfo{name: name, mode: mode, size: 21}, nil
	}
	cfg, diags := LoadBytes("-", []byte(syncConf("eth0 VI_1", " lvs_sync_auth_key_file /etc/vigil/sync.key\n", "198.51.100.10")), env)
	if len(diags) > 0 {
		t.Fatalf("diagnostics:\n%s", diags)
	}
	sd := cfg.Global.LVSSyncDaemon
	if sd == nil || string(sd.AuthKey) != "0123456789abcdef0123" || sd.AuthKeyFile != "/etc/vigil/sync.key" {
		t.Fatalf("LVSSyncDaemon = %+v", sd)
	}
	_, diags = LoadBytes("-", []byte(syncConf("eth0 VI_1", " lvs_sync_auth_key_file /etc/vigil/open.key\n", "198.51.100.10")), env)
	if len(diags) != 1 || diags[0].Severity != Warning || !strings.Contains(diags[0].Msg, "readable by others (mode -rw-r--r--)") {
		t.Errorf("diagnostics = %v, want the mode warning", diags)
	}
}
