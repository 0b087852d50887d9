#!/usr/bin/env bash
# Footprint of vigil beside keepalived 2.2.7 (issue #7): RSS, CPU and
# wake-ups per second for 1 master at 10 ms, an idle master at 1 s, 100 and
# 1,000 masters at 1 s, and a virtual server with health checks; prints one
# table. Also the binary's size. Each configuration runs 25 s before its
# window (past vigil's start), so a run takes about 10 minutes. Run as
# root from the repository root:
#   bash bench/footprint.sh            (VIGIL_BENCH_WINDOW=30 for longer windows)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
# As `make deb` builds the binaries it ships, and as the benchmark runs them.
CGO_ENABLED=0 go build -trimpath -o "$dir/" ./cmd/vigil ./cmd/vigil-bgp ./cmd/vigil-tools
echo "vigil binary: $(stat -c %s "$dir/vigil") bytes, vigil-bgp (started only for bgp_instance blocks): $(stat -c %s "$dir/vigil-bgp") bytes, vigil-tools (vigil doctor and demo): $(stat -c %s "$dir/vigil-tools") bytes ($(go version | awk '{print $3}'), CGO_ENABLED=0 -trimpath, as packaged); keepalived: $(stat -c %s "$(command -v keepalived)") bytes (dynamically linked)"
rm -rf "$dir"
go test -tags vigil_bench -count=1 -v -timeout 30m -run 'TestFootprint' ./bench/ 2>&1 |
	grep -v '^=== RUN\|^--- PASS\|^PASS$\|^ok '
