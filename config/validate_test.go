package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"vigil/internal/inet"
)

// testEnv knows eth0 and eth1; scripts under /ok/ are fine, /insecure/
// ones are writable by others.
func testEnv() Env {
	return Env{
		ReadFile:        func(string) ([]byte, error) { return nil, errors.New("no files in unit tests") },
		Glob:            func(string) ([]string, error) { return nil, nil },
		Hostname:        "node1",
		InterfaceExists: func(n string) bool { return n == "eth0" || n == "eth1" || n == "lo" },
		UserExists:      func(n string) bool { return n == "root" || n == "nobody" },
		GroupExists:     func(n string) bool { return n == "root" || n == "nogroup" },
		HostResolves:    func(n string) bool { return n == "localhost" },
		CheckScript: func(path string, security bool) error {
			switch {
			case strings.HasPrefix(path, "/ok/"):
				return nil
			case strings.HasPrefix(path, "/insecure/"):
				if security {
					return errors.New("writable by a non-root user")
				}
				return nil
			}
			return errors.New("no such file")
		},
	}
}

type wantDiag struct {
	line int
	sev  Severity
	sub  string
}

func (w wantDiag) String() string { return fmt.Sprintf("line %d %s %q", w.line, w.sev, w.sub) }

// vi wraps instance settings in a valid vrrp_instance on line 1; its
// settings start on line 3.
func vi(body string) string {
	return "vrrp_instance VI_1 {\n interface eth0\n" + body + "\n virtual_router_id 51\n virtual_ipaddress {\n  192.0.2.100/24\n }\n}\n"
}

// vs wraps virtual server settings; they start on line 2.
func vs(body string) string {
	return "virtual_server 192.0.2.10 80 {\n" + body + "\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 192.0.2.20 80 {\n  TCP_CHECK {\n  }\n }\n}\n"
}

const secure = "global_defs {\n enable_script_security\n script_user root\n}\n"

// Each case records keepalived 2.2.7's `keepalived -t` exit code (run in a
// namespace with eth0 and eth1) in its name: ok = 0, fail = 5 or 6. The
// Errors must be exactly the listed ones; listed warnings must be present.
type snippetCase struct {
	name string
	conf string
	want []wantDiag
}

