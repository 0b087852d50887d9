#!/usr/bin/env bash
# bench/dataplane.sh: how fast is vigil's nftables data plane?
#
# In a namespace lab (one bridge; a client, a director, one nginx real
# server), wrk measures requests per second, with keep-alive and with a new
# connection per request, against:
#   direct   the real server itself, on the client's link
#   hand     the director running nft rules written by hand below, for NAT,
#            FNAT and DR, the least a person would write for one real server
#   vigil    the director running the rules vigil's Apply renders for the same
#            service (dataplane/nft, through its test binary: TestBenchApply)
# and prints one table. The target is vigil within 5% of hand.
#
# Usage: sudo bench/dataplane.sh            (from anywhere in the repository)
#        DURATION=2 ROUNDS=5 CONNS=32 bench/dataplane.sh
# Runs are bounded: DURATION seconds each, 14 per round (about two and a
# half minutes with the defaults). Every namespace and the scratch directory
# are removed on exit, failure or interrupt. Addresses are documentation
# ones.
set -euo pipefail

DURATION=${DURATION:-2}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-32}
P=vbench # namespace prefix
SW=$P-sw CL=$P-client DIR=$P-dir RS=$P-rs
VIP=192.0.2.100 CLIENT=192.0.2.2 DIRIP=192.0.2.1 RSDIRECT=192.0.2.11
RSBACK=198.51.100.11 DIRBACK=198.51.100.1 LADDR=198.51.100.200
WORK=

cleanup() {
	set +e
	for ns in $CL $DIR $RS $SW; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		[ -n "$pids" ] && kill -9 $pids 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "$WORK" ] && [ -d "$WORK" ] && rm -rf "$WORK"
	return 0
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "dataplane.sh: needs $1 ($2)" >&2; exit 1; }; }
[ "$(id -u)" = 0 ] || { echo "dataplane.sh: needs root (network namespaces)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then apt-get install -y wrk >/dev/null; fi
need wrk "apt-get install wrk"
need nginx "apt-get install nginx-light"
need nft "apt-get install nftables"
need go "the Go toolchain"
cd "$(dirname "$0")/.."

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

cleanup # leftovers of an earlier run that was killed
WORK=$(mktemp -d /tmp/vbench.XXXXXX)
echo "building dataplane/nft test binary..." >&2
go test -c -o "$WORK/nft.test" ./dataplane/nft

# --- lab ------------------------------------------------------------------
for ns in $SW $CL $DIR $RS; do ip netns add $ns; nsx $ns ip link set lo up; done
nsx $SW ip link add lan type bridge forward_delay 0
nsx $SW ip link set lan up
i=0
for ns in $CL $DIR $RS; do
	i=$((i + 1))
	nsx $SW ip link add p$i type veth peer name eth0 netns $ns
	nsx $SW ip link set p$i master lan up
	nsx $ns ip link set eth0 up
done
nsx $CL ip addr add $CLIENT/24 dev eth0
nsx $DIR ip addr add $DIRIP/24 dev eth0
nsx $DIR ip addr add $VIP/32 dev eth0
nsx $RS ip addr add $RSDIRECT/24 dev eth0
# Many short connections: give the client every port and reuse TIME_WAIT.
nsx $CL sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
nsx $DIR sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
# New-connection runs open ~20,000 flows a second; with conntrack's 120 s
# TIME_WAIT an FNAT local address runs out of its 64,512 ports within a
# round, and whichever run comes later pays. One second keeps runs
# independent (tuples are never reused within it).
nsx $DIR sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1 net.netfilter.nf_conntrack_max=1048576 2>/dev/null ||
	{ nsx $DIR nft -f - <<<'table ip ctload { chain c { type nat hook prerouting priority 0; } }'
	  nsx $DIR sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1 net.netfilter.nf_conntrack_max=1048576
	  nsx $DIR nft delete table ip ctload; }
DIRMAC=$(nsx $DIR cat /sys/class/net/eth0/address)
RSMAC=$(nsx $RS cat /sys/class/net/eth0/address)

cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 1000000;
	server { listen 80 reuseport; location / { return 200 "rs\n"; } }
}
EOF
# The real server closes each "Connection: close" request first, so its
# TIME_WAIT sockets pile up; with (F)NAT a later flow can reuse a tuple one
# still holds and stall on a challenge ACK, 1 s per hit. Not keeping
# TIME_WAIT makes runs independent of their order.
nsx $RS sysctl -qw net.ipv4.tcp_max_tw_buckets=0
nsx $RS nginx -c "$WORK/nginx.conf"
for _ in $(seq 50); do nsx $CL bash -c "exec 3<>/dev/tcp/$RSDIRECT/80" 2>/dev/null && break; sleep 0.1; done

