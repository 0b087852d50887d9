#!/usr/bin/env bash
# CPU of one 10 ms x 3 BFD session, two vigil binaries A/B: for each round,
# each binary in turn runs on both ends of a veth pair between two network
# namespaces (192.0.2.1 and .2); once Up and settled, utime+stime of each
# end's daemon and of its BFD process (the daemon's child `vigil _bfd`, if
# the binary has one), with their threads' context switches, is read from
# /proc/PID/stat over SECONDS seconds, and the session's flaps in that time
# from `vigil status`. The word `keepalived` in place of a binary runs
# keepalived 2.2.7 on both ends instead and measures its BFD child.
# Run as root:   bash bench/bfd_cpu_ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [SECONDS]
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-3} SECS=${4:-20}
# More binaries (or keepalived) to alternate with: VIGIL_AB_MORE="BIN ...".
BINS=("$A" "$B" ${VIGIL_AB_MORE:-})
# VIGIL_AB_BUSY=N runs N busy loops while measuring: the flaps (keepalived:
# "Entering Down state" lines of end 1) then compare false downs.
BUSY=${VIGIL_AB_BUSY:-0}
. "$(dirname "$0")/pairlab.sh"
pairlab_pair vbc
for i in 0 1; do
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
# utime+stime of processes (0 for none)
ticks() { local n=0 p; for p in "$@"; do [ "$p" = 0 ] || n=$((n + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $n; }
# context switches of all the processes' threads: their wake-ups
csw() { local p; for p in "$@"; do [ "$p" = 0 ] || cat /proc/"$p"/task/*/status; done | awk '/ctxt_switches/ {n += $2} END {print n + 0}'; }
flaps() {
	if [ "$1" = keepalived ]; then
		grep -ci 'entering down state' "$dir/log0" || true
	else
		"$1" status -control "$2" -json 2>/dev/null | sed -n 's/.*"flaps": *\([0-9]*\).*/\1/p' | head -1
	fi
}
pct() { awk -v d="$1" -v hz="$hz" -v s="$SECS" 'BEGIN{printf "%.2f", 100*d/hz/s}'; }
printf 'round\tbinary\tCPU %% of a core over %ss, end 1 / end 2: daemon + BFD process = all\tcontext switches/s (end 1: daemon, BFD process)\tflaps\ttimer late max/wakes later than the interval (end 1, whole life)\n' "$SECS"
for r in $(seq "$ROUNDS"); do
	for bin in "${BINS[@]}"; do
		pids=()
		for i in 0 1; do
			ns=$n0; [ $i = 1 ] && ns=$n1
			pairlab_run "$bin" "$ns" $i
			pids+=($!)
		done
		sleep 5
		# main[i]: the daemon (keepalived: its parent), bfd[i]: the BFD process (0: none)
		main=() bfd=()
		for i in 0 1; do
			if [ "$bin" = keepalived ]; then
				main+=("${pids[$i]}") bfd+=("$(cat "$dir/b$i.kpid")")
			else
				main+=("${pids[$i]}") bfd+=("$(pgrep -P "${pids[$i]}" | head -1 || true)")
				[ -n "${bfd[$i]}" ] || bfd[$i]=0
			fi
		done
		if [ "$bin" != keepalived ]; then
			"$bin" status -control "$dir/s0" | grep -q 'Up' || { echo "session not Up" >&2; cat "$dir/log0" >&2; exit 1; }
		fi
		f0=$(flaps "$bin" "$dir/s0")
		loops=()
		for _ in $(seq "$BUSY"); do
			sh -c 'while :; do :; done' &
			loops+=($!)
		done
		a0=$(ticks "${main[0]}") b0=$(ticks "${bfd[0]}") a1=$(ticks "${main[1]}") b1=$(ticks "${bfd[1]}")
		c0=$(csw "${main[0]}") e0=$(csw "${bfd[0]}")
		sleep "$SECS"
		A0=$(ticks "${main[0]}") B0=$(ticks "${bfd[0]}") A1=$(ticks "${main[1]}") B1=$(ticks "${bfd[1]}")
		C0=$(csw "${main[0]}") E0=$(csw "${bfd[0]}")
		for p in "${loops[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
		fl=$(($(flaps "$bin" "$dir/s0") - f0))
		end() { printf '%s + %s = %s%%' "$(pct "$1")" "$(pct "$2")" "$(pct $(($1 + $2)))"; }
		late=-
		[ "$bin" = keepalived ] || late=$("$bin" status -control "$dir/s0" -json 2>/dev/null |
			sed -n 's/.*"wake_late_max": *"\([^"]*\)".*/\1/p; s/.*"late_over_interval": *\([0-9]*\).*/\1/p' | paste -sd/)
		printf '%s\t%s\t%s / %s\t%s, %s\t%s\t%s\n' "$r" "$bin" "$(end $((A0 - a0)) $((B0 - b0)))" "$(end $((A1 - a1)) $((B1 - b1)))" \
			$(((C0 - c0) / SECS)) $(((E0 - e0) / SECS)) "$fl" "$late"
		for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
		sleep 1
		rm -f "$dir"/v*.pid "$dir"/s0 "$dir"/s1 "$dir"/*.kpid
	done
done