var snippetCases = []snippetCase{
	{"ok/minimal", vi(""), nil},
	{"fail/vrid-semicolon", vi(" virtual_router_id 51;"), []wantDiag{
		{3, Error, `virtual_router_id "51;": expected an integer 1..255`},
	}},
	{"fail/vrid-0", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 0\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n", []wantDiag{
		{3, Error, `virtual_router_id "0": expected an integer 1..255`},
		{3, Info, "no valid virtual_router_id"},
	}},
	{"fail/vrid-missing", "vrrp_instance VI_1 {\n interface eth0\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n", []wantDiag{
		{1, Error, "virtual_router_id is missing"},
	}},
	{"fail/interface-missing", "vrrp_instance VI_1 {\n virtual_router_id 5\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n", []wantDiag{
		{1, Error, "interface is missing"},
	}},
	{"fail/interface-does-not-exist", "vrrp_instance VI_1 {\n interface eth9\n virtual_router_id 5\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n", []wantDiag{
		{2, Error, "interface eth9 does not exist"},
	}},
	// keepalived.conf(5) allows this; keepalived 2.2.7 -t does not.
	{"fail/unicast-without-interface", "vrrp_instance VI_1 {\n virtual_router_id 5\n unicast_peer {\n  192.0.2.2\n }\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n", []wantDiag{{1, Error, "interface is missing"}}},
	{"fail/track-interface-twice", vi(" track_interface {\n  eth1\n  eth1\n }"), []wantDiag{{5, Error, "eth1 is tracked twice"}}},
	{"fail/priority-0", vi(" priority 0"), []wantDiag{{3, Error, `priority "0": expected an integer 1..255`}}},
	{"fail/priority-256", vi(" priority 256"), []wantDiag{{3, Error, `priority "256": expected an integer 1..255`}}},
	{"ok/priority-255", vi(" priority 255\n state MASTER"), nil},
	{"fail/state-lower-case", vi(" state master"), []wantDiag{{3, Error, `state "master": expected MASTER or BACKUP`}}},
	{"fail/unknown-keyword", vi(" priorty 100"), []wantDiag{{3, Error, `unknown keyword "priorty" in vrrp_instance`}}},
	{"fail/unknown-top-level", "vrrp_instanse X {\n}\n", []wantDiag{{1, Error, `unknown keyword "vrrp_instanse" in the top level`}}},
	{"fail/keyword-in-wrong-block", "global_defs {\n net_namespace foo\n}\n", []wantDiag{{2, Error, `unknown keyword "net_namespace" in global_defs`}}},
	{"ok/top-level-process-keywords", "use_pid_dir\nchild_wait_time 4\n" + vi(""), []wantDiag{{1, Warning, "use_pid_dir is not implemented"}}},
	{"fail/advert-int-zero", vi(" advert_int 0"), []wantDiag{{3, Error, `advert_int "0": expected seconds 0.01..255`}}},
	{"fail/advert-int-v2-fraction", vi(" advert_int 0.5"), []wantDiag{{3, Error, "advert_int 0.5 must be whole seconds with VRRPv2: rounded to 1"}}},
	{"ok/advert-int-v3-fraction", vi(" version 3\n advert_int 0.5"), nil},
	{"fail/advert-int-v3-centiseconds", vi(" version 3\n advert_int 0.123"), []wantDiag{{4, Error, "not a multiple of 0.01 s: rounded to 0.12"}}},
	{"fail/advert-int-v3-too-long", vi(" version 3\n advert_int 41"), []wantDiag{{4, Error, "above the VRRPv3 maximum 40.95"}}},
	{"ok/global-version-3-fraction", "global_defs {\n vrrp_version 3\n}\n" + vi(" advert_int 0.5"), nil},
	{"fail/global-version-4", "global_defs {\n vrrp_version 4\n}\n", []wantDiag{{2, Error, `vrrp_version "4": expected an integer 2..3`}}},
	{"fail/bad-vip", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.300/24\n }\n}\n", []wantDiag{
		{5, Error, `virtual_ipaddress: invalid address "192.0.2.300/24"`},
		{4, Error, "no virtual_ipaddress"},
	}},
	{"fail/no-vip", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress_excluded {\n  192.0.2.1\n }\n}\n", []wantDiag{
		{1, Error, "no virtual_ipaddress"},
	}},
	{"fail/mixed-family-vips", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  192.0.2.1/24\n  2001:db8::1/64\n }\n}\n", []wantDiag{
		{6, Error, "VIP 2001:db8::1/64 is IPv6 but the instance is IPv4"},
	}},
	{"ok/ipv6-with-version-2-first", "vrrp_instance VI_1 {\n interface eth0\n version 2\n virtual_router_id 5\n virtual_ipaddress {\n  2001:db8::1/64\n }\n}\n", nil},
	{"fail/ipv6-then-version-2", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  2001:db8::1/64\n }\n version 2\n}\n", []wantDiag{
		{7, Error, "version 2 conflicts with the IPv6 VIPs"},
	}},
	{"ok/excluded-other-family", vi(" virtual_ipaddress_excluded {\n  2001:db8::5/64\n }"), nil},
	{"fail/vip-unknown-option", vi(" virtual_ipaddress_excluded {\n  192.0.2.5 frob\n }"), []wantDiag{{4, Error, `unknown option "frob"`}}},
	{"fail/vip-brd-and-peer", vi(" virtual_ipaddress_excluded {\n  192.0.2.5 brd + peer 192.0.2.6\n }"), []wantDiag{{4, Error, "both broadcast and peer"}}},
	{"fail/vip-dev-missing", vi(" virtual_ipaddress_excluded {\n  192.0.2.5/32 dev eth7\n }"), []wantDiag{{4, Error, "interface eth7 of address 192.0.2.5/32 does not exist"}}},
	{"ok/vip-options", vi(" virtual_ipaddress_excluded {\n  192.0.2.5/24 dev eth1 scope link label eth1:1 brd 192.0.2.255 no_track\n  192.0.2.6 home -nodad noprefixroute preferred_lft forever\n }"), nil},
	{"fail/duplicate-vrid", vi("") + strings.Replace(vi(""), "VI_1", "VI_2", 1), []wantDiag{{12, Error, "VRID 51 is already used by VI_1"}}},
	{"ok/same-vrid-other-interface", vi("") + strings.Replace(strings.Replace(vi(""), "VI_1", "VI_2", 1), "eth0", "eth1", 1), nil},
	{"ok/same-vrid-other-family", vi("") + "vrrp_instance VI_2 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  fe80::1/64\n }\n}\n", nil},
	{"ok/same-vrid-disjoint-unicast", vi(" unicast_peer {\n  192.0.2.2\n }") + strings.Replace(vi(" unicast_peer {\n  192.0.2.3\n }"), "VI_1", "VI_2", 1), nil},
	{"fail/duplicate-instance-name", vi("") + strings.Replace(vi(""), "51", "52", 1), []wantDiag{{9, Error, "vrrp_instance VI_1 is already defined at -:1"}}},
	{"fail/auth-pass-too-long", vi(" authentication {\n  auth_type PASS\n  auth_pass secret123456\n }"), []wantDiag{{5, Error, `truncated to "secret12"`}}},
	{"fail/auth-type-unknown", vi(" authentication {\n  auth_type MD5\n  auth_pass x\n }"), []wantDiag{{4, Error, `auth_type "MD5": expected PASS or AH`}}},
	{"fail/auth-no-pass", vi(" authentication {\n  auth_type PASS\n }"), []wantDiag{{3, Error, "auth_type PASS without auth_pass"}}},
	// keepalived accepts AH (exit 0); vigil rejects it on purpose.
	{"ok-but-rejected/auth-ah", vi(" authentication {\n  auth_type AH\n  auth_pass x\n }"), []wantDiag{{4, Error, "vigil does not support auth_type AH"}}},
	{"fail/auth-with-v3", vi(" version 3\n authentication {\n  auth_type PASS\n  auth_pass x\n }"), []wantDiag{{4, Error, "VRRPv3 has no authentication"}}},
	{"ok/auth-pass", vi(" authentication {\n  auth_type PASS\n  auth_pass 12345678\n }"), nil},
	{"fail/unicast-peer-family", vi(" unicast_src_ip 192.0.2.1\n unicast_peer {\n  2001:db8::2\n }"), []wantDiag{
		{5, Error, "unicast peer 2001:db8::2 is not IPv4"},
		{4, Error, "no unicast peers"},
	}},
	{"fail/unicast-src-family", vi(" unicast_src_ip 2001:db8::1\n unicast_peer {\n  192.0.2.2\n }"), []wantDiag{{3, Error, "unicast_src_ip 2001:db8::1 is not IPv4"}}},
	{"fail/mcast-src-family", vi(" mcast_src_ip 2001:db8::1"), []wantDiag{{3, Error, "mcast_src_ip 2001:db8::1 is not IPv4"}}},
	{"fail/unicast-src-without-peers", vi(" unicast_src_ip 192.0.2.1"), []wantDiag{{3, Error, "no unicast peers"}}},
	{"fail/bad-unicast-peer", vi(" unicast_peer {\n  192.0.2.999\n }"), []wantDiag{
		{4, Error, `unicast_peer "192.0.2.999": expected an IPv4 or IPv6 address`},
		{3, Error, "no unicast peers"},
	}},
	{"ok/unicast-peer-ttl", vi(" unicast_src_ip 192.0.2.1\n unicast_peer {\n  192.0.2.2 min_ttl 10 max_ttl 200\n }"), nil},
	{"fail/vmac-unicast-no-xmit-base", vi(" use_vmac\n unicast_peer {\n  192.0.2.2\n }"), []wantDiag{{3, Error, "needs vmac_xmit_base"}}},
	{"ok/vmac", vi(" use_vmac vrrp.51\n vmac_xmit_base"), nil},
	{"fail/nopreempt-with-delay", vi(" nopreempt\n preempt_delay 10"), []wantDiag{{4, Error, "preempt_delay is incompatible with nopreempt"}}},
	{"fail/nopreempt-with-master", vi(" nopreempt\n state MASTER"), []wantDiag{{3, Error, "needs state BACKUP"}}},
	{"fail/preempt-delay-range", vi(" preempt_delay 2000"), []wantDiag{{3, Error, `preempt_delay "2000": expected seconds 0..1000`}}},
	{"fail/garp-negative", vi(" garp_master_delay -1"), []wantDiag{{3, Error, `garp_master_delay "-1"`}}},
	{"fail/strict-master", "global_defs {\n vrrp_strict\n}\n" + vi(" state MASTER\n priority 200"), []wantDiag{{6, Error, "strict mode allows state MASTER only with priority 255"}}},
	{"fail/strict-auth", "global_defs {\n vrrp_strict\n}\n" + vi(" authentication {\n  auth_type PASS\n  auth_pass x\n }"), []wantDiag{{6, Error, "strict mode does not allow authentication"}}},
	{"fail/strict-preempt-delay", "global_defs {\n vrrp_strict\n}\n" + vi(" preempt_delay 5"), []wantDiag{{6, Error, "strict mode does not allow preempt_delay"}}},
	{"fail/strict-accept-v2", "global_defs {\n vrrp_strict\n}\n" + vi(" accept"), []wantDiag{{6, Error, "accept mode with VRRPv2"}}},
	{"ok/strict-unicast", "global_defs {\n vrrp_strict\n}\n" + vi(" unicast_peer {\n  192.0.2.2\n }"), []wantDiag{{6, Warning, "strict mode with unicast"}, {4, Warning, "strict mode implies no_accept"}}},
	{"fail/track-script-unknown", vi(" track_script {\n  chk_foo\n }"), []wantDiag{{4, Error, "track script chk_foo is not defined"}}},
	{"fail/track-file-unknown", vi(" track_file {\n  tf\n }"), []wantDiag{{4, Error, "track file tf is not defined"}}},
	{"fail/track-process-unknown", vi(" track_process {\n  tp\n }"), []wantDiag{{4, Error, "track process tp is not defined"}}},
	{"fail/track-interface-missing", vi(" track_interface {\n  eth7\n }"), []wantDiag{{4, Error, "tracked interface eth7 does not exist"}}},
	{"fail/track-own-interface", vi(" track_interface {\n  eth0\n }"), []wantDiag{{4, Error, "instance's own interface"}}},
	{"fail/track-interface-weight-range", vi(" track_interface {\n  eth1 weight 300\n }"), []wantDiag{{4, Error, `weight "300": expected an integer -253..253`}}},
	{"ok/track-all", "track_file tf {\n file /run/tf\n weight -10\n}\nvrrp_track_process tp {\n process haproxy\n weight 10\n}\n" +
		vi(" track_file {\n  tf weight 5\n }\n track_process {\n  tp\n }\n track_interface {\n  eth1 weight -20 reverse\n }"), nil},
	{"fail/owner-weighted-tracking", vi(" priority 255\n track_interface {\n  eth1 weight 10\n }"), []wantDiag{{5, Error, "weighted tracking of eth1 is not allowed with priority 255"}}},
	{"fail/script-weight-range", secure + "vrrp_script chk {\n script /ok/x\n weight 300\n}\n", []wantDiag{{7, Error, `weight "300": expected an integer -253..253`}}},
	{"fail/script-missing-script", secure + "vrrp_script chk {\n interval 2\n}\n", []wantDiag{{5, Error, "vrrp_script chk: no script"}}},
	{"ok/script-duplicate", secure + "vrrp_script chk {\n script /ok/x\n}\nvrrp_script chk {\n script /ok/y\n}\n", []wantDiag{{8, Warning, "vrrp_script chk is already defined"}}},
	{"fail/script-security-not-enabled", "vrrp_script chk {\n script /ok/x\n}\n", []wantDiag{{2, Error, "enable_script_security is not set"}}},
	{"fail/notify-security-not-enabled", vi(" notify_master /ok/x"), []wantDiag{{3, Error, "enable_script_security is not set"}}},
	{"ok/script-user-not-root", "global_defs {\n script_user nobody\n}\nvrrp_script chk {\n script /ok/x\n}\n", nil},
	{"fail/script-default-user-missing", "global_defs {\n enable_script_security\n}\nvrrp_script chk {\n script /ok/x\n}\n", []wantDiag{{5, Error, "keepalived_script is assumed missing"}}},
	{"fail/script-insecure", secure + "vrrp_script chk {\n script /insecure/x\n}\n", []wantDiag{{6, Error, "writable by a non-root user: the tracking script is disabled"}}},
	{"fail/script-not-found", secure + "vrrp_script chk {\n script \"/nowhere/x arg\"\n}\n", []wantDiag{{6, Error, "no such file"}}},
	{"ok/notify-not-found", secure + vi(" notify_master /nowhere/x"), []wantDiag{{7, Warning, `script "/nowhere/x" cannot be used: no such file`}}},
	{"ok/script-quoted-args-and-user", secure + vi(" notify \"/ok/n.sh 'two words'\" nobody nogroup"), nil},
	{"fail/script-user-unknown", secure + "vrrp_script chk {\n script /ok/x\n user nosuchuser\n}\n", []wantDiag{{6, Error, "user nosuchuser does not exist"}}},
	{"fail/sync-group-unknown-member", "vrrp_sync_group G {\n group {\n  VI_1\n  VI_9\n }\n}\n" + vi(""), []wantDiag{
		{4, Error, "vrrp_instance VI_9 does not exist"},
		{1, Error, "has only one member"},
	}},
	{"fail/sync-group-weighted-member", secure + "vrrp_script chk {\n script /ok/x\n weight 10\n}\nvrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n}\n" +
		vi(" track_script {\n  chk\n }") + strings.Replace(strings.Replace(vi(""), "VI_1", "VI_2", 1), "51", "52", 1),
		[]wantDiag{{18, Error, "weighted tracking of chk in sync group G"}}},
	{"fail/sync-group-member-twice", "vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n}\nvrrp_sync_group H {\n group {\n  VI_1\n  VI_2\n }\n}\n" +
		vi("") + strings.Replace(strings.Replace(vi(""), "VI_1", "VI_2", 1), "51", "52", 1), []wantDiag{
		{9, Error, "VI_1 is already in sync group G"},
		{10, Error, "VI_2 is already in sync group G"},
		{7, Error, "has no existing member"},
	}},
	{"fail/script-group-unknown", secure + "vrrp_script chk {\n script /ok/x\n user root nosuchgroup\n}\n", []wantDiag{{6, Error, "group nosuchgroup does not exist"}}},
	{"ok/script-empty-script-line", secure + "vrrp_script chk {\n script /ok/x\n script\n}\n", nil},
	{"fail/sync-group-global-tracking", "vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n global_tracking\n}\n" + vi("") + strings.Replace(strings.Replace(vi(""), "VI_1", "VI_2", 1), "51", "52", 1), []wantDiag{{6, Error, "global_tracking is rejected"}}},
	{"fail/sync-group-tracks-member-interface", "vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n track_interface {\n  eth1\n }\n}\n" + vi("") + strings.Replace(strings.Replace(strings.Replace(vi(""), "VI_1", "VI_2", 1), "51", "52", 1), "eth0", "eth1", 1), []wantDiag{{7, Error, "eth1 is the own interface of member VI_2"}}},
	{"fail/ops-with-tcp", vs(" ops"), []wantDiag{{2, Error, "ops (one-packet scheduling) needs protocol UDP"}}},
	{"fail/sh-port-with-rr", vs(" sh-port"), []wantDiag{{2, Error, "sh-port only applies to the sh scheduler"}}},
	{"fail/version-conflict", vi(" version 3\n version 2"), []wantDiag{{4, Error, "version 2 conflicts with version 3"}}},
	{"fail/ipvlan-without-address", vi(" use_ipvlan"), []wantDiag{{3, Error, "use_ipvlan with IPv4 needs an address"}, {3, Warning, "use_ipvlan is not implemented"}}},
	{"fail/linkbeat-in-instance", vi(" linkbeat_use_polling"), []wantDiag{{3, Error, "linkbeat_use_polling is rejected"}}},
	{"fail/route-mixed-family", vi(" virtual_routes {\n  203.0.113.0/24 via 2001:db8::fe dev eth0\n }"), []wantDiag{{4, Error, "mixes IPv4 and IPv6"}}},
	{"fail/vrrp-priority-range", "global_defs {\n vrrp_priority -21\n}\n", []wantDiag{{2, Error, `vrrp_priority "-21": expected an integer -20..19`}}},
	{"fail/umask", "global_defs {\n umask 999\n}\n", []wantDiag{{2, Error, `umask "999"`}, {2, Warning, "not implemented"}}},
	{"ok/umask-bits", "global_defs {\n umask IWGRP|IWOTH\n}\n", []wantDiag{{2, Warning, "not implemented"}}},
	{"ok/notify-missing-no-security", vi(" notify_master /nowhere/x"), []wantDiag{{3, Warning, "no such file"}}},
	{"fail/fwmark-ip-family", "virtual_server fwmark 5 {\n lb_algo rr\n lb_kind DR\n ip_family inet6\n real_server 192.0.2.20 {\n }\n}\n", []wantDiag{{5, Error, "real server 192.0.2.20 is IPv4 but the service is IPv6"}, {1, Error, "has no real servers"}}},
	{"fail/fwmark-mixed-family", "virtual_server fwmark 5 {\n lb_algo rr\n lb_kind DR\n real_server 192.0.2.20 {\n }\n real_server 2001:db8::20 {\n }\n}\n", []wantDiag{{6, Error, "real server 2001:db8::20 is IPv6"}}},
	{"fail/persistence-timeout-range", vs(" persistence_timeout 99999999"), []wantDiag{{2, Error, `persistence_timeout "99999999": expected an integer 1..2678400`}}},
	{"ok/persistence-granularity-odd", vs(" persistence_granularity 255.0.255.0"), []wantDiag{{2, Warning, "not a contiguous netmask"}}},
	{"fail/checker-without-block", vs(" real_server 192.0.2.21 80 {\n  TCP_CHECK\n }"), []wantDiag{{3, Error, "TCP_CHECK: expected a block"}}},
	{"fail/url-without-path", vs(" real_server 192.0.2.21 80 {\n  HTTP_GET {\n   url {\n    status_code 200\n   }\n  }\n }"), []wantDiag{{4, Error, "url has no path"}, {3, Error, "HTTP_GET has no url"}}},
	{"ok/vs-group-duplicate", "virtual_server_group G {\n 192.0.2.1 80\n}\nvirtual_server_group G {\n 192.0.2.2 80\n}\n", []wantDiag{{4, Warning, "virtual_server_group G is already defined"}}},
	{"fail/vs-group-empty", "virtual_server_group G {\n}\nvirtual_server group G {\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 192.0.2.20 80 {\n }\n}\n", []wantDiag{{1, Error, "has no entries"}}},
	{"fail/vs-group-no-port", "virtual_server_group G {\n 192.0.2.1\n}\nvirtual_server group G {\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 192.0.2.20 80 {\n }\n}\n", []wantDiag{{2, Error, "without a port is only valid for persistent services"}}},
	{"fail/master-without-priority-is-owner", secure + "vrrp_script chk {\n script /ok/x\n weight 10\n}\n" + vi(" state MASTER\n track_script {\n  chk\n }"), []wantDiag{{13, Error, "not allowed with priority 255"}}},
	{"ok/strict-master-without-priority", "global_defs {\n vrrp_strict\n}\n" + vi(" state MASTER"), nil},
	{"fail/nopreempt-owner", vi(" priority 255\n nopreempt"), []wantDiag{{4, Error, "nopreempt is meaningless for the address owner"}}},
	{"ok/auth-pass-only", vi(" authentication {\n  auth_pass abc\n }"), []wantDiag{{3, Warning, "no authentication is used"}}},
	{"fail/vip-label-too-long", vi(" virtual_ipaddress_excluded {\n  192.0.2.5 label eth0:averyverylonglabel\n }"), []wantDiag{{4, Error, "longer than 15 characters"}}},
	{"fail/vip-option-values", vi(" virtual_ipaddress_excluded {\n  192.0.2.5 scope bogus brd 2001:db8::1 preferred_lft soon dev\n }"), []wantDiag{
		{4, Error, `invalid scope "bogus"`}, {4, Error, `invalid broadcast address "2001:db8::1"`}, {4, Error, `invalid preferred_lft "soon"`}, {4, Error, `missing value after "dev"`},
	}},
	{"fail/route-rule-missing-value", vi(" virtual_routes {\n  203.0.113.0/24 dev\n }\n virtual_rules {\n  from 192.0.2.0/24 table\n }"), []wantDiag{
		{4, Error, `virtual_routes: missing value after "dev"`}, {7, Error, `virtual_rules: missing value after "table"`},
	}},
	{"fail/vip-peer-prefix", vi(" virtual_ipaddress_excluded {\n  192.0.2.5 peer 192.0.2.6/32\n }"), []wantDiag{{4, Error, "invalid peer address"}}},
	{"fail/vmac-rfc-mac", vi(" use_vmac vrrp51 00:00:5e:00:01:33"), []wantDiag{{3, Error, "VRRP MAC"}}},
	{"fail/strict-ipv6-not-link-local", "global_defs {\n vrrp_strict\n}\nvrrp_instance VI_1 {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  2001:db8::1/64\n }\n}\n", []wantDiag{{8, Error, "first IPv6 VIP must be link-local"}}},
	{"fail/strict-v2-ipv6", "global_defs {\n vrrp_strict\n}\nvrrp_instance VI_1 {\n interface eth0\n version 2\n virtual_router_id 5\n virtual_ipaddress {\n  fe80::1/64\n }\n}\n", []wantDiag{{6, Error, "IPv6 cannot use VRRP version 2"}}},
	{"fail/strict-vmac-xmit-base", vi(" strict_mode\n use_vmac\n vmac_xmit_base"), []wantDiag{{5, Error, "strict mode does not allow vmac_xmit_base"}}},
	{"ok/ignored-blocks", "linkbeat_interfaces {\n eth0\n eth1 ETHTOOL\n}\ngarp_group {\n garp_interval 0.01\n interface eth0\n}\ninterface_up_down_delays {\n eth0 2 3\n}\nbfd_instance B {\n neighbor_ip 192.0.2.5\n min_rx 10\n}\n", []wantDiag{
		{1, Warning, "linkbeat_interfaces is not implemented"}, {9, Warning, "interface_up_down_delays is not implemented"},
	}},
	{"fail/linkbeat-missing-interface", "linkbeat_interfaces {\n eth9\n eth0 FOO\n}\n", []wantDiag{{2, Error, "interface eth9 does not exist"}, {3, Error, `unexpected "FOO"`}}},
	{"ok/garp-groups", "garp_group {\n garp_interval 0.01\n interface eth0\n}\ngarp_group {\n gna_interval 0\n interfaces {\n  eth1\n }\n}\n", nil},
	{"fail/garp-group-interface-twice", "garp_group {\n garp_interval 0.01\n interface eth0\n}\ngarp_group {\n gna_interval 0.01\n interfaces {\n  eth1 eth0\n }\n}\n", []wantDiag{{8, Error, "interface eth0 is already in a garp_group"}}},
	{"ok/garp-group-both-forms", "garp_group {\n garp_interval 0.01\n interface eth0\n interfaces {\n  eth1\n }\n}\n", []wantDiag{{5, Warning, "both interface and interfaces"}}},
	{"fail/garp-group", "garp_group {\n foo 1\n interface eth9\n}\n", []wantDiag{{2, Error, `unknown keyword "foo" in garp_group`}, {3, Error, "interface eth9 does not exist"}, {1, Error, "no garp_interval or gna_interval"}}},
	{"fail/up-down-delays", "interface_up_down_delays {\n eth9 2\n eth0 300\n}\n", []wantDiag{{2, Error, "interface eth9 does not exist"}, {3, Error, `"300": expected seconds 0..255`}}},
	{"fail/bfd-instance", "bfd_instance A {\n min_rx 10\n}\nbfd_instance B {\n neighbor_ip 192.0.2.500\n}\nbfd_instance C {\n neighbor_ip 192.0.2.5\n foo 3\n}\n", []wantDiag{
		{1, Error, "bfd_instance A: neighbor_ip is missing"}, {5, Error, "malformed neighbor address"}, {9, Error, `unknown keyword "foo" in bfd_instance`},
	}},
	{"fail/track-group-undefined", "static_ipaddress {\n 192.0.2.50/24 dev eth0 track_group TG\n}\n", []wantDiag{{2, Error, "track_group TG is not defined"}}},
	{"ok/track-group", "track_group TG {\n group {\n  VI_9\n }\n}\nstatic_ipaddress {\n 192.0.2.50/24 dev eth0 track_group TG\n}\n", []wantDiag{{1, Warning, "track_group is not implemented"}}},
	{"fail/static-route-without-dev", "static_routes {\n 203.0.113.0/24 via 192.0.2.254\n}\n", []wantDiag{{2, Error, "has no dev"}}},
	{"fail/smtp-server-unresolved", "global_defs {\n smtp_server mail.example.org 25\n}\n", []wantDiag{{2, Error, "does not resolve"}}},
	{"ok/smtp-server-name", "global_defs {\n smtp_server localhost 25\n}\n", nil},
	{"fail/smtp-server-bad", "global_defs {\n smtp_server 999.1.1.1\n}\n", []wantDiag{{2, Error, "expected an IP address or a host name"}}},
	{"fail/garp-delay-fraction", vi(" garp_master_delay 1.5"), []wantDiag{{3, Error, `garp_master_delay "1.5": expected an integer`}}},
	{"fail/global-garp-refresh-fraction", "global_defs {\n vrrp_garp_master_refresh 1.5\n}\n", []wantDiag{{2, Error, `vrrp_garp_master_refresh "1.5"`}}},
	{"fail/negative-zero", vi(" preempt_delay -0"), []wantDiag{{3, Error, `preempt_delay "-0"`}}},
	{"ok/number-forms", vi(" priority +100\n advert_int 2."), nil},
	{"fail/blackhole-without-dev", vi(" virtual_routes {\n  blackhole 203.0.113.0/24\n }"), []wantDiag{{4, Error, "has no dev"}}},
	{"ok/dynamic-interfaces", "global_defs {\n dynamic_interfaces\n}\n" + strings.Replace(vi(""), "eth0", "eth9", 1), []wantDiag{{1, Warning, "interface eth9 does not exist yet"}}},
	{"fail/empty-notification-email", "global_defs {\n notification_email {\n }\n}\n", []wantDiag{{2, Error, "empty block"}}},
	{"fail/vmac-name-too-long", vi(" use_vmac averyveryverylongname"), []wantDiag{{3, Error, "interface names have 1..15 characters"}}},
	{"fail/vmac-xmit-base-alone", vi(" vmac_xmit_base"), []wantDiag{{3, Error, "vmac_xmit_base is only valid with use_vmac"}}},
	{"fail/script-interval-fraction", secure + "vrrp_script chk {\n script /ok/x\n interval 1.5\n}\n", []wantDiag{{7, Error, `interval "1.5": expected an integer 1..4294`}}},
	{"fail/script-user-global-unknown", "global_defs {\n script_user nosuchuser\n}\n", []wantDiag{{2, Error, "script_user nosuchuser does not exist"}}},
	{"ok/garp-big", "global_defs {\n vrrp_garp_master_delay 300\n vrrp_garp_interval 2\n lvs_timeouts tcp 0\n}\n", nil},
	{"fail/route-without-dev", vi(" virtual_routes {\n  203.0.113.0/24 via 192.0.2.254\n }"), []wantDiag{{4, Error, "has no dev so it cannot be tracked"}}},
	{"ok/routes", vi(" virtual_routes {\n  src 192.0.2.1 to 203.0.113.0/24 via 192.0.2.254 dev eth0\n  blackhole 198.51.100.0/24 dev eth1\n  10.0.0.0/8 via 192.0.2.254 no_track\n }"), nil},
	{"fail/static-rule-no-preference", "static_rules {\n from 203.0.113.0/24 table 100\n}\n", []wantDiag{{2, Error, "has no preference"}}},
	{"ok/static", "static_ipaddress {\n 192.0.2.9/24 dev eth1\n}\nstatic_rules {\n from 203.0.113.0/24 table 100 preference 100\n}\nstatic_routes {\n 203.0.113.0/24 via 192.0.2.254 dev eth0\n}\n", nil},
	{"fail/vrrp-iptables", "global_defs {\n vrrp_iptables KA_IN KA_OUT\n}\n", []wantDiag{{2, Error, "vrrp_iptables is rejected"}}},
	{"ok/ignored-globals", "global_defs {\n enable_snmp_vrrp\n enable_dbus\n}\n", []wantDiag{
		{2, Warning, "enable_snmp_vrrp is not implemented by vigil: ignored"},
	}},
	{"fail/smtp-alert-not-bool", vi(" smtp_alert maybe"), []wantDiag{{3, Error, `smtp_alert "maybe": expected on|off|true|false|yes|no`}}},
	{"fail/mcast-group-not-multicast", "global_defs {\n vrrp_mcast_group4 192.0.2.1\n}\n", []wantDiag{{2, Error, "expected an IPv4 multicast address"}}},

	// Virtual servers.
	{"ok/vs", vs(""), nil},
	{"fail/vs-defaults", "virtual_server 192.0.2.10 80 {\n real_server 192.0.2.20 80 {\n }\n}\n", []wantDiag{
		{1, Error, "protocol is missing"},
		{1, Error, "lb_algo is missing: using wlc"},
		{1, Error, "lb_kind is missing: using NAT"},
	}},
	{"fail/vs-bad-ip", "virtual_server 192.0.2.300 80 {\n}\n", []wantDiag{{1, Error, `virtual_server "192.0.2.300": expected an IP address`}}},
	{"fail/vs-bad-port", "virtual_server 192.0.2.1 99999 {\n}\n", []wantDiag{{1, Error, `virtual_server port "99999": expected an integer 1..65535`}}},
	{"fail/vs-unknown-scheduler", vs(" lb_algo fastest"), []wantDiag{{2, Error, `lb_algo "fastest": expected one of rr wrr`}}},
	{"fail/vs-unknown-kind", vs(" lb_kind BRIDGE"), []wantDiag{{2, Error, `lb_kind "BRIDGE": expected NAT, DR, TUN or FNAT`}}},
	{"ok-but-rejected/vs-tun", strings.Replace(vs(""), "lb_kind NAT", "lb_kind TUN", 1), []wantDiag{{4, Error, "vigil does not support lb_kind TUN"}}},
	{"fail/vs-protocol", vs(" protocol ICMP"), []wantDiag{{2, Error, `protocol "ICMP": expected TCP, UDP or SCTP`}}},
	{"fail/vs-no-real-server", "virtual_server 192.0.2.10 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n sorry_server 192.0.2.30 80\n}\n", []wantDiag{{1, Error, "has no real servers"}}},
	{"fail/vs-rs-family", vs(" real_server 2001:db8::1 80 {\n }"), []wantDiag{{2, Error, "real server 2001:db8::1 is IPv6 but the service is IPv4"}}},
	{"fail/vs-rs-bad-ip", vs(" real_server 192.0.2.999 80 {\n }"), []wantDiag{{2, Error, `real_server "192.0.2.999": expected an IPv4 or IPv6 address`}}},
	{"fail/vs-rs-duplicate", vs(" real_server 192.0.2.20 80 {\n }"), []wantDiag{{7, Error, "real server 192.0.2.20 port 80 is duplicated"}}},
	{"fail/vs-rs-weight", vs(" real_server 192.0.2.21 80 {\n  weight -1\n }"), []wantDiag{{3, Error, `weight "-1": expected an integer 0..2147483647`}}},
	{"ok/vs-rs-no-port", vs(" real_server 192.0.2.21 {\n }"), nil},
	{"fail/vs-quorum", vs(" quorum 5"), []wantDiag{{2, Error, "quorum 5 exceeds the total weight 1"}}},
	{"fail/vs-hysteresis", vs(" hysteresis 1"), []wantDiag{{2, Error, "hysteresis 1 must be below quorum 1"}}},
	{"ok/vs-duplicate", vs("") + vs(""), []wantDiag{{11, Warning, "virtual_server [192.0.2.10]:tcp:80 is already defined"}}},
	{"fail/vs-port-0", "virtual_server 192.0.2.10 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 192.0.2.20 80 {\n }\n}\n", []wantDiag{{1, Error, "port 0 is only valid for persistent services"}}},
	{"ok/vs-port-0-persistent", "virtual_server 192.0.2.10 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n persistence_timeout 30\n real_server 192.0.2.20 80 {\n }\n}\n", nil},
	{"ok/vs-fwmark", "virtual_server fwmark 5 {\n lb_algo rr\n lb_kind DR\n real_server 192.0.2.20 {\n }\n}\n", nil},
	{"fail/vs-fwmark-protocol", "virtual_server fwmark 5 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 192.0.2.20 {\n }\n}\n", []wantDiag{{4, Error, "protocol is meaningless for a fwmark service"}}},
	{"fail/vs-fwmark-rs-port", "virtual_server fwmark 5 {\n lb_algo rr\n lb_kind DR\n real_server 192.0.2.20 80 {\n }\n}\n", []wantDiag{{4, Error, "has a port but fwmark services"}}},
	{"ok/vs-group", "virtual_server_group G {\n 192.0.2.100 80\n 192.0.2.110-120 80\n 10.0.0.0/29 80\n}\nvirtual_server group G {\n lb_algo rr\n lb_kind DR\n protocol TCP\n real_server 192.0.2.20 80 {\n }\n}\n", nil},
	{"ok/vs-group-missing", "virtual_server group G {\n lb_algo rr\n lb_kind DR\n real_server 192.0.2.20 80 {\n }\n}\n", []wantDiag{{1, Warning, "virtual_server_group G is not defined"}}},
	{"fail/vs-group-fwmark-protocol", "virtual_server_group G {\n fwmark 7\n}\nvirtual_server group G {\n protocol TCP\n lb_algo rr\n lb_kind DR\n real_server 192.0.2.20 {\n }\n}\n", []wantDiag{{5, Error, "protocol is meaningless"}}},
	{"fail/vs-nb-get-retry", vs(" real_server 192.0.2.21 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n   nb_get_retry 3\n  }\n }"), []wantDiag{{7, Error, "nb_get_retry is deprecated: use retry"}}},
	{"fail/http-no-url", vs(" real_server 192.0.2.21 80 {\n  HTTP_GET {\n  }\n }"), []wantDiag{{3, Error, "HTTP_GET has no url"}}},
	{"fail/http-bad-status", vs(" real_server 192.0.2.21 80 {\n  HTTP_GET {\n   url {\n    path /\n    status_code 999\n   }\n  }\n }"), []wantDiag{{6, Error, `status_code "999"`}}},
	{"fail/http-bad-digest", vs(" real_server 192.0.2.21 80 {\n  HTTP_GET {\n   url {\n    path /\n    digest abc123\n   }\n  }\n }"), []wantDiag{{6, Error, `digest "abc123": expected 32 hexadecimal digits`}}},
	{"fail/misc-no-path", vs(" real_server 192.0.2.21 80 {\n  MISC_CHECK {\n   misc_timeout 5\n  }\n }"), []wantDiag{{3, Error, "MISC_CHECK has no misc_path"}}},
	{"fail/misc-no-security", vs(" real_server 192.0.2.21 80 {\n  MISC_CHECK {\n   misc_path \"/ok/c arg\"\n  }\n }"), []wantDiag{{4, Error, "enable_script_security is not set"}}},
	{"ok/misc-insecure-warns", secure + vs(" real_server 192.0.2.21 80 {\n  MISC_CHECK {\n   misc_path /insecure/c\n  }\n }"), []wantDiag{{8, Warning, "writable by a non-root user"}}},
	{"fail/dns-type", vs(" real_server 192.0.2.21 80 {\n  DNS_CHECK {\n   type BOGUS\n  }\n }"), []wantDiag{{4, Error, `DNS_CHECK type "BOGUS"`}}},
	{"fail/connect-timeout-0", vs(" real_server 192.0.2.21 80 {\n  TCP_CHECK {\n   connect_timeout 0\n   connect_port 70000\n  }\n }"), []wantDiag{
		{4, Error, `connect_timeout "0"`},
		{5, Error, `connect_port "70000": expected an integer 1..65535`},
	}},
	{"fail/checker-unknown-keyword", vs(" real_server 192.0.2.21 80 {\n  TCP_CHECK {\n   path /\n  }\n }"), []wantDiag{{4, Error, `unknown keyword "path" in TCP_CHECK`}}},
	{"fail/file-check-unknown-track-file", vs(" real_server 192.0.2.21 80 {\n  FILE_CHECK {\n   track_file nope\n  }\n }"), []wantDiag{{3, Error, "track_file nope is not defined"}}},
	{"ok/all-checkers", secure + "track_file tf {\n file /run/tf\n}\n" + vs(" real_server 192.0.2.21 80 {\n"+
		"  UDP_CHECK {\n   payload 0a0b\n   require_reply 0a XX\n  }\n  PING_CHECK {\n  }\n"+
		"  SMTP_CHECK {\n   helo_name foo\n   host {\n    connect_ip 192.0.2.22\n   }\n  }\n"+
		"  DNS_CHECK {\n   type AAAA\n   name example.com\n  }\n  FILE_CHECK {\n   track_file tf\n   weight 2\n  }\n"+
		"  SSL_GET {\n   url {\n    path /health\n    status_code 200-299 404\n   }\n   enable_sni\n  }\n }"), nil},
	// keepalived -t accepts any regex (PCRE2 compiles it at run time) and
	// offsets in any order; vigil warns where it cannot do what is asked.
	{"ok/regex-offsets", vs(" real_server 192.0.2.21 80 {\n  HTTP_GET {\n   url {\n    path /\n    regex \"^ok\"\n    regex_no_match\n    regex_min_offset 2\n    regex_max_offset 10\n   }\n  }\n }"), nil},
	{"ok/regex-not-re2", vs(" real_server 192.0.2.21 80 {\n  HTTP_GET {\n   url {\n    path /\n    regex \"a(?=b)\"\n   }\n  }\n }"), []wantDiag{{4, Warning, "vigil uses Go's RE2 syntax"}}},
	{"ok/regex-max-below-min", vs(" real_server 192.0.2.21 80 {\n  HTTP_GET {\n   url {\n    path /\n    regex x\n    regex_min_offset 5\n    regex_max_offset 4\n   }\n  }\n }"), []wantDiag{{4, Warning, "regex_max_offset 4 is below regex_min_offset 5"}}},
	{"ok/smtp-default-port", "virtual_server fwmark 7 {\n lb_algo rr\n lb_kind NAT\n real_server 192.0.2.20 {\n  SMTP_CHECK {\n  }\n }\n}\n", nil},
	{"fail/fnat-without-group", strings.Replace(vs(""), "lb_kind NAT", "lb_kind FNAT", 1), []wantDiag{{4, Error, "lb_kind FNAT needs laddr_group_name"}}},
	{"ok/fnat", "local_address_group LG {\n 198.51.100.10-20 eth1\n 198.51.100.30\n}\n" + strings.Replace(vs(" laddr_group_name LG"), "lb_kind NAT", "lb_kind FNAT", 1), nil},
	{"fail/fnat-bad-range", "local_address_group LG {\n 198.51.100.20-10\n}\n", []wantDiag{{2, Error, `invalid address "198.51.100.20-10"`}}},
	// Words keepalived refuses after a block's name or a one-value keyword.
	{"fail/vip-block-extra-word", "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress primary {\n  192.0.2.100/24\n }\n}\n", []wantDiag{{4, Error, `virtual_ipaddress: unexpected "primary" before '{'`}}},
	{"fail/list-blocks-extra-word", vi(" unicast_peer x {\n  192.0.2.2\n }\n track_script y {\n }\n virtual_routes z {\n }") + "static_ipaddress s {\n 192.0.2.50/24 dev eth0\n}\n", []wantDiag{
		{3, Error, `unicast_peer: unexpected "x"`}, {6, Error, `track_script: unexpected "y"`}, {8, Error, `virtual_routes: unexpected "z"`}, {15, Error, `static_ipaddress: unexpected "s"`}}},
	{"fail/instance-extra-word", strings.Replace(vi(""), "VI_1 {", "VI_1 primary {", 1), []wantDiag{{1, Error, `vrrp_instance VI_1: unexpected "primary" after the name`}}},
	{"ok/script-extra-word", "vrrp_script chk x {\n script /ok/chk\n}\n" + secure, []wantDiag{{1, Warning, `unexpected "x"`}}},
	{"fail/lb-kind-extra-word", strings.Replace(vs(""), "lb_kind NAT", "lb_kind NAT fast", 1), []wantDiag{{4, Error, `lb_kind NAT: unexpected "fast"`}}},
	{"fail/ssl-repeated", "SSL {\n key /a.key\n key /b.key\n password x\n ca /a\n certificate /c\n certificate /d\n}\n", []wantDiag{{3, Error, "a second key"}, {7, Error, "a second certificate"}}},
	{"ok/garp-lower-prio-repeat-0", "global_defs {\n vrrp_garp_lower_prio_repeat 0\n}\n" + vi(" garp_lower_prio_repeat 0"), nil},
	{"fail/garp-interval-0", "global_defs {\n vrrp_garp_interval 0\n vrrp_gna_interval 0\n}\n", []wantDiag{{2, Error, `vrrp_garp_interval "0"`}, {3, Error, `vrrp_gna_interval "0"`}}},
	{"fail/vsg-mixed-families", "virtual_server_group G {\n 192.0.2.100 80\n 2001:db8::100 80\n fwmark 5\n}\nvirtual_server group G {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 192.0.2.20 80 {\n }\n}\n", []wantDiag{{6, Error, "mixes IPv4, IPv6 and fwmark"}}},
	{"fail/vsg-mixed-families-inet6", "virtual_server_group G {\n 192.0.2.100 80\n 2001:db8::100 80\n fwmark 5\n}\nvirtual_server group G {\n ip_family inet6\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 2001:db8::20 80 {\n }\n}\n", []wantDiag{{6, Error, "mixes IPv4, IPv6 and fwmark"}}},
	{"fail/dynamic-interfaces-option", "global_defs {\n dynamic_interfaces x\n}\n", []wantDiag{{2, Error, `dynamic_interfaces "x"`}}},
	{"ok/dynamic-interfaces-allow", "global_defs {\n dynamic_interfaces allow_if_changes\n}\n", nil},
	{"fail/vsg-extra-word", "virtual_server_group G x {\n 192.0.2.100 80\n}\n", []wantDiag{{1, Error, `unexpected "x" after the name`}}},
}

