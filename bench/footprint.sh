#!/usr/bin/env bash
# Footprint of vigil beside keepalived 2.2.7 (issue #7): RSS, CPU and
# wake-ups per second for 1 master at 10 ms, an idle master at 1 s, 100 and
# 1,000 masters at 1 s, and a virtual server with health checks; prints one
# table. Also the binary's size. Run as root from the repository root:
#   bash bench/footprint.sh            (VIGIL_BENCH_WINDOW=30 for longer windows)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/vigil
go build -o "$bin" ./cmd/vigil
echo "vigil binary: $(stat -c %s "$bin") bytes ($(go version | awk '{print $3}'), default build); keepalived: $(stat -c %s "$(command -v keepalived)") bytes (dynamically linked)"
rm -rf "$(dirname "$bin")"
VIGIL_BENCH=1 go test -count=1 -v -timeout 30m -run 'TestFootprint' ./bench/ 2>&1 |
	grep -v '^=== RUN\|^--- PASS\|^PASS$\|^ok '
