#!/usr/bin/env bash
# Scale of the health checkers: 10,000 TCP_CHECKs at delay_loop 1 s against
# 100 listeners (a child process), run for DURATION (default 20s). Reports
# the CPU time of the checking process (getrusage) and the whole machine's
# busy time, next to a reference checker that makes the same handshakes
# with a new socket per check, in two topologies:
#
#   remote    (as root) the checker in one network namespace pinned to CPU 0,
#             the listeners in another behind a veth pair, their receive
#             path steered to CPU 1 with RPS and the listener process pinned
#             there: the real servers' kernels are other machines' work, as
#             on a real director. The target, < 25% of one core, is read here.
#   loopback  listeners on 127.0.0.11-20: the kernel runs both ends of every
#             handshake on the checker's account (servers' work included).
#
# Prints Markdown tables for docs/benchmarks.md.
#
#   bench/checkers.sh            # 20 s per topology
#   DURATION=60s bench/checkers.sh
#   STRICT=1 bench/checkers.sh   # exit non-zero when the target is missed
set -euo pipefail
cd "$(dirname "$0")/.."
P=vchk D=$P-dir R=$P-rs WORK=
dellab() {
	for ns in $D $R; do
		pids=$(ip netns pids "$ns" 2>/dev/null) || true
		[ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
	return 0
}
cleanup() {
	set +e
	dellab
	[ -n "$WORK" ] && rm -rf "$WORK"
	return 0
}
trap cleanup EXIT INT TERM

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
WORK=$(mktemp -d /tmp/vchk.XXXXXX)
go test -tags vigil_bench -c -o "$WORK/check.test" ./check
run() { "$@" -test.count=1 -test.v -test.timeout 10m -test.run '^TestScale$' | grep -v -e '^ok' -e '^PASS' -e '^=== RUN' -e '^--- PASS'; }
export VIGIL_BENCH_DURATION="${DURATION:-20s}" VIGIL_BENCH_STRICT="${STRICT:-0}"

if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	dellab # leftovers of a killed run
	for ns in $D $R; do ip netns add $ns; ip -n $ns link set lo up; done
	ip -n $D link add eth0 type veth peer name eth0 netns $R
	ip -n $D addr add 192.0.2.1/24 dev eth0
	addrs=
	for i in $(seq 11 20); do
		ip -n $R addr add 192.0.2.$i/24 dev eth0
		addrs=${addrs:+$addrs,}192.0.2.$i
	done
	ip -n $D link set eth0 up
	ip -n $R link set eth0 up
	ip netns exec $R sh -c 'echo 2 > /sys/class/net/eth0/queues/rx-0/rps_cpus'
	run env VIGIL_BENCH_TOPOLOGY="remote (checker on CPU 0, servers' kernel and listeners on CPU 1)" \
		VIGIL_BENCH_LISTEN_ADDRS=$addrs VIGIL_BENCH_CHILD_PREFIX="ip netns exec $R taskset -c 1" \
		ip netns exec $D taskset -c 0 "$WORK/check.test"
	dellab
else
	echo "remote topology skipped: needs root, iproute2, taskset and two CPUs"
fi
run env VIGIL_BENCH_TOPOLOGY="loopback (servers' kernel work charged to the checker)" "$WORK/check.test"
