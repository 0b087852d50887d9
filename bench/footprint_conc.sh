#!/usr/bin/env bash
# CPU of one VRRP master at advert_int 10 ms (issue #7), for several
# implementations running at the same time, each on its own veth pair
# (bench/pairlab.sh), measured over the same windows. footprint_ab.sh
# alternates binaries in rounds; on a machine whose load moves from one
# minute to the next (a shared VM), running them side by side compares them
# under the same load, window by window.
#
# Run as root, from the repository root:
#   bash bench/footprint_conc.sh [WINDOWS] [SECONDS] IMPL...
# IMPL: a vigil binary, `keepalived` (2.2.7; its VRRP child is measured),
# `floor-go` or `floor-c`: the wake-up floors of bench/wakefloor, a 10 ms
# timerfd deadline waited for as vigil's loop waits (Go, parked in the
# runtime's poller) or as keepalived's does (C, epoll_wait), with nothing
# else done (built here; floor-c needs cc); `floor-goblock`: the Go floor
# on a locked thread blocked in epoll_pwait (measured, not taken);
# `uring-N` (bench/wakefloor/uring):
# adverts queued N at a time in the kernel through io_uring, the design
# measured and not taken (docs/benchmarks.md). VIGIL_CONC_PIN=CPU pins every
# thread of every process to CPU (taskset) once started. The windows
# start VIGIL_CONC_SETTLE seconds (default 30) after the starts: a vigil's
# first seconds carry its start's one-off work (the forced collection,
# the first MAC refresh).
# VIGIL_CONC_MODE=backup measures each one as the backup of a keepalived
# master (priority 200, advert_int 10 ms) on the other end of its veth,
# instead of as a master (the floors and uring-N do not take part).
# Per window and implementation: CPU (% of a core, from the summed
# /proc/PID/task/*/schedstat run time) and wake-ups (time slices) per
# second; then each one's median and its median microseconds per advert.
set -euo pipefail
WINDOWS=${1:-10} SECS=${2:-10}
shift 2 || true
IMPLS=("$@")
[ ${#IMPLS[@]} -gt 0 ] || IMPLS=(keepalived ./vigil)
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/pairlab.sh"
tag=${VIGIL_LAB_TAG:-x}
pairlab_init
pids=()
for k in "${!IMPLS[@]}"; do
	impl=${IMPLS[$k]}
	case $impl in
	floor-go | floor-goblock | floor-c)
		if [ "$impl" = floor-c ]; then
			cc -O2 -o "$dir/floor-c" "$root/bench/wakefloor/c/floor.c"
			"$dir/floor-c" &
		else
			[ -x "$dir/floor-go" ] || (cd "$root" && go build -o "$dir/floor-go" ./bench/wakefloor)
			mode=()
			[ "$impl" = floor-goblock ] && mode=(block)
			"$dir/floor-go" "${mode[@]}" &
		fi
		pids[$k]=$!
		echo "${pids[$k]}" >"$dir/f$k.pid"
		continue
		;;
	esac
	n0=fc${k}0$tag n1=fc${k}1$tag
	pairlab_add "$n0" "$n1" "fc$k"
	case $impl in
	uring-*)
		[ -x "$dir/uring" ] || (cd "$root" && go build -o "$dir/uring" ./bench/wakefloor/uring)
		ip netns exec "$n0" "$dir/uring" "fc${k}0" "${impl#uring-}" >"$dir/log$k" 2>&1 &
		pids[$k]=$!
		echo "${pids[$k]}" >"$dir/m$k.pid"
		continue
		;;
	esac
	cat >"$dir/k$k.conf" <<CONF
vrrp_instance VI_1 {
  interface fc${k}0
  state BACKUP
  virtual_router_id 51
  version 3
  priority 150
  advert_int 0.01
  virtual_ipaddress {
    192.0.2.100/24
  }
}
CONF
	if [ "${VIGIL_CONC_MODE:-master}" = backup ]; then
		sed -e "s/fc${k}0/fc${k}1/" -e 's/priority 150/priority 200/' "$dir/k$k.conf" >"$dir/p$k.conf"
		ip netns exec "$n1" keepalived -n -l -P -f "$dir/p$k.conf" -p "$dir/p$k.kpid" -r "$dir/q$k.kpid" >"$dir/plog$k" 2>&1 &
		echo $! >"$dir/p$k.pid"
	fi
	if [ "$impl" = keepalived ]; then
		ip netns exec "$n0" keepalived -n -l -P -f "$dir/k$k.conf" -p "$dir/k$k.kpid" -r "$dir/r$k.kpid" >"$dir/log$k" 2>&1 &
		echo $! >"$dir/m$k.pid"
	else
		ip netns exec "$n0" "$impl" run -f "$dir/k$k.conf" -control "$dir/s$k" -log-level warn >"$dir/log$k" 2>&1 &
		echo $! >"$dir/m$k.pid"
		pids[$k]=$!
	fi
done
sleep "${VIGIL_CONC_SETTLE:-30}"
for k in "${!IMPLS[@]}"; do
	if [ "${IMPLS[$k]}" = keepalived ]; then
		pids[$k]=$(cat "$dir/r$k.kpid") # the VRRP child does the work
	fi
	if [ -n "${VIGIL_CONC_PIN:-}" ]; then
		taskset -a -pc "$VIGIL_CONC_PIN" "${pids[$k]}" >/dev/null
	fi
done
sched() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{t += $1; n += $3} END {printf "%.0f %.0f\n", t, n}'; }
printf 'window'
printf '\t%s' "${IMPLS[@]}"
printf '\n'
for w in $(seq "$WINDOWS"); do
	t0=() w0=()
	for k in "${!IMPLS[@]}"; do read -r "t0[$k]" "w0[$k]" < <(sched "${pids[$k]}"); done
	sleep "$SECS"
	line=$w
	for k in "${!IMPLS[@]}"; do
		read -r t1 w1 < <(sched "${pids[$k]}")
		line+=$(awk -v dt=$((t1 - t0[k])) -v dw=$((w1 - w0[k])) -v s="$SECS" 'BEGIN {printf "\t%.3f%% %.1f/s", 100 * dt / (s * 1e9), dw / s}')
	done
	echo "$line"
done | tee "$dir/out"
printf 'median'
for k in "${!IMPLS[@]}"; do
	cut -f$((k + 2)) "$dir/out" | awk '{sub("%", "", $1); print $1}' | sort -n |
		awk '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "\t%.3f%% (%.1f us/advert)", m, m * 100}'
done
printf '\n'
