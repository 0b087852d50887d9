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
# Request rates on a shared two-core machine move by tens of percent from
# run to run, far more than the rules' own cost, so the script also
# measures that cost directly ("rule cost"): a raw-socket sender in the
# client (dataplane/nft TestBenchBlast) pushes small UDP packets, each a new
# flow, through the director under hand and under vigil rules for a UDP
# service, alternating, and reads the whole machine's CPU time per packet.
# The difference per packet (DR) or per new flow (NAT, FNAT), times the
# packets or connections per request, over the CPU time a request costs
# (measured during the wrk runs), bounds what vigil's rules take off the
# request rate.
#
# Usage: sudo bench/dataplane.sh            (from anywhere in the repository)
#        DURATION=2 ROUNDS=5 CONNS=32 BLAST_N=50000 BLAST_SEGMENTS=160 bench/dataplane.sh
#        PIN_CL="taskset -c 0" PIN_RS="taskset -c 1" ... pins wrk and nginx
#        WRK=0 BASE=nocount bench/dataplane.sh   the rule cost of vigil's traffic
#            counters (dataplane/nft/stats.go): "hand" is then vigil's own rules
#            with the counting taken out (the rules of the statistics chains,
#            and DR's counter statements), so the difference is the counting
#        WRK=0 BASE=nomemory bench/dataplane.sh  the rule cost of DR's memory of
#            flows (dataplane/nft drFlows): "hand" is then vigil's DR rules
#            without it; NAT and FNAT are not run
# Runs are bounded: DURATION seconds each, 14 per round (about two and a
# half minutes with the defaults). Every namespace and the scratch directory
# are removed on exit, failure or interrupt. Addresses are documentation
# ones.
set -euo pipefail

DURATION=${DURATION:-2}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-32}
BLAST_N=${BLAST_N:-50000}
BLAST_SEGMENTS=${BLAST_SEGMENTS:-160}
WRK=${WRK:-1} # WRK=0: the rule cost only
BASE=${BASE:-hand} # nocount: compare vigil with vigil without its counters; nomemory: DR without its memory of flows
PROTO=tcp
P=${VIGIL_LAB_TAG:-}vbench # namespace prefix (VIGIL_LAB_TAG keeps concurrent runs apart)
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
# The rule-cost sender makes a new UDP flow per packet: let them expire
# within a second, as the TCP ones above.
nsx $DIR sysctl -qw net.netfilter.nf_conntrack_udp_timeout=1
# ... and the real server drops them on arrival, the same way for both.
nsx $RS nft -f - <<EOF
table netdev rsdrop {
	chain in { type filter hook ingress device "eth0" priority 0; meta l4proto udp udp dport 80 drop; }
}
EOF
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
nsx $RS ${PIN_RS:-} nginx -c "$WORK/nginx.conf"
for _ in $(seq 50); do nsx $CL bash -c "exec 3<>/dev/tcp/$RSDIRECT/80" 2>/dev/null && break; sleep 0.1; done

