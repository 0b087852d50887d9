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
# measured and not taken (docs/benchmarks.md); `raw-thread`
# (bench/wakefloor/rawthread): vigil's advert thread alone (netio.Socket.Beat),
# and `raw-thread-hdr` the same writing its IPv4 header itself. VIGIL_CONC_PIN=CPU pins every
# thread of every process to CPU (taskset) once started. The windows
# start VIGIL_CONC_SETTLE seconds (default 30) after the starts: a vigil's
# first seconds carry its start's one-off work (the forced collection,
# the first MAC refresh).
# VIGIL_CONC_MODE=backup measures each one as the backup of a keepalived
# master (priority 200, advert_int 10 ms) on the other end of its veth,
# instead of as a master (the floors and uring-N do not take part).
# VIGIL_CONC_MODE=tcp or http measures #7's health-check rows side by
# side instead: each implementation is one master at advert_int 1 s and a
# virtual server whose three real servers (192.0.2.11-13, an nginx of its
# own in the pair's other namespace) it checks every second with
# TCP_CHECK or HTTP_GET (vigil binaries and keepalived only). keepalived
# runs whole, its checker beside its VRRP child, with bench/ipvsshim
# preloaded when the kernel has no IPVS (needs cc), and all three of its
# processes are measured, as bench/footprint.sh's check rows do.
# Per window and implementation: CPU (% of a core, from the summed
# /proc/PID/task/*/schedstat run time) and wake-ups (time slices) per
# second (and in the check modes the connections its real servers
# accepted, per second: its checks); then each one's median and its median
# microseconds per advert (per check in the check modes).
set -euo pipefail
WINDOWS=${1:-10} SECS=${2:-10}
shift 2 || true
IMPLS=("$@")
[ ${#IMPLS[@]} -gt 0 ] || IMPLS=(keepalived ./vigil)
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/pairlab.sh"
tag=${VIGIL_LAB_TAG:-x}
mode=${VIGIL_CONC_MODE:-master}
pairlab_init
check=
case $mode in
master | backup) ;;
tcp) check='TCP_CHECK {
      connect_timeout 1
    }' ;;
http) check='HTTP_GET {
      url {
        path /
        status_code 200
      }
      connect_timeout 1
    }' ;;
*)
	echo "VIGIL_CONC_MODE: master, backup, tcp or http, not $mode" >&2
	exit 2
	;;
esac
if [ -n "$check" ]; then
	for impl in "${IMPLS[@]}"; do
		case $impl in floor-* | uring-* | raw-thread*)
			echo "VIGIL_CONC_MODE=$mode runs vigil binaries and keepalived, not $impl" >&2
			exit 2
			;;
		esac
	done
fi
shim=()
if [ -n "$check" ] && [ ! -e /proc/net/ip_vs ]; then
	cc -O2 -shared -fPIC -o "$dir/ipvsshim.so" "$root/bench/ipvsshim/ipvsshim.c" -ldl
	shim=(env "LD_PRELOAD=$dir/ipvsshim.so")
fi
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
			fgo=()
			[ "$impl" = floor-goblock ] && fgo=(block)
			"$dir/floor-go" "${fgo[@]}" &
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
	raw-thread | raw-thread-hdr)
		[ -x "$dir/rawthread" ] || (cd "$root" && go build -o "$dir/rawthread" ./bench/wakefloor/rawthread)
		rt=()
		[ "$impl" = raw-thread-hdr ] && rt=(hdr)
		ip netns exec "$n0" "$dir/rawthread" "fc${k}0" "${rt[@]}" >"$dir/log$k" 2>&1 &
		pids[$k]=$!
		echo "${pids[$k]}" >"$dir/m$k.pid"
		continue
		;;
	esac
	ival=0.01
	[ -n "$check" ] && ival=1
	cat >"$dir/k$k.conf" <<CONF
vrrp_instance VI_1 {
  interface fc${k}0
  state BACKUP
  virtual_router_id 51
  version 3
  priority 150
  advert_int $ival
  virtual_ipaddress {
    192.0.2.100/24
  }
}
CONF
	if [ -n "$check" ]; then
		printf 'virtual_server 192.0.2.100 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n' >>"$dir/k$k.conf"
		for r in 11 12 13; do
			ip -n "$n1" addr add "192.0.2.$r/24" dev "fc${k}1"
			printf '  real_server 192.0.2.%s 80 {\n    weight 1\n    %s\n  }\n' "$r" "$check" >>"$dir/k$k.conf"
		done
		echo '}' >>"$dir/k$k.conf"
		cat >"$dir/ngx$k.conf" <<NGX