func TestSnippets(t *testing.T) { runSnippets(t, snippetCases) }

func runSnippets(t *testing.T, cases []snippetCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := LoadBytes("-", []byte(tc.conf), testEnv())
			if cfg == nil {
				t.Fatalf("no config:\n%s", diags)
			}
			used := make([]bool, len(diags))
			for _, w := range tc.want {
				found := false
				for k, d := range diags {
					if !used[k] && d.Pos.Line == w.line && d.Severity == w.sev && strings.Contains(d.Msg, w.sub) {
						used[k], found = true, true
						break
					}
				}
				if !found {
					t.Errorf("missing %s in:\n%s", w, diags)
					for _, d := range diags {
						if d.Severity == w.sev && strings.Contains(d.Msg, w.sub) && os.Getenv("SNIPPET_FIX") != "" {
							fmt.Printf("FIX\t%s\t%d\t%s\t%d\n", tc.name, w.line, w.sub, d.Pos.Line)
						}
					}
				}
			}
			for k, d := range diags {
				if !used[k] && d.Severity >= Error {
					t.Errorf("unexpected %s", d)
				}
			}
			wantFail := !strings.HasPrefix(tc.name, "ok/")
			if diags.HasErrors() != wantFail {
				t.Errorf("HasErrors = %v, keepalived verdict says %v", diags.HasErrors(), wantFail)
			}
			for _, d := range diags {
				if d.Pos.Line == 0 {
					t.Errorf("diagnostic without a line: %s", d)
				}
			}
		})
	}
}

