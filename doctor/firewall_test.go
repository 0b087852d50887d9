package doctor

import (
	"net/netip"
	"strings"
	"testing"
)

// nftInputDrop is `nft -j list ruleset` (nft 1.0.6) for one rule dropping
// VRRP on eth0, and nftInputDropText the same ruleset from `nft -a`.
const nftInputDrop = `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
{"table": {"family": "inet", "name": "filter", "handle": 1}},
{"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
{"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 3, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth0"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": "vrrp"}}, {"drop": null}]}}]}`

const nftInputDropText = `table inet filter { # handle 1
	chain input { # handle 1
		type filter hook input priority filter; policy accept;
		iifname "eth0" ip protocol vrrp drop # handle 3
	}
}
`

// nftMixed is a ruleset of several shapes, printed by nft 1.0.6.
const nftMixed = `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "filter", "handle": 1}}, {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"chain": {"family": "inet", "table": "filter", "name": "foo", "handle": 2}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "224.0.0.18"}}, {"counter": {"packets": 0, "bytes": 0}}, {"reject": {"type": "icmp", "expr": "port-unreachable"}}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 6, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "vrrp"}}, {"match": {"op": "==", "left": {"ct": {"key": "state"}}, "right": {"set": ["established", "related"]}}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 7, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "daddr"}}, "right": "ff02::12"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 10, "expr": [{"match": {"op": "!=", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "198.51.100.0", "len": 24}}}}, {"jump": {"target": "foo"}}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "foo", "handle": 11, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "pkttype"}}, "right": "multicast"}}, {"drop": null}]}}, {"table": {"family": "ip", "name": "raw", "handle": 2}}, {"chain": {"family": "ip", "table": "raw", "name": "pre", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept"}}, {"rule": {"family": "ip", "table": "raw", "chain": "pre", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": "vrrp"}}, {"notrack": null}]}}]}`

// nftEdge is a netdev ingress chain (nft -j does not name its device) and
// an ip6 output rule on conntrack state.
const nftEdge = `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "netdev", "name": "edge", "handle": 1}}, {"chain": {"family": "netdev", "table": "edge", "name": "ingress", "handle": 1, "type": "filter", "hook": "ingress", "prio": 0, "policy": "accept"}}, {"rule": {"family": "netdev", "table": "edge", "chain": "ingress", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": "vrrp"}}, {"drop": null}]}}, {"table": {"family": "ip6", "name": "f6", "handle": 2}}, {"chain": {"family": "ip6", "table": "f6", "name": "out", "handle": 1, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}}, {"rule": {"family": "ip6", "table": "f6", "chain": "out", "handle": 2, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "eth0"}}, {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "vrrp"}}, {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, {"drop": null}]}}]}`

const nftEdgeText = `table netdev edge { # handle 1
	chain ingress { # handle 1
		type filter hook ingress device "eth0" priority filter; policy accept;
		ip protocol vrrp drop # handle 2
	}
}
table ip6 f6 { # handle 2
	chain out { # handle 1
		type filter hook output priority filter; policy accept;
		oifname "eth0" meta l4proto vrrp ct state new drop # handle 2
	}
}
`

const nftMixedText = `table inet filter { # handle 1
	chain input { # handle 1
		type filter hook input priority filter; policy accept;
		ip daddr 224.0.0.18 counter packets 0 bytes 0 reject with icmp port-unreachable # handle 4
		meta l4proto vrrp ct state { established, related } accept # handle 6
		ip6 daddr ff02::12 drop # handle 7
		iifname != "lo" ip saddr 198.51.100.0/24 jump foo # handle 10
	}

	chain foo { # handle 2
		meta pkttype multicast drop # handle 11
	}
}
table ip raw { # handle 2
	chain pre { # handle 1
		type filter hook prerouting priority raw; policy accept;
		ip protocol vrrp notrack # handle 2
	}
}
`

var (
	group4 = netip.MustParseAddr("224.0.0.18")
	group6 = netip.MustParseAddr("ff02::12")
)

