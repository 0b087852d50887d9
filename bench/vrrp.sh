#!/usr/bin/env bash
# Side-by-side VRRP comparison of vigil and keepalived 2.2.7 in namespace
# labs: client-visible failover outage (median of 7 trials) and resources.
# Run as root from the repository root: bash bench/vrrp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
go test -tags vigil_bench -count=1 -v -timeout 20m -run 'TestFailoverOutage|TestResources' ./bench/ 2>&1 |
	grep -v '^=== RUN\|^--- PASS\|^PASS$'
