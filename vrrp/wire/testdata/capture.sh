#!/bin/bash
# capture.sh: records real VRRP adverts from keepalived as golden vectors for
# the wire package's tests. Needs root, iproute2, tcpdump, python3 and
# keepalived (tested with 2.2.7). Usage: capture.sh OUT.txt
#
# For each case it creates two network namespaces joined by a veth pair:
#   wirecapk: eth0 192.0.2.1/24 (+ IPv6 link-local), runs keepalived with a
#             single vrrp_instance on eth0, state MASTER, priority 150;
#   wirecapc: eth1 192.0.2.2/24, runs tcpdump for IP protocol 112.
# keepalived runs for a few seconds (it becomes master after
# Master_Down_Interval) and is then stopped with SIGTERM, so the capture
# also holds its priority-0 "resign" advert. The VRRP payload (the IP
# payload) of each distinct advert is written as one line:
#   NAME SRC DST TTL HEX
# Everything is removed on exit, on failure too.
set -euo pipefail
out=${1:?usage: capture.sh OUT.txt}
K=wirecapk C=wirecapc
work=$(mktemp -d /tmp/wirecap.XXXXXX)
kpid= tpid=
cleanup() {
	[ -n "$kpid" ] && kill "$kpid" 2>/dev/null && wait "$kpid" 2>/dev/null || true
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null || true
	kpid= tpid=
	ip netns del $K 2>/dev/null || true
	ip netns del $C 2>/dev/null || true
}
trap 'cleanup; rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

setup() {
	cleanup
	ip netns add $K
	ip netns add $C
	ip -n $K link add eth0 type veth peer name eth1 netns $C
	for ns in $K $C; do
		ip netns exec $ns sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
		ip -n $ns link set lo up
	done
	ip -n $K link set eth0 address 02:00:00:00:00:01
	ip -n $C link set eth1 address 02:00:00:00:00:02
	ip -n $K addr add 192.0.2.1/24 dev eth0
	ip -n $C addr add 192.0.2.2/24 dev eth1
	ip -n $K link set eth0 up
	ip -n $C link set eth1 up
	sleep 1
}

# run NAME FILTER SECONDS CONFIG: captures keepalived running CONFIG.
run() {
	local name=$1 filter=$2 secs=$3 conf=$work/$1.conf
	cat >"$conf"
	setup
	ip netns exec $C tcpdump -n -U -i eth1 -w "$work/$name.pcap" "$filter" 2>"$work/$name.tcpdump" &
	tpid=$!
	sleep 1
	ip netns exec $K keepalived -n -l -D -P -f "$conf" \
		-p "$work/$name.pid" -r "$work/$name.vrrp.pid" -c "$work/$name.chk.pid" \
		>"$work/$name.log" 2>&1 &
	kpid=$!
	sleep "$secs"
	kill -TERM "$kpid"
	wait "$kpid" || true
	kpid=
	sleep 1
	kill "$tpid"
	wait "$tpid" || true
	tpid=
	python3 - "$name" "$work/$name.pcap" >>"$work/out.txt" <<'PY'
import ipaddress, struct, sys
name, path = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
magic = struct.unpack("<I", data[:4])[0]
assert magic == 0xA1B2C3D4, hex(magic)
off, seen = 24, set()
while off < len(data):
    _, _, caplen, _ = struct.unpack("<IIII", data[off:off + 16])
    frame = data[off + 16:off + 16 + caplen]
    off += 16 + caplen
    etype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if etype == 0x0800:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        ttl, proto = ip[8], ip[9]
        src, dst = ipaddress.ip_address(ip[12:16]), ipaddress.ip_address(ip[16:20])
        payload = ip[ihl:total]
    elif etype == 0x86DD:
        plen = struct.unpack("!H", ip[4:6])[0]
        proto, ttl = ip[6], ip[7]
        src, dst = ipaddress.ip_address(ip[8:24]), ipaddress.ip_address(ip[24:40])
        payload = ip[40:40 + plen]
    else:
        continue
    if proto != 112 or payload in seen:
        continue
    seen.add(payload)
    print(name, src, dst, ttl, payload.hex())
PY
	echo "--- $name" >&2
	grep -iE "checksum|error|unknown|warn|entering|version" "$work/$name.log" >&2 || true
}

run v2-pass "ip proto 112" 6 <<'CONF'
global_defs {
	router_id wirecap
}
vrrp_instance VI_1 {
	interface eth0
	state MASTER
	virtual_router_id 51
	priority 150
	advert_int 1
	version 2
	authentication {
		auth_type PASS
		auth_pass secret
	}
	virtual_ipaddress {
		192.0.2.100/24
		192.0.2.101/24
	}
}
CONF

run v2-none "ip proto 112" 10 <<'CONF'
vrrp_instance VI_1 {
	interface eth0
	state MASTER
	virtual_router_id 52
	priority 150
	advert_int 2
	version 2
	virtual_ipaddress {
		192.0.2.102/24
	}
}
CONF

run v3-ipv4 "ip proto 112" 6 <<'CONF'
vrrp_instance VI_1 {
	interface eth0
	state MASTER
	virtual_router_id 53
	priority 150
	advert_int 1
	version 3
	virtual_ipaddress {
		192.0.2.100/24
		192.0.2.101/24
	}
}
CONF

run v3-ipv4-unicast "ip proto 112" 6 <<'CONF'
vrrp_instance VI_1 {
	interface eth0
	state MASTER
	virtual_router_id 54
	priority 150
	advert_int 1
	version 3
	unicast_src_ip 192.0.2.1
	unicast_peer {
		192.0.2.2
	}
	virtual_ipaddress {
		192.0.2.103/24
	}
}
CONF

run v3-ipv4-unicast-old "ip proto 112" 6 <<'CONF'
vrrp_instance VI_1 {
	interface eth0
	state MASTER
	virtual_router_id 55
	priority 150
	advert_int 1
	version 3
	old_unicast_checksum
	unicast_src_ip 192.0.2.1
	unicast_peer {
		192.0.2.2
	}
	virtual_ipaddress {
		192.0.2.104/24
	}
}
CONF

run v3-ipv6 "ip6 proto 112" 6 <<'CONF'
vrrp_instance VI_6 {
	interface eth0
	state MASTER
	virtual_router_id 56
	priority 150
	advert_int 0.5
	virtual_ipaddress {
		2001:db8::100/64
		2001:db8::101/64
	}
}
CONF

cp "$work/out.txt" "$out"