func TestFirewallBlocks(t *testing.T) {
	in4 := vrrpPacket{fam: 4, iface: "eth0", dst: group4, multicast: true}
	out4 := vrrpPacket{fam: 4, out: true, iface: "eth0", src: netip.MustParseAddr("192.0.2.1"), dst: group4, multicast: true}
	in6 := vrrpPacket{fam: 6, iface: "eth0", dst: group6, multicast: true}
	from := func(p vrrpPacket, src string) vrrpPacket { p.src = netip.MustParseAddr(src); return p }
	uni := vrrpPacket{fam: 4, iface: "eth0", src: netip.MustParseAddr("192.0.2.2"), dst: netip.MustParseAddr("192.0.2.1")}
	tests := []struct {
		name string
		fw   Firewall
		p    vrrpPacket
		want string // the quote of the first block, "" for none; a "?" prefix for an unsure one
	}{
		{"nft rule on eth0", Firewall{NftJSON: []byte(nftInputDrop), NftText: []byte(nftInputDropText)}, in4, `nft: table inet filter chain input: iifname "eth0" ip protocol vrrp drop`},
		{"nft rule on eth0, other interface", Firewall{NftJSON: []byte(nftInputDrop)}, vrrpPacket{fam: 4, iface: "eth1", dst: group4, multicast: true}, ""},
		{"nft rule on eth0, outgoing", Firewall{NftJSON: []byte(nftInputDrop)}, out4, ""},
		{"nft rule on eth0, IPv6", Firewall{NftJSON: []byte(nftInputDrop)}, in6, ""},
		{"nft without text", Firewall{NftJSON: []byte(nftInputDrop)}, in4, "nft: table inet filter chain input: rule handle 3"},
		{"nft group reject", Firewall{NftJSON: []byte(nftMixed), NftText: []byte(nftMixedText)}, in4, "reject with icmp port-unreachable"},
		{"nft IPv6 group", Firewall{NftJSON: []byte(nftMixed), NftText: []byte(nftMixedText)}, in6, "ip6 daddr ff02::12 drop"},
		{"nft jump to a chain dropping multicast", Firewall{NftJSON: []byte(strings.Replace(nftMixed, "224.0.0.18", "224.0.0.99", 1)), NftText: []byte(nftMixedText)},
			from(in4, "198.51.100.7"), "meta pkttype multicast drop"},
		{"nft jump needs an unknown source", Firewall{NftJSON: []byte(strings.Replace(nftMixed, "224.0.0.18", "224.0.0.99", 1)), NftText: []byte(nftMixedText)},
			in4, ""},
		{"nft netdev ingress on eth0", Firewall{NftJSON: []byte(nftEdge), NftText: []byte(nftEdgeText)}, in4, "nft: table netdev edge chain ingress: ip protocol vrrp drop"},
		{"nft netdev ingress on another device", Firewall{NftJSON: []byte(nftEdge), NftText: []byte(strings.Replace(nftEdgeText, `device "eth0"`, `device "eth9"`, 1))}, in4, ""},
		{"nft netdev ingress, device unknown", Firewall{NftJSON: []byte(nftEdge)}, in4, "?"},
		{"nft ip6 output, multicast is new", Firewall{NftJSON: []byte(nftEdge), NftText: []byte(nftEdgeText)},
			vrrpPacket{fam: 6, out: true, iface: "eth0", dst: group6, multicast: true}, "oifname \"eth0\" meta l4proto vrrp ct state new drop"},
		{"iptables protocol drop", Firewall{IptablesSave: []byte("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i eth0 -p vrrp -j DROP\nCOMMIT\n")}, in4,
			"iptables: iptables table filter chain INPUT: -A INPUT -i eth0 -p vrrp -j DROP"},
		{"iptables wildcard interface, number", Firewall{IptablesSave: []byte("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -i eth+ -p 112 -j REJECT\nCOMMIT\n")}, in4, "-p 112 -j REJECT"},
		{"iptables negated interface", Firewall{IptablesSave: []byte("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT ! -i eth0 -p vrrp -j DROP\nCOMMIT\n")}, in4, ""},
		{"iptables accept first", Firewall{IptablesSave: []byte("*filter\n:INPUT DROP [0:0]\n-A INPUT -p vrrp -j ACCEPT\nCOMMIT\n")}, in4, ""},
		{"iptables policy drop", Firewall{IptablesSave: []byte("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n")}, in4,
			"iptables: iptables table filter chain INPUT has policy drop and no earlier rule accepts VRRP"},
		{"iptables policy drop, unicast maybe established", Firewall{IptablesSave: []byte("*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n")}, uni, "?"},
		{"iptables user chain", Firewall{IptablesSave: []byte("*filter\n:INPUT ACCEPT [0:0]\n:ha - [0:0]\n-A INPUT -i eth0 -j ha\n-A ha -d 224.0.0.18/32 -j DROP\nCOMMIT\n")}, in4, "-A ha -d 224.0.0.18/32 -j DROP"},
		{"iptables output", Firewall{IptablesSave: []byte("*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -o eth0 -p vrrp -j DROP\nCOMMIT\n")}, out4, "-A OUTPUT -o eth0 -p vrrp -j DROP"},
		{"iptables unknown match naming VRRP is a maybe", Firewall{IptablesSave: []byte("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p vrrp -m limit --limit 1/s -j DROP\nCOMMIT\n")}, in4, "?"},
		{"ip6tables group", Firewall{Ip6tablesSave: []byte("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -d ff02::12/128 -j DROP\nCOMMIT\n")}, in6, "-d ff02::12/128 -j DROP"},
		{"ip6tables does not touch IPv4", Firewall{Ip6tablesSave: []byte("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p vrrp -j DROP\nCOMMIT\n")}, in4, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, errs := parseFirewall(tc.fw)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			bs := rs.blocks(tc.p)
			if tc.want == "" {
				if len(bs) > 0 {
					t.Errorf("blocks = %q, want none", bs[0].quote())
				}
				return
			}
			if len(bs) == 0 {
				t.Fatalf("no block, want %q", tc.want)
			}
			if tc.want == "?" {
				if bs[0].sure {
					t.Errorf("block %q is sure, want unsure", bs[0].quote())
				}
				return
			}
			if !bs[0].sure || !strings.Contains(bs[0].quote(), tc.want) {
				t.Errorf("block = %q (sure %v), want %q", bs[0].quote(), bs[0].sure, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, fw := range []Firewall{
		{NftJSON: []byte("{not json")},
		{IptablesSave: []byte("*filter\n-A NOPE -j DROP\n")},
	} {
		if _, errs := parseFirewall(fw); len(errs) == 0 {
			t.Errorf("%+v parsed without error", fw)
		}
	}
}
