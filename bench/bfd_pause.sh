#!/usr/bin/env bash
# False downs of one 10 ms x 3 BFD pair when both of its BFD processes
# stop at once, as every process stops when the VM running them pauses
# (docs/benchmarks.md: this machine's vCPUs stop for 30-100 ms at times):
# for each BIN (a vigil binary, or keepalived for keepalived 2.2.7's BFD
# child), a pair between two network namespaces; once Up, PAUSES times
# (default 10) SIGSTOP both BFD processes, wait MS milliseconds (default
# 100), SIGCONT both, wait 2 s; then the Up -> Down changes of both ends.
# Run as root:   bash bench/bfd_pause.sh BIN [BIN|keepalived]... ; PAUSES=N MS=M to change
set -euo pipefail
PAUSES=${PAUSES:-10} MS=${MS:-100}
tag=${VIGIL_LAB_TAG:-x}
n0=vbs0$tag n1=vbs1$tag
dir=$(mktemp -d)
cleanup() {
	for p in $(cat "$dir"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
	sleep 1
	ip netns del "$n0" 2>/dev/null || true
	ip netns del "$n1" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$n0"
ip netns add "$n1"
ip link add vbs0 netns "$n0" type veth peer name vbs1 netns "$n1"
for i in 0 1; do
	ns=$n0
	[ $i = 1 ] && ns=$n1
	ip -n "$ns" addr add 192.0.2.$((i + 1))/24 dev vbs$i
	ip -n "$ns" link set vbs$i up
	ip -n "$ns" link set lo up
	printf 'bfd_instance peer {\n  neighbor_ip 192.0.2.%d\n  source_ip 192.0.2.%d\n  min_rx 10\n  min_tx 10\n  multiplier 3\n}\n' \
		$((2 - i)) $((i + 1)) >"$dir/k$i.conf"
done
downs() { # bin: Up -> Down changes of both ends so far
	if [ "$1" = keepalived ]; then
		cat "$dir"/log0 "$dir"/log1 | grep -ci 'entering down state' || true
	else
		for i in 0 1; do "$1" status -control "$dir/s$i" -json | sed -n 's/.*"flaps": *\([0-9]*\).*/\1/p' | head -1; done |
			awk '{n += $1} END {print n + 0}'
	fi
}
printf 'implementation\tpauses of both BFD processes\tfalse downs (both ends)\n'
for bin in "$@"; do
	pids=()
	for i in 0 1; do
		ns=$n0
		[ $i = 1 ] && ns=$n1
		if [ "$bin" = keepalived ]; then
			ip netns exec "$ns" keepalived -n -l -D -f "$dir/k$i.conf" -p "$dir/p$i.kp" -r "$dir/r$i.kp" \
				-c "$dir/c$i.kp" -b "$dir/b$i.kp" >"$dir/log$i" 2>&1 &
		else
			ip netns exec "$ns" "$bin" run -f "$dir/k$i.conf" -control "$dir/s$i" -log-level warn >"$dir/log$i" 2>&1 &
		fi
		echo $! >"$dir/v$i.pid"
		pids+=($!)
	done
	sleep 5
	bfd=()
	for i in 0 1; do
		if [ "$bin" = keepalived ]; then bfd+=("$(cat "$dir/b$i.kp")"); else bfd+=("$(pgrep -P "${pids[$i]}" | head -1)"); fi
	done
	before=$(downs "$bin")
	for _ in $(seq "$PAUSES"); do
		kill -STOP "${bfd[@]}"
		sleep "$(awk -v ms="$MS" 'BEGIN{print ms / 1000}')"
		kill -CONT "${bfd[@]}"
		sleep 2
	done
	printf '%s\t%d x %d ms\t%d\n' "$bin" "$PAUSES" "$MS" $(($(downs "$bin") - before))
	for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
	sleep 1
	rm -f "$dir"/*.pid "$dir"/*.kp "$dir"/s0 "$dir"/s1
done
