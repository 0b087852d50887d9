# Sourced by the benchmarks that run a pair of daemons on one veth between
# two network namespaces (bfd_cpu_ab.sh, footprint_ab.sh, bfd_gaps.sh,
# bfd_pause.sh), and of those that run many masters in one (rss_ab.sh,
# takeover_ab.sh: pairlab_masters).
#
# pairlab_init makes the work directory $dir and, for the script's exit,
# kills the processes whose pid files (*.pid) are in it, deletes the
# namespaces pairlab_add made and removes the directory.
# pairlab_add N0 N1 IF joins namespaces N0 and N1 by a veth, IF0 in N0 with
# 192.0.2.1/24 and IF1 in N1 with 192.0.2.2/24, both up, lo up in each.
# pairlab_pair P is both for a script's one pair: namespaces $n0 (P0 and
# $VIGIL_LAB_TAG, so that two developers' runs never meet) and $n1 (P1...)
# joined by IF P.
pairlab_ns=()
pairlab_init() {
	dir=$(mktemp -d)
	trap pairlab_cleanup EXIT
}
pairlab_cleanup() {
	local p n
	for p in $(cat "$dir"/*.pid 2>/dev/null); do kill "$p" 2>/dev/null || true; done
	sleep 1 # the killed daemons leave their namespaces
	for n in "${pairlab_ns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	rm -rf "$dir"
}
pairlab_pair() {
	local tag=${VIGIL_LAB_TAG:-x}
	n0=${1}0$tag n1=${1}1$tag
	pairlab_init
	pairlab_add "$n0" "$n1" "$1"
}
pairlab_add() {
	local n0=$1 n1=$2 ifp=$3 i ns
	pairlab_ns+=("$n0" "$n1")
	ip netns add "$n0"
	ip netns add "$n1"
	ip link add "${ifp}0" netns "$n0" type veth peer name "${ifp}1" netns "$n1"
	for i in 0 1; do
		ns=$n0
		[ $i = 1 ] && ns=$n1
		ip -n "$ns" addr add 192.0.2.$((i + 1))/24 dev "$ifp$i"
		ip -n "$ns" link set "$ifp$i" up
		ip -n "$ns" link set lo up
	done
}

# pairlab_run BIN NS ID runs BIN on $dir/kID.conf in namespace NS in the
# background: a vigil binary (warnings only, its control socket $dir/sID)
# or the word keepalived (2.2.7 with its BFD child, its pid files
# $dir/{k,r,c,b}ID.kpid). Its output goes to $dir/logID, its pid to
# $dir/vID.pid and $!.
pairlab_run() {
	local bin=$1 ns=$2 id=$3
	if [ "$bin" = keepalived ]; then
		ip netns exec "$ns" keepalived -n -l -D -f "$dir/k$id.conf" -p "$dir/k$id.kpid" -r "$dir/r$id.kpid" \
			-c "$dir/c$id.kpid" -b "$dir/b$id.kpid" >"$dir/log$id" 2>&1 &
	else
		ip netns exec "$ns" "$bin" run -f "$dir/k$id.conf" -control "$dir/s$id" -log-level warn >"$dir/log$id" 2>&1 &
	fi
	echo $! >"$dir/v$id.pid"
}

# pairlab_masters P N [LINE] is the lab of bench/footprint.sh's masters
# rows, for the scripts that measure N VRRPv3 masters (rss_ab.sh,
# takeover_ab.sh): namespace $n0 (P0 and the tag) with eth0-eth3, veths
# whose other ends (p0-p3) are in a silent $n1 (P1...), eth0-eth2 with
# IPv4 and every one with IPv6 addresses ending in .254 and ::254; and
# $dir/k.conf with N instances at advert_int 1 s, priority 150, 250 VRIDs
# on each interface, one VIP each (eth3's IPv6), LINE (e.g. "  no_accept")
# added to each. It waits 2 s for the IPv6 link-local addresses.
pairlab_masters() {
	local tag=${VIGIL_LAB_TAG:-x} n=$2 line=${3:-} i k ifi vrid vip
	local subs=(203.0.113 198.51.100 192.0.2)
	n0=${1}0$tag n1=${1}1$tag
	pairlab_init
	pairlab_ns+=("$n0" "$n1")
	ip netns add "$n0"
	ip netns add "$n1"
	for i in 0 1 2 3; do
		ip link add "eth$i" netns "$n0" type veth peer name "p$i" netns "$n1"
		ip -n "$n0" link set "eth$i" up
		ip -n "$n1" link set "p$i" up
		[ "$i" -lt 3 ] && ip -n "$n0" addr add "${subs[$i]}.254/24" dev "eth$i"
		ip -n "$n0" addr add "2001:db8:0:$i::254/64" dev "eth$i" nodad
	done
	ip -n "$n0" link set lo up
	for ((k = 0; k < n; k++)); do
		ifi=$((k / 250)) vrid=$((k % 250 + 1))
		if [ "$ifi" -lt 3 ]; then vip="${subs[$ifi]}.$vrid/24"; else vip=$(printf '2001:db8:0:3::%x/64' "$vrid"); fi
		printf 'vrrp_instance VI_%d {\n  interface eth%d\n  state BACKUP\n  virtual_router_id %d\n  version 3\n  priority 150\n  advert_int 1\n%s  virtual_ipaddress {\n    %s\n  }\n}\n' \
			"$k" "$((ifi < 3 ? ifi : 3))" "$vrid" "${line:+$line
}" "$vip"
	done >"$dir/k.conf"
	sleep 2
}