// SMTP_CHECK without connect_port on a port-less real server connects to
// 25; the regex keywords reach the model.
func TestSMTPPortAndRegexModel(t *testing.T) {
	conf := "virtual_server fwmark 7 {\n lb_algo rr\n lb_kind NAT\n real_server 192.0.2.20 {\n  SMTP_CHECK {\n   helo_name me.example.test\n  }\n  HTTP_GET {\n   connect_port 80\n   url {\n    path /\n    regex ok\n    regex_no_match\n    regex_min_offset 2\n    regex_max_offset 9\n   }\n  }\n }\n}\n"
	cfg, diags := LoadBytes("-", []byte(conf), testEnv())
	if cfg == nil || diags.HasErrors() {
		t.Fatalf("load: %s", diags)
	}
	for _, d := range diags {
		if strings.Contains(d.Msg, "no port") {
			t.Errorf("unexpected %s", d)
		}
	}
	cs := cfg.VirtualServers[0].RealServers[0].Checkers
	if cs[0].Type != CheckSMTP || cs[0].ConnectPort != 25 || cs[0].SMTP.HeloName != "me.example.test" {
		t.Errorf("SMTP_CHECK = port %d helo %q, want 25 me.example.test", cs[0].ConnectPort, cs[0].SMTP.HeloName)
	}
	u := cs[1].HTTP.URLs[0]
	if u.Regex != "ok" || !u.RegexNoMatch || u.RegexMinOffset != 2 || u.RegexMaxOffset != 9 {
		t.Errorf("url = %+v", u)
	}
}

