#!/usr/bin/env bash
# False failovers under CPU saturation (issue #8): a vigil pair and a
# keepalived pair at advert_int 10 ms share a segment while 6 busy loops
# run for 60 s; 5 runs; prints one table. Run as root from the repository
# root on an otherwise quiet machine:
#   bash bench/stall.sh
# VIGIL_BENCH_STALL_RUNS, VIGIL_BENCH_STALL_SECONDS, VIGIL_BENCH_STALL_HOGS
# change the runs, their length and the number of busy loops.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -tags vigil_bench -count=1 -v -timeout 60m -run 'TestStallFalseFailovers' ./bench/ 2>&1 |
	grep -v '^=== RUN\|^--- PASS\|^PASS$\|^ok '