# --- measurement ------------------------------------------------------------
# rate URL keepalive|new: requests/s from wrk.
# busy: the whole machine's busy CPU time so far, in ns (/proc/stat).
busy() { awk 'NR==1 {printf "%.0f\n", ($2+$3+$4+$7+$8+$9)*10000000; exit}' /proc/stat; }
dirrx() { nsx $DIR cat /sys/class/net/eth0/statistics/rx_packets; }
# rate URL keepalive|new: requests/s from wrk; also records, in
# $WORK/cost, the machine's busy CPU ns per request and the director's
# received packets per request during the run.
rate() {
	local hdr=()
	[ "$2" = new ] && hdr=(-H "Connection: close")
	local out b0 b1 p0 p1 reqs
	sleep 1.5 # let the previous run's TIME_WAIT entries go
	b0=$(busy) p0=$(dirrx)
	out=$(nsx $CL ${PIN_CL:-} wrk -t1 -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" "$1" 2>&1)
	b1=$(busy) p1=$(dirrx)
	if ! grep -q '^Requests/sec' <<<"$out" || grep -q 'Non-2xx\|Socket errors: connect [1-9]' <<<"$out"; then
		echo "wrk $1 ($2) failed or saw errors:" >&2
		echo "$out" >&2
	fi
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	awk -v b="$((b1 - b0))" -v p="$((p1 - p0))" -v r="${reqs:-0}" 'BEGIN { if (r > 0) printf "%.0f:%.2f", b / r, p / r }' >"$WORK/cost"
	awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out"
}

# The machine is shared: hand and vigil alternate within each round, so
# that both see the same background load, and the table reports the
# median of ROUNDS runs of each.
declare -A RUNS
declare -A COST # name,mode: "cpu-ns-per-request:director-packets-per-request" per run
run() { # name url
	RUNS[$1,keepalive]+=" $(rate "$2" keepalive)"
	COST[$1,keepalive]+=" $(cat "$WORK/cost")"
	RUNS[$1,new]+=" $(rate "$2" new)"
	COST[$1,new]+=" $(cat "$WORK/cost")"
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

vigil_apply() { # method real-server [DR memory: 1 or 0]
	VIGIL_BENCH_NS=$DIR VIGIL_BENCH_METHOD=$1 VIGIL_BENCH_VIP=$VIP VIGIL_BENCH_RS=$2 VIGIL_BENCH_PROTO=$PROTO VIGIL_BENCH_DR_MEMORY=${3:-1} \
		VIGIL_BENCH_LADDR=$LADDR VIGIL_BENCH_DEV=eth0 VIGIL_BENCH_RSMAC=$RSMAC \
		"$WORK/nft.test" -test.run '^TestBenchApply$' >"$WORK/apply.log" 2>&1 ||
		{ cat "$WORK/apply.log" >&2; exit 1; }
}
clear_rules() { nsx $DIR nft flush ruleset; }

# compare method real-server: ROUNDS rounds of hand and vigil.
compare() {
	local r
	[ "$WRK" = 1 ] || return 0
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

# blastcmp method real-server: the rule cost of hand and vigil rules for a
# UDP service, loaded in turns within one run of the sender (see
# TestBenchBlast). Both rulesets go through the same `nft list ruleset`
# and `nft -f` round trip, so only the rules differ.
declare -A BLAST
# blastcmp METHOD DEST [NAME FLOWS]: the rule cost of METHOD, as NAME (METHOD
# by default), every packet a new flow, or going round FLOWS flows.
blastcmp() {
	local m=$1 f name=${3:-$1} flows=${4:-0}
	PROTO=udp
	clear_rules
	if [ "$BASE" = nomemory ]; then vigil_apply $m $2 0; else hand_$m; fi
	{ echo "flush ruleset"; nsx $DIR nft list ruleset; } >"$WORK/$m-hand.nft"
	clear_rules; vigil_apply $m $2
	{ echo "flush ruleset"; nsx $DIR nft list ruleset; } >"$WORK/$m-vigil.nft"
	if [ "$BASE" = nocount ]; then
		sed -e '/ct status dnat .*@stats/d' -e 's/ ip6\{0,1\} daddr \. meta l4proto[^@]*@stats[0-9a-z_]*//g' "$WORK/$m-vigil.nft" >"$WORK/$m-hand.nft"
		grep -q '@stats' "$WORK/$m-vigil.nft" || { echo "nocount: no counting in vigil's $m rules" >&2; exit 1; }
		! grep -q '@stats' "$WORK/$m-hand.nft" || { echo "nocount: counting left in $m" >&2; exit 1; }
	fi
	if [ "$BASE" = nomemory ]; then
		grep -q '_flows' "$WORK/$m-vigil.nft" || { echo "nomemory: no memory of flows in vigil's $m rules" >&2; exit 1; }
		! grep -q '_flows' "$WORK/$m-hand.nft" || { echo "nomemory: memory of flows left in $m" >&2; exit 1; }
	fi
	sleep 1.2 # the wrk runs' flows expire
	BLAST[$name]=$(nsx $CL ${PIN_CL:-taskset -c 0} env GOMAXPROCS=1 VIGIL_BLAST_DST=$VIP VIGIL_BLAST_SRCNET=192.0.2.0/24 VIGIL_BLAST_FLOWS=$flows \
		VIGIL_BLAST_N=$BLAST_N VIGIL_BLAST_SEGMENTS=$BLAST_SEGMENTS \
		VIGIL_BLAST_A="ip netns exec $DIR nft -f $WORK/$m-hand.nft" VIGIL_BLAST_B="ip netns exec $DIR nft -f $WORK/$m-vigil.nft" \
		"$WORK/nft.test" -test.run '^TestBenchBlast$' -test.v 2>&1 | tee "$WORK/blast.out" | awk '$1 == "blast" {$1 = ""; print}')
	[ -n "${BLAST[$name]}" ] || { echo "rule cost run for $name failed:" >&2; cat "$WORK/blast.out" >&2; exit 1; }
	echo "$name rule cost: packets, wall ns/packet hand and vigil, busy ns/packet hand and vigil, vigil-hand median and its 95% interval:${BLAST[$name]}" >&2
	echo "$name sender thread CPU ns/packet hand and vigil, vigil-hand median and its 95% interval:$(awk '$1 == "blastcpu" {$1 = ""; print}' "$WORK/blast.out")" >&2
	clear_rules
	PROTO=tcp
}

[ "$WRK" = 1 ] && for r in $(seq "$ROUNDS"); do run direct "http://$RSDIRECT/"; done
[ "$WRK" = 1 ] && echo "direct:${RUNS[direct,keepalive]} /${RUNS[direct,new]} req/s (keep-alive/new)" >&2

# DR: real server on the client's link, VIP on lo, answering the client
# directly.
hand_dr() {
	nsx $DIR nft -f - <<EOF
table netdev handdr {
	chain in_eth0 {
		type filter hook ingress device "eth0" priority 0;
		ip daddr $VIP $PROTO dport 80 ether saddr set $DIRMAC ether daddr set $RSMAC fwd to "eth0"
	}
}
EOF
}
nsx $RS ip addr add $VIP/32 dev lo
nsx $RS sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
compare dr $RSDIRECT
blastcmp dr $RSDIRECT
# The packets of flows the director already forwarded: vigil's DR rules
# forward them by the flow they remember (dataplane/nft drFlows).
blastcmp dr $RSDIRECT dr-known 1024
nsx $RS ip addr del $VIP/32 dev lo

# NAT: the real server moves to its own subnet behind the director and
# routes back through it.
# hand_dnat table [chain]: the hand-written DNAT of the VIP to the real
# server in table ip "table", with the nft text "chain" beside it.
hand_dnat() {
	nsx $DIR nft -f - <<EOF
table ip $1 {
	chain prerouting {
		type nat hook prerouting priority dstnat;
		ip daddr $VIP $PROTO dport 80 dnat to $RSBACK:80
	}
	${2:-}
}
EOF
}
hand_nat() { hand_dnat handnat; }
nsx $RS ip addr del $RSDIRECT/24 dev eth0
nsx $RS ip addr add $RSBACK/24 dev eth0
nsx $DIR ip addr add $DIRBACK/24 dev eth0
nsx $RS ip route add default via $DIRBACK
if [ "$BASE" != nomemory ]; then
compare nat $RSBACK
blastcmp nat $RSBACK
fi

# FNAT: no route back; the real server answers the director's local address.
hand_fnat() {
	hand_dnat handfnat "chain postrouting {
		type nat hook postrouting priority srcnat;
		meta l4proto $PROTO ct original ip daddr $VIP ct original proto-dst 80 snat to $LADDR:1024-65535
	}"
}
nsx $RS ip route del default
nsx $DIR ip addr add $LADDR/32 dev eth0
if [ "$BASE" != nomemory ]; then
compare fnat $RSBACK
blastcmp fnat $RSBACK
fi

# --- table ------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
if [ "$WRK" = 1 ]; then
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
fi

# --- rule cost ----------------------------------------------------------------
field() { tr ' ' '\n' <<<"$1" | grep . | cut -d: -f"$2" | tr '\n' ' '; }
echo
echo "rule cost: $BLAST_SEGMENTS segments of $BLAST_N new UDP flows from a raw socket through the director, hand"
echo "and vigil rules loaded in turns (A B B A ...); wall ns per packet of the pinned sender (medians of the"
echo "segments; the kernel forwards inline on its CPU), the machine's busy ns per packet (totals), and vigil"
echo "minus hand within each pair of segments (median, and its 95% confidence interval). Per request: that"
echo "difference times the packets (DR: every packet the director receives) or new connections (NAT, FNAT)"
echo "per request, over the machine's busy ns per request in the wrk runs through vigil above: vigil's"
echo "share of a request's cost by the median, and at most by the interval's upper end. dr-known: the same"
echo "packets going round 1,024 flows, which vigil's DR rules forward by the flow they remember."
printf "%-8s %8s %8s %8s %8s %10s %18s %-10s %8s %10s %9s %9s\n" method hand vigil busy-h busy-v vigil-hand "(95% CI)" mode "per req" "CPU/req" share "at most"
for m in dr dr-known nat fnat; do
	read -r _ wh wv bh bv d dlo dhi <<<"${BLAST[$m]:-0 0 0 0 0 0 0 0}"
	cm=${m%-known} # the wrk runs of the method
	for mode in keepalive new; do
		cpu=$(median "$(field "${COST[$cm-vigil,$mode]:-}" 1)")
		if [ "$cm" = dr ]; then
			per=$(median "$(field "${COST[$cm-vigil,$mode]:-}" 2)") # packets through the ingress rule
		elif [ "$mode" = new ]; then
			per=1 # one new connection, one walk of the nat chains
		else
			per=$(awk -v c="$CONNS" -v r="$(median "${RUNS[$cm-vigil,keepalive]:-}")" -v t="$DURATION" 'BEGIN { if (r > 0) printf "%.5f", c / (r * t); else print 0 }')
		fi
		share=$(awk -v d="$d" -v p="$per" -v c="$cpu" 'BEGIN { if (c > 0) printf "%+.2f%%", 100 * d * p / c; else print "-" }')
		most=$(awk -v d="$dhi" -v p="$per" -v c="$cpu" 'BEGIN { if (c > 0) printf "%+.2f%%", 100 * d * p / c; else print "-" }')
		printf "%-8s %8s %8s %8s %8s %10s %18s %-10s %8s %10s %9s %9s\n" "$m" "$wh" "$wv" "$bh" "$bv" "$d" "$dlo..$dhi" "$mode" "$per" "$cpu" "$share" "$most"
	done
done