worker_processes 1;
pid $dir/ngx$k.nginxpid;
error_log $dir/ngxlog$k;
events {}
http {
	access_log off;
	server { listen 80; location / { return 200 "ok\n"; } }
}
NGX
		ip netns exec "$n1" nginx -c "$dir/ngx$k.conf" -g 'daemon off;' >>"$dir/ngxlog$k" 2>&1 &
		echo $! >"$dir/n$k.pid"
	fi
	if [ "$mode" = backup ]; then
		sed -e "s/fc${k}0/fc${k}1/" -e 's/priority 150/priority 200/' "$dir/k$k.conf" >"$dir/p$k.conf"
		ip netns exec "$n1" keepalived -n -l -P -f "$dir/p$k.conf" -p "$dir/p$k.kpid" -r "$dir/q$k.kpid" >"$dir/plog$k" 2>&1 &
		echo $! >"$dir/p$k.pid"
	fi
	if [ "$impl" = keepalived ] && [ -n "$check" ]; then
		ip netns exec "$n0" "${shim[@]}" keepalived -n -l -f "$dir/k$k.conf" -p "$dir/k$k.kpid" -r "$dir/r$k.kpid" \
			-c "$dir/c$k.kpid" >"$dir/log$k" 2>&1 &
		echo $! >"$dir/m$k.pid"
	elif [ "$impl" = keepalived ]; then
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
	if [ "${IMPLS[$k]}" = keepalived ] && [ -n "$check" ]; then
		# The whole process tree: parent, VRRP child and checker.
		pids[$k]="$(cat "$dir/k$k.kpid") $(cat "$dir/r$k.kpid") $(cat "$dir/c$k.kpid")"
	elif [ "${IMPLS[$k]}" = keepalived ]; then
		pids[$k]=$(cat "$dir/r$k.kpid") # the VRRP child does the work
	fi
	if [ -n "${VIGIL_CONC_PIN:-}" ]; then
		for p in ${pids[$k]}; do taskset -a -pc "$VIGIL_CONC_PIN" "$p" >/dev/null; done
	fi
done
# sched PID... prints the run time (ns) and time slices of every thread of
# the processes so far.
sched() {
	local p
	for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done | awk '{t += $1; n += $3} END {printf "%.0f %.0f\n", t, n}'
}
# opens K is the TCP connections the real servers of pair K have accepted
# so far (TcpPassiveOpens in its namespace): its checks, for the window's
# check rate, which shows that every implementation ran them all.
opens() { ip netns exec "fc${1}1$tag" awk '$1 == "Tcp:" && !h {h = 1; for (i = 1; i <= NF; i++) if ($i == "PassiveOpens") c = i; next} $1 == "Tcp:" {print $c}' /proc/net/snmp; }
if [ -n "$check" ]; then
	for k in "${!IMPLS[@]}"; do
		for p in ${pids[$k]}; do
			[ -d /proc/"$p" ] || {
				echo "${IMPLS[$k]} ($p) is not running:" >&2
				cat "$dir/log$k" >&2
				exit 1
			}
		done
	done
fi
printf 'window'
printf '\t%s' "${IMPLS[@]}"
printf '\n'
for w in $(seq "$WINDOWS"); do
	t0=() w0=() o0=()
	for k in "${!IMPLS[@]}"; do
		read -r "t0[$k]" "w0[$k]" < <(sched ${pids[$k]})
		[ -n "$check" ] && o0[$k]=$(opens "$k")
	done
	sleep "$SECS"
	line=$w
	for k in "${!IMPLS[@]}"; do
		read -r t1 w1 < <(sched ${pids[$k]})
		line+=$(awk -v dt=$((t1 - t0[k])) -v dw=$((w1 - w0[k])) -v s="$SECS" 'BEGIN {printf "\t%.3f%% %.1f/s", 100 * dt / (s * 1e9), dw / s}')
		if [ -n "$check" ]; then
			line+=$(awk -v d=$(($(opens "$k") - o0[k])) -v s="$SECS" 'BEGIN {printf " %.1f checks/s", d / s}')
		fi
	done
	echo "$line"
done | tee "$dir/out"
# A per cent of a core is 10 ms a second: 100 µs an advert at 100
# adverts a second, 3,333 µs a check at 3 checks a second.
per=100 unit=advert
[ -n "$check" ] && per=3333.3 unit=check
printf 'median'
for k in "${!IMPLS[@]}"; do
	cut -f$((k + 2)) "$dir/out" | awk '{sub("%", "", $1); print $1}' | sort -n |
		awk -v per=$per -v unit=$unit '{v[NR] = $1} END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "\t%.3f%% (%.1f us/%s)", m, m * per, unit}'
done
printf '\n'
