#!/usr/bin/env bash
# CPU of one 10 ms x 3 BFD session, two vigil binaries A/B: for each round,
# each binary in turn runs on both ends of a veth pair between two network
# namespaces (192.0.2.1 and .2); once Up and settled, utime+stime of each
# end's whole process (and its threads' context switches) is read from /proc/PID/stat over SECONDS seconds.
# Run as root:   bash bench/bfd_cpu_ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [SECONDS]
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-3} SECS=${4:-20}
tag=${VIGIL_LAB_TAG:-x}
n0=vbcpu0$tag n1=vbcpu1$tag
dir=$(mktemp -d)
cleanup() {
	for p in $(cat "$dir"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
	ip netns del "$n0" 2>/dev/null || true
	ip netns del "$n1" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$n0"
ip netns add "$n1"
ip link add vbc0 netns "$n0" type veth peer name vbc1 netns "$n1"
for i in 0 1; do
	ns=$n0; [ $i = 1 ] && ns=$n1
	ip -n "$ns" addr add 192.0.2.$((i + 1))/24 dev vbc$i
	ip -n "$ns" link set vbc$i up
	ip -n "$ns" link set lo up
	cat >"$dir/k$i.conf" <<CONF
bfd_instance peer {
  neighbor_ip 192.0.2.$((2 - i))
  source_ip 192.0.2.$((i + 1))
  min_rx 10
  min_tx 10
  multiplier 3
}
CONF
done
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# context switches of all the process's threads: its wake-ups
csw() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
printf 'round\tbinary\tCPU (%% of a core, whole process, %ss; end 1 / end 2)\tcontext switches/s\n' "$SECS"
for r in $(seq "$ROUNDS"); do
	for bin in "$A" "$B"; do
		pids=()
		for i in 0 1; do
			ns=$n0; [ $i = 1 ] && ns=$n1
			ip netns exec "$ns" "$bin" run -f "$dir/k$i.conf" -control "$dir/s$i" -log-level warn >"$dir/log$i" 2>&1 &
			echo $! >"$dir/v$i.pid"
			pids+=($!)
		done
		sleep 5
		"$bin" status -control "$dir/s0" | grep -q 'Up' || { echo "session not Up" >&2; cat "$dir/log0" >&2; exit 1; }
		t0=$(ticks "${pids[0]}") c0=$(csw "${pids[0]}") u0=$(ticks "${pids[1]}") d0=$(csw "${pids[1]}")
		sleep "$SECS"
		t1=$(ticks "${pids[0]}") c1=$(csw "${pids[0]}") u1=$(ticks "${pids[1]}") d1=$(csw "${pids[1]}")
		pct() { awk -v d="$1" -v hz="$hz" -v s="$SECS" 'BEGIN{printf "%.2f", 100*d/hz/s}'; }
		printf '%s\t%s\t%s%% / %s%%\t%s / %s\n' "$r" "$bin" "$(pct $((t1 - t0)))" "$(pct $((u1 - u0)))" $(((c1 - c0) / SECS)) $(((d1 - d0) / SECS))
		for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
		rm -f "$dir"/v*.pid "$dir"/s0 "$dir"/s1
	done
done
