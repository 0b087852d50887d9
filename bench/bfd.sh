#!/usr/bin/env bash
# BFD benchmarks (issue #11), vigil against keepalived 2.2.7 in namespace
# labs, same run: outage with bfd_takeover at advert_int 1 s (median of 5),
# false BFD downs under 6 busy loops (VIGIL_BENCH_BUSY seconds, 60) at
# 50 ms and 10 ms x 3 with the CPU of one session, and BFD's timer lateness
# while the daemon reloads. Run as root from the repository root:
#   bash bench/bfd.sh
set -euo pipefail
cd "$(dirname "$0")/.."
go test -tags vigil_bench -count=1 -v -timeout 30m -run 'TestBFDOutage|TestBFDFalseDowns|TestBFDLoopLoad' ./bench/ 2>&1 |
	grep -v '^=== RUN\|^--- PASS\|^PASS$'
