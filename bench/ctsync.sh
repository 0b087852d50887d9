#!/usr/bin/env bash
# Connection sync end to end (issue 9): two vigil directors with
# lvs_sync_daemon (HMAC on), 10,000 and 100,000 established flows on the
# master, then new flows at rising rates; whether the backup holds every
# flow a second after each burst, the sync lag, and the CPU of both vigil
# processes. Sizes: VIGIL_BENCH_SYNC_SIZES=10000,100000. Run as root from
# the repository root:
#   bash bench/ctsync.sh
set -euo pipefail
cd "$(dirname "$0")/.."
go test -tags vigil_bench -count=1 -v -timeout 20m -run 'TestConnSyncLoad' ./bench/ 2>&1 |
	grep -v '^=== RUN\|^--- PASS\|^PASS$\|level='
