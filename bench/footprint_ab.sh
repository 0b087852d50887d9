#!/usr/bin/env bash
# CPU, wake-ups and system calls of one VRRP instance, two (or more) vigil
# binaries A/B, alternating in rounds so that every binary sees the same
# machine load (issue #7's 10 ms rows and the idle row, where one
# footprint.sh run on a shared machine cannot tell two binaries apart).
# For each round each binary runs in turn in namespace 1 of a veth pair
# (192.0.2.1); in the backup mode keepalived 2.2.7 on namespace 2
# (192.0.2.2, priority 200) is the master it listens to. The word
# `keepalived` in place of a binary measures keepalived in the same place.
# Per run: CPU (% of a core, /proc/PID/task/*/schedstat run time), wake-ups
# per second (time slices, same file, summed over the threads; the busiest
# thread's share after the slash) and, with perf, system calls per second
# (raw_syscalls:sys_enter over the same window; divided by 100 at 10 ms it
# is calls per advert).
# Run as root:
#   bash bench/footprint_ab.sh MODE OLD_BINARY NEW_BINARY [ROUNDS] [SECONDS]
# MODE: master10 (one master, advert_int 10 ms), backup10 (one backup at
# 10 ms, keepalived master), idle (one master, advert_int 1 s).
# More binaries to alternate with: VIGIL_AB_MORE="BIN ..."; VIGIL_AB_SETTLE=S
# waits S seconds after the start instead of the mode's default (3-5 s),
# e.g. 25 to measure an idle daemon after its start's collections.
set -euo pipefail
MODE=$1 A=$2 B=$3 ROUNDS=${4:-3} SECS=${5:-20}
BINS=("$A" "$B" ${VIGIL_AB_MORE:-})
case $MODE in
master10) ival=0.01 peer=0 settle=3 ;;
backup10) ival=0.01 peer=1 settle=4 ;;
idle) ival=1 peer=0 settle=5 ;;
*) echo "mode: master10, backup10 or idle" >&2; exit 2 ;;
esac
settle=${VIGIL_AB_SETTLE:-$settle}
. "$(dirname "$0")/pairlab.sh"
pairlab_pair vfa
for i in 0 1; do
	prio=150; [ $i = 1 ] && prio=200
	cat >"$dir/k$i.conf" <<CONF
vrrp_instance VI_1 {
  interface vfa$i
  state BACKUP
  virtual_router_id 51
  version 3
  priority $prio
  advert_int $ival
  virtual_ipaddress {
    192.0.2.100/24
  }
}
CONF
done
perf=0
perf stat -x, -e raw_syscalls:sys_enter -- true >/dev/null 2>&1 && perf=1
# run time (ns) and time slices of every thread of pid
sched() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{t += $1; n += $3} END {printf "%.0f %.0f\n", t, n}'; }
# time slices per thread of pid: "tid slices" lines
perthread() { for t in /proc/"$1"/task/*; do echo "${t##*/} $(awk '{print $3}' "$t/schedstat")"; done; }
printf 'round\tbinary\tCPU %% of a core\twake-ups/s (per thread, in the window)\tsystem calls/s\n'
for r in $(seq "$ROUNDS"); do
	for bin in "${BINS[@]}"; do
		if [ "$peer" = 1 ]; then
			ip netns exec "$n1" keepalived -n -l -P -f "$dir/k1.conf" -p "$dir/pk.kpid" -r "$dir/pv.kpid" >"$dir/plog" 2>&1 &
			echo $! >"$dir/p.pid"
			sleep 1
		fi
		if [ "$bin" = keepalived ]; then
			ip netns exec "$n0" keepalived -n -l -P -f "$dir/k0.conf" -p "$dir/k.kpid" -r "$dir/v.kpid" >"$dir/log" 2>&1 &
			echo $! >"$dir/v.pid"
			sleep "$settle"
			pid=$(cat "$dir/v.kpid") # the VRRP child does the work
		else
			ip netns exec "$n0" "$bin" run -f "$dir/k0.conf" -control "$dir/s" -log-level warn >"$dir/log" 2>&1 &
			echo $! >"$dir/v.pid"
			pid=$!
			sleep "$settle"
		fi
		read -r t0 w0 < <(sched "$pid")
		perthread "$pid" >"$dir/th0"
		if [ "$perf" = 1 ]; then
			sys=$(perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -- sleep "$SECS" 2>&1 | awk -F, '/raw_syscalls/ {print $1}')
		else
			sleep "$SECS"
			sys=-
		fi
		read -r t1 w1 < <(sched "$pid")
		# wake-ups of each thread that had any, most first
		th=$(perthread "$pid" | awk 'NR == FNR {a[$1] = $2; next} {d = $2 - a[$1]; if (d > 0) print d}' "$dir/th0" - | sort -rn | paste -sd+)
		awk -v r="$r" -v b="$bin" -v dt=$((t1 - t0)) -v dw=$((w1 - w0)) -v s="$SECS" -v sys="$sys" -v th="$th" 'BEGIN {
			printf "%s\t%s\t%.2f%%\t%.2f (per thread: %s)\t%s\n", r, b, 100 * dt / (s * 1e9), dw / s, th, (sys == "-" ? "-" : sprintf("%.1f", sys / s))
		}'
		for f in v p; do
			[ -f "$dir/$f.pid" ] && { kill -INT "$(cat "$dir/$f.pid")" 2>/dev/null || true; wait "$(cat "$dir/$f.pid")" 2>/dev/null || true; }
		done
		rm -f "$dir"/*.pid "$dir"/*.kpid "$dir/s"
		sleep 1
	done
done
