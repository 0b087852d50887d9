#!/usr/bin/env bash
# Transmit gaps on the wire of one 10 ms x 3 BFD session per implementation,
# side by side under saturation: for each BIN (a vigil binary, or the word
# keepalived for keepalived 2.2.7) a pair on its own veth between two
# network namespaces (192.0.2.1 and .2), all started together; after 8 s,
# BUSY busy loops (default 6) run for SECONDS while tcpdump on end 1 of
# each pair records both directions with kernel timestamps. Then, per
# sender, in the busy window: packets, the longest gap between two of its
# packets (what the peer's detection time is measured against), gaps over
# 20/30/50 ms, and Up -> not Up changes of the state it sent (false downs).
# Unlike a count of false downs this compares lateness itself, and
# keepalived's slow return to Up (1 s idle packets) does not bound it.
# Run as root:   bash bench/bfd_gaps.sh SECONDS BIN [BIN|keepalived]...
# To keep other sessions' tasks from taking the CPU from the benchmark's
# autogroup (a shared machine), run it in a session of its own with
# VIGIL_GAPS_GROUP_NICE=-10:   setsid bash bench/bfd_gaps.sh ...
set -euo pipefail
SECS=$1
shift
BUSY=${VIGIL_GAPS_BUSY:-6}
[ -z "${VIGIL_GAPS_GROUP_NICE:-}" ] || echo "$VIGIL_GAPS_GROUP_NICE" >/proc/self/autogroup
tag=${VIGIL_LAB_TAG:-x}
. "$(dirname "$0")/pairlab.sh"
pairlab_init
k=0
for bin in "$@"; do
	n0=vg${k}a$tag n1=vg${k}b$tag
	pairlab_add "$n0" "$n1" vg
	for i in 0 1; do
		ns=$n0
		[ $i = 1 ] && ns=$n1
		printf 'bfd_instance peer {\n  neighbor_ip 192.0.2.%d\n  source_ip 192.0.2.%d\n  min_rx 10\n  min_tx 10\n  multiplier 3\n}\n' \
			$((2 - i)) $((i + 1)) >"$dir/k$k$i.conf"
		pairlab_run "$bin" "$ns" $k$i
	done
	ip netns exec "$n0" tcpdump -i vg0 -n -s 96 -w "$dir/cap$k.pcap" udp port 3784 2>/dev/null &
	echo $! >"$dir/t$k.pid"
	k=$((k + 1))
done
sleep 8
bs=$(date +%s.%N)
loops=()
for _ in $(seq "$BUSY"); do
	sh -c 'while :; do :; done' &
	loops+=($!)
done
sleep "$SECS"
for p in "${loops[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
be=$(date +%s.%N)
sleep 1
for p in $(cat "$dir"/t*.pid); do kill "$p" 2>/dev/null || true; done
sleep 1
printf 'BFD 10 ms x 3, %s busy loops for %ss: per sender, in the busy window\n' "$BUSY" "$SECS"
printf 'implementation\tsender\tpackets\tlongest gap\tgaps >20 ms\t>30 ms\t>50 ms\tUp -> not Up\n'
k=0
for bin in "$@"; do
	tshark -r "$dir/cap$k.pcap" -T fields -e frame.time_epoch -e ip.src -e bfd.sta 2>/dev/null |
		awk -v bs="$bs" -v be="$be" -v bin="$bin" '
		$1 >= bs && $1 <= be {
			if ($2 in last) { g = $1 - last[$2]; if (g > max[$2]) max[$2] = g; g20[$2] += g > 0.02; g30[$2] += g > 0.03; g50[$2] += g > 0.05 }
			last[$2] = $1; n[$2]++
			if ($3 != 3 && prev[$2] == 3) downs[$2]++
			prev[$2] = $3
		}
		END { for (s in n) printf "%s\t%s\t%d\t%.1f ms\t%d\t%d\t%d\t%d\n", bin, s, n[s], max[s] * 1000, g20[s], g30[s], g50[s], downs[s] }'
	k=$((k + 1))
done
