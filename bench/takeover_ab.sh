#!/usr/bin/env bash
# How long N VRRPv3 masters (advert_int 1 s) take from the daemon's start
# until every VIP is on its interface, for two or more vigil binaries A/B,
# alternating in rounds; with NOACCEPT=1 every instance runs with
# no_accept (RFC 5798 accept mode off: its VIPs go into the nft drop list
# before they go on the interface). The lab is bench/rss_ab.sh's
# (pairlab_masters, bench/pairlab.sh): 250
# VRIDs on each of eth0-eth3 (eth0-eth2 IPv4, eth3 IPv6) in one namespace
# whose veths end in a second, silent one, so every instance becomes
# master after its Master_Down_Interval (3 x 1 s + skew).
# Run as root:
#   bash bench/takeover_ab.sh N BINARY...
# ROUNDS=R (default 3).
set -euo pipefail
N=$1
shift
ROUNDS=${ROUNDS:-3}
. "$(dirname "$0")/pairlab.sh"
na=""
[ "${NOACCEPT:-}" = 1 ] && na="  no_accept"
pairlab_masters tko "$N" "$na"
# vips: how many of the configured VIPs are on the interfaces (the lab's
# own addresses end in ::254 and .254)
vips() { ip -n "$n0" -o addr show | grep -v '\.254/\|::254/\|fe80\|127.0.0.1\| ::1/' | grep -c ' inet' || true; }
# since T0 NOW: seconds between two `date +%s.%N` readings (awk: bc is not
# in a minimal Debian, nor in the Makefile's TEST_PKGS)
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
printf 'round\tbinary\tfirst VIP (s after start)\tall %d VIPs (s after start)\n' "$N"
for r in $(seq "$ROUNDS"); do
	for bin in "$@"; do
		t0=$(date +%s.%N)
		ip netns exec "$n0" "$bin" run -f "$dir/k.conf" -control "$dir/s" -log-level warn >"$dir/log" 2>&1 &
		pid=$!
		echo "$pid" >"$dir/d.pid"
		first="" all=""
		while [ -z "$all" ]; do
			c=$(vips)
			now=$(date +%s.%N)
			[ -z "$first" ] && [ "$c" -gt 0 ] && first=$(since "$t0" "$now")
			[ "$c" -ge "$N" ] && all=$(since "$t0" "$now")
			if [ -z "$all" ] && awk -v a="$t0" -v b="$now" 'BEGIN { exit !(b - a > 120) }'; then all="(over 120 s: $c)"; fi
			sleep 0.05
		done
		printf '%d\t%s\t%.2f\t%s\n' "$r" "$bin" "$first" "$all"
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		sleep 2
	done
done