# --- measurement ------------------------------------------------------------
# rate URL keepalive|new: requests/s from wrk.
rate() {
	local hdr=()
	[ "$2" = new ] && hdr=(-H "Connection: close")
	local out
	sleep 1.5 # let the previous run's TIME_WAIT entries go
	out=$(nsx $CL wrk -t1 -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" "$1" 2>&1)
	if ! grep -q '^Requests/sec' <<<"$out" || grep -q 'Non-2xx\|Socket errors: connect [1-9]' <<<"$out"; then
		echo "wrk $1 ($2) failed or saw errors:" >&2
		echo "$out" >&2
	fi
	awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out"
}

# The machine is shared: hand and vigil alternate within each round, so
# that both see the same background load, and the table reports the
# median of ROUNDS runs of each.
declare -A RUNS
run() { # name url
	RUNS[$1,keepalive]+=" $(rate "$2" keepalive)"
	RUNS[$1,new]+=" $(rate "$2" new)"
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
# pairratio "a1 a2 ..." "b1 b2 ...": the ratios a_i/b_i, each pair from
# the same round (same background load).
pairratio() {
	local -a a=($1) b=($2)
	local i out=""
	for i in "${!a[@]}"; do
		out+=" $(awk -v x="${a[$i]}" -v y="${b[$i]:-0}" 'BEGIN { if (y > 0) printf "%.3f", x / y }')"
	done
	echo "$out"
}
spread() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }

vigil_apply() { # method real-server
	VIGIL_BENCH_NS=$DIR VIGIL_BENCH_METHOD=$1 VIGIL_BENCH_VIP=$VIP VIGIL_BENCH_RS=$2 \
		VIGIL_BENCH_LADDR=$LADDR VIGIL_BENCH_DEV=eth0 VIGIL_BENCH_RSMAC=$RSMAC \
		"$WORK/nft.test" -test.run '^TestBenchApply$' >"$WORK/apply.log" 2>&1 ||
		{ cat "$WORK/apply.log" >&2; exit 1; }
}
clear_rules() { nsx $DIR nft flush ruleset; }

# compare method real-server: ROUNDS rounds of hand and vigil.
compare() {
	local r
	for r in $(seq "$ROUNDS"); do
		# Odd rounds hand first, even rounds vigil first: whatever a
		# run leaves behind weighs on both alike.
		if [ $((r % 2)) = 1 ]; then
			clear_rules; hand_$1; run $1-hand "http://$VIP/"
			clear_rules; vigil_apply $1 $2; run $1-vigil "http://$VIP/"
		else
			clear_rules; vigil_apply $1 $2; run $1-vigil "http://$VIP/"
			clear_rules; hand_$1; run $1-hand "http://$VIP/"
		fi
		echo "$1 round $r: hand ${RUNS[$1-hand,keepalive]##* }/${RUNS[$1-hand,new]##* }, vigil ${RUNS[$1-vigil,keepalive]##* }/${RUNS[$1-vigil,new]##* } req/s (keep-alive/new)" >&2
	done
	clear_rules
}

for r in $(seq "$ROUNDS"); do run direct "http://$RSDIRECT/"; done
echo "direct:${RUNS[direct,keepalive]} /${RUNS[direct,new]} req/s (keep-alive/new)" >&2

# DR: real server on the client's link, VIP on lo, answering the client
# directly.
hand_dr() {
	nsx $DIR nft -f - <<EOF
table netdev handdr {
	chain in_eth0 {
		type filter hook ingress device "eth0" priority 0;
		ip daddr $VIP tcp dport 80 ether saddr set $DIRMAC ether daddr set $RSMAC fwd to "eth0"
	}
}
EOF
}
nsx $RS ip addr add $VIP/32 dev lo
nsx $RS sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
compare dr $RSDIRECT
nsx $RS ip addr del $VIP/32 dev lo

# NAT: the real server moves to its own subnet behind the director and
# routes back through it.
hand_nat() {
	nsx $DIR nft -f - <<EOF
table ip handnat {
	chain prerouting {
		type nat hook prerouting priority dstnat;
		ip daddr $VIP tcp dport 80 dnat to $RSBACK:80
	}
}
EOF
}
nsx $RS ip addr del $RSDIRECT/24 dev eth0
nsx $RS ip addr add $RSBACK/24 dev eth0
nsx $DIR ip addr add $DIRBACK/24 dev eth0
nsx $RS ip route add default via $DIRBACK
compare nat $RSBACK

# FNAT: no route back; the real server answers the director's local address.
hand_fnat() {
	nsx $DIR nft -f - <<EOF
table ip handfnat {
	chain prerouting {
		type nat hook prerouting priority dstnat;
		ip daddr $VIP tcp dport 80 dnat to $RSBACK:80
	}
	chain postrouting {
		type nat hook postrouting priority srcnat;
		meta l4proto tcp ct original ip daddr $VIP ct original proto-dst 80 snat to $LADDR:1024-65535
	}
}
EOF
}
nsx $RS ip route del default
nsx $DIR ip addr add $LADDR/32 dev eth0
compare fnat $RSBACK

# --- table ------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "wrk -t1 -c$CONNS -d${DURATION}s, one nginx real server; req/s, medians of $ROUNDS alternating rounds;"
echo "vigil/hand is the median of the ratios within each round (their range after it)"
echo "load average while running: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
printf "%-6s %-10s %10s %10s %10s %8s %9s %10s %12s\n" method mode direct hand vigil hand/dir vigil/dir vigil/hand "(rounds)"
for m in nat fnat dr; do
	for mode in keepalive new; do
		d=$(median "${RUNS[direct,$mode]}") h=$(median "${RUNS[$m-hand,$mode]}") v=$(median "${RUNS[$m-vigil,$mode]}")
		pr=$(pairratio "${RUNS[$m-vigil,$mode]}" "${RUNS[$m-hand,$mode]}")
		printf "%-6s %-10s %10s %10s %10s %8s %9s %10s %12s\n" "$m" "$mode" "$d" "$h" "$v" \
			"$(ratio "$h" "$d")" "$(ratio "$v" "$d")" "$(printf %.2f "$(median "$pr")")" "$(spread "$pr")"
	done
done
