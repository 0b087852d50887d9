#!/usr/bin/env bash
# Scale of the health checkers: 10,000 TCP_CHECKs at delay_loop 1 s against
# 100 loopback listeners (a child process), run for DURATION (default 20s),
# CPU time of the checking process from getrusage, next to the floor of the
# same connects made with bare syscalls. Prints a Markdown table for
# docs/benchmarks.md. The target is < 25% of one core.
#
#   bench/checkers.sh            # 20 s
#   DURATION=60s bench/checkers.sh
#   STRICT=1 bench/checkers.sh   # exit non-zero when the target is missed
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# $(date -u +%FT%TZ) $(uname -r), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
VIGIL_BENCH=1 VIGIL_BENCH_DURATION="${DURATION:-20s}" VIGIL_BENCH_STRICT="${STRICT:-0}" \
	go test -count=1 -v -timeout 10m -run '^TestScale$' ./check/ | grep -v -e '^ok' -e '^PASS' -e '^=== RUN' -e '^--- PASS'
