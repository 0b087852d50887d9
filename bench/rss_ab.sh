#!/usr/bin/env bash
# Memory of N VRRPv3 masters (advert_int 1 s) for two or more vigil
# binaries, A/B, alternating in rounds so that each sees the same machine
# (issue #7's 100- and 1,000-instance rows, where one bench/footprint.sh run
# cannot tell two builds apart: RSS moves by 100-300 KiB between runs of
# the same binary). The configuration is bench/footprint.sh's: 250 VRIDs on
# each of eth0-eth3 (eth0-eth2 IPv4, eth3 IPv6), in one namespace whose
# veths end in a second, silent one. The word `keepalived` in place of a
# binary runs keepalived 2.2.7 (-P: its parent and VRRP processes) in the
# same place.
# Per run, SETTLE seconds after the start (default 30: past vigil's release
# of the start's garbage, 10 s after it is ready, cmd/vigil/memlimit.go):
# RSS, its anonymous and file-backed parts, summed over the process and its
# children (/proc/PID/smaps_rollup), and the CPU they used since the start
# (utime+stime, /proc/PID/stat; SETTLE=8 gives what the start costs).
# Run as root:
#   bash bench/rss_ab.sh N BINARY... [keepalived]
# ROUNDS=R (default 3) rounds; SETTLE=S; VIGIL_RSS_SMAPS=PREFIX keeps each
# vigil run's /proc/PID/smaps as PREFIX.ROUND.INDEX; SCRAPE=S runs vigil
# with --metrics and scrapes /metrics with curl every S seconds while it
# settles (as Prometheus would), from 5 s after the start.
set -euo pipefail
N=$1
shift
ROUNDS=${ROUNDS:-3} SETTLE=${SETTLE:-30}
if [ -n "${SCRAPE:-}" ] && ! command -v curl >/dev/null; then
	echo "SCRAPE needs curl (make deps installs it)" >&2 # else every scrape fails and the daemon is measured unscraped
	exit 1
fi
. "$(dirname "$0")/pairlab.sh"
pairlab_masters rss "$N"
# kib PID...: RSS and anonymous KiB summed over the pids
kib() {
	local p
	for p in "$@"; do cat "/proc/$p/smaps_rollup" 2>/dev/null || true; done |
		awk '/^Rss:/ {r += $2} /^Anonymous:/ {a += $2} END {print r + 0, a + 0}'
}
# cpums PID...: CPU milliseconds used by the pids
cpums() {
	local p
	for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || true; done |
		awk -v hz="$(getconf CLK_TCK)" '{t += $1} END {print int(t * 1000 / hz)}'
}
printf 'round\tbinary\tRSS KiB\tanonymous KiB\tfile-backed KiB\tCPU ms since the start\n'
declare -A sum
for r in $(seq "$ROUNDS"); do
	idx=0
	for bin in "$@"; do
		idx=$((idx + 1))
		if [ "$bin" = keepalived ]; then
			ip netns exec "$n0" keepalived -n -l -P -f "$dir/k.conf" -p "$dir/k.kpid" -r "$dir/v.kpid" >"$dir/log" 2>&1 &
		else
			ip netns exec "$n0" "$bin" run -f "$dir/k.conf" -control "$dir/s" -log-level warn \
				${SCRAPE:+-metrics 127.0.0.1:9650} >"$dir/log" 2>&1 &
		fi
		pid=$!
		echo "$pid" >"$dir/d.pid"
		scraper=
		if [ -n "${SCRAPE:-}" ] && [ "$bin" != keepalived ]; then
			(
				sleep 5
				while :; do
					ip netns exec "$n0" curl -sf -o /dev/null http://127.0.0.1:9650/metrics || echo "scrape failed" >&2
					sleep "$SCRAPE"
				done
			) &
			scraper=$!
		fi
		sleep "$SETTLE"
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$bin exited early:" >&2
			cat "$dir/log" >&2
			exit 1
		fi
		kids=$(pgrep -P "$pid" || true)
		# shellcheck disable=SC2086
		read -r rss anon < <(kib "$pid" $kids)
		# shellcheck disable=SC2086
		cpu=$(cpums "$pid" $kids)
		if [ -n "$scraper" ]; then
			kill "$scraper"
			wait "$scraper" 2>/dev/null || true
		fi
		if [ -n "${VIGIL_RSS_SMAPS:-}" ] && [ "$bin" != keepalived ]; then
			cp "/proc/$pid/smaps" "$VIGIL_RSS_SMAPS.$r.$idx"
		fi
		printf '%d\t%s\t%d\t%d\t%d\t%d\n' "$r" "$bin" "$rss" "$anon" "$((rss - anon))" "$cpu"
		sum[$idx]="${sum[$idx]:-} $rss"
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		sleep 1
	done
done
idx=0
for bin in "$@"; do
	idx=$((idx + 1))
	echo "${sum[$idx]}" | tr ' ' '\n' | sort -n | awk -v b="$bin" 'NF {v[++n] = $1} END {printf "median RSS %s: %d KiB (%d-%d, %d runs)\n", b, v[int((n + 1) / 2)], v[1], v[n], n}'
done
