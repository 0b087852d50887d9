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
. "$(dirname "$0")/pairlab.sh"
pairlab_pair vbs
for i in 0 1; do
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
		pairlab_run "$bin" "$ns" $i
		pids+=($!)
	done
	sleep 5
	bfd=()
	for i in 0 1; do
		if [ "$bin" = keepalived ]; then bfd+=("$(cat "$dir/b$i.kpid")"); else bfd+=("$(pgrep -P "${pids[$i]}" | head -1)"); fi
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
	rm -f "$dir"/*.pid "$dir"/*.kpid "$dir"/s0 "$dir"/s1
done