// A NAT or FNAT service on a host that does not forward its family gets a
// warning (the Env says what the host does); DR does not need forwarding.
func TestForwardingWarning(t *testing.T) {
	fnat := "local_address_group LG {\n 198.51.100.10\n}\n" + strings.Replace(vs(" laddr_group_name LG"), "lb_kind NAT", "lb_kind FNAT", 1)
	v6 := "virtual_server 2001:db8::10 80 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 2001:db8::20 80 {\n  TCP_CHECK {\n  }\n }\n}\n"
	dr := strings.Replace(vs(""), "lb_kind NAT", "lb_kind DR", 1)
	rsNAT := strings.Replace(strings.Replace(vs(""), "lb_kind NAT", "lb_kind DR", 1), "real_server 192.0.2.20 80 {", "real_server 192.0.2.20 80 {\n  lvs_method NAT", 1)
	tests := []struct {
		name    string
		conf    string
		v4, v6  bool
		unknown bool
		want    string
	}{
		{"NAT, forwarding off", vs(""), false, true, false, "virtual_server [192.0.2.10]:tcp:80 uses lb_kind NAT but net.ipv4.ip_forward is 0"},
		{"FNAT, forwarding off", fnat, false, true, false, "uses lb_kind FNAT but net.ipv4.ip_forward is 0"},
		{"NAT, forwarding on", vs(""), true, true, false, ""},
		{"IPv6 NAT, v6 forwarding off", v6, true, false, false, "net.ipv6.conf.all.forwarding is 0"},
		{"IPv6 NAT, only v4 off", v6, false, true, false, ""},
		{"DR needs none", dr, false, false, false, ""},
		{"NAT real server of a DR service", rsNAT, false, true, false, "uses lb_kind NAT"},
		{"unknown", vs(""), false, false, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv()
			env.Forwarding = func(f inet.Family) (bool, bool) {
				if f == inet.IPv6 {
					return tt.v6, !tt.unknown
				}
				return tt.v4, !tt.unknown
			}
			_, diags := LoadBytes("-", []byte(tt.conf), env)
			var got []string
			for _, d := range diags {
				if strings.Contains(d.Msg, "forward") {
					got = append(got, d.String())
					line := strings.Count(tt.conf[:strings.Index(tt.conf, "virtual_server")], "\n") + 1
					if d.Severity != Warning || d.Pos.Line != line {
						t.Errorf("%s: want a warning on line %d", d, line)
					}
				}
			}
			switch {
			case tt.want == "" && len(got) > 0:
				t.Errorf("unexpected %v", got)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
				t.Errorf("got %v, want one containing %q", got, tt.want)
			}
		})
	}
}

