#!/usr/bin/env bash
# Time `vigil check` against `keepalived -t` on the same generated
# 10,000-instance keepalived.conf (the one BenchmarkLoad10000Instances
# parses), in a network namespace where every interface it names exists, so
# neither program spends its time reporting missing interfaces. Run as root
# from the repository root: bash bench/config.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
ns=vcfgbench
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/vigil" ./cmd/vigil
VIGIL_WRITE_BIG_CONFIG="$tmp/raw.conf" go test -tags vigil_bench -count=1 -run TestWriteBigConfig ./config >/dev/null
printf '#!/bin/sh\nexit 0\n' > "$tmp/check.sh"
chmod 755 "$tmp/check.sh" "$tmp"
sed "s#/ok/check.sh#$tmp/check.sh#" "$tmp/raw.conf" > "$tmp/big.conf"
ip netns del "$ns" 2>/dev/null || true
ip netns add "$ns"
for i in $(seq 0 39); do
	ip -n "$ns" link add "eth$i" type veth peer name "bond$i"
	ip -n "$ns" link set "eth$i" up
	ip -n "$ns" link set "bond$i" up
done
run() { # name, then the command; prints the best of 3 wall-clock times in ms and the exit code
	local name=$1; shift
	local best=999999 code=0
	for _ in 1 2 3; do
		local t0 t1
		t0=$(date +%s%N)
		set +e; ip netns exec "$ns" "$@" >"$tmp/out" 2>&1; code=$?; set -e
		t1=$(date +%s%N)
		local ms=$(((t1 - t0) / 1000000))
		((ms < best)) && best=$ms
	done
	printf '%-28s %8d ms   exit %d   %d output lines\n' "$name" "$best" "$code" "$(wc -l <"$tmp/out")"
}
echo "keepalived.conf with 10,000 vrrp_instances ($(wc -c <"$tmp/big.conf") bytes), best of 3 runs:"
run "vigil check" "$tmp/vigil" check -q -f "$tmp/big.conf"
run "keepalived -t (2.2.7)" keepalived -t -f "$tmp/big.conf" -p "$tmp/k.pid" -r "$tmp/v.pid" -c "$tmp/c.pid"
