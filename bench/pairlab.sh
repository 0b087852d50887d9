# Sourced by the benchmarks that run a pair of daemons on one veth between
# two network namespaces (bfd_cpu_ab.sh, footprint_ab.sh, bfd_gaps.sh,
# bfd_pause.sh).
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