// DR_PATH_CHECK (a vigil extension) is accepted in an IPv4 DR virtual
// server, where it learns the VIP, and refused elsewhere.
func TestDRPathCheckConfig(t *testing.T) {
	dr := func(vip, kind, rs string) string {
		return "virtual_server " + vip + " 80 {\n lb_algo rr\n lb_kind " + kind + "\n protocol TCP\n real_server " + rs + " 80 {\n  DR_PATH_CHECK {\n   connect_timeout 2\n  }\n }\n}\n"
	}
	cfg, diags := LoadBytes("-", []byte(dr("198.51.100.100", "DR", "198.51.100.11")), testEnv())
	if diags.HasErrors() {
		t.Fatalf("DR: %s", diags)
	}
	c := cfg.VirtualServers[0].RealServers[0].Checkers[0]
	if c.Type != CheckDRPath || c.DRPath == nil || c.DRPath.VIP != netip.MustParseAddr("198.51.100.100") || c.ConnectPort != 80 || c.ConnectTimeout != 2*time.Second || c.Type.String() != "DR_PATH_CHECK" {
		t.Errorf("DR_PATH_CHECK = %+v", c)
	}
	for _, bad := range []string{dr("192.0.2.100", "NAT", "192.0.2.11"), dr("2001:db8::100", "DR", "2001:db8::11")} {
		_, diags := LoadBytes("-", []byte(bad), testEnv())
		if !diags.HasErrors() || !strings.Contains(diags.String(), "DR_PATH_CHECK of real server") {
			t.Errorf("accepted:\n%s\n%s", bad, diags)
		}
	}
}

// lvs_timeouts beside a NAT or FNAT service is a warning at the keyword:
// vigil applies it to DR's flow memory only.
func TestLVSTimeoutsWarning(t *testing.T) {
	const g = "global_defs {\n lvs_timeouts tcp 600 udp 60\n}\n"
	dr := strings.Replace(vs(""), "lb_kind NAT", "lb_kind DR", 1)
	for _, tt := range []struct {
		name, conf, want string
	}{
		{"NAT", g + vs(""), "lvs_timeouts applies to lb_kind DR only"},
		{"DR", g + dr, ""},
		{"NAT without lvs_timeouts", vs(""), ""},
	} {
		_, diags := LoadBytes("-", []byte(tt.conf), testEnv())
		var got []string
		for _, d := range diags {
			if strings.Contains(d.Msg, "lvs_timeouts") {
				got = append(got, d.String())
				if d.Severity != Warning || d.Pos.Line != 2 {
					t.Errorf("%s: %s: want a warning on line 2", tt.name, d)
				}
			}
		}
		if tt.want == "" && len(got) > 0 || tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
