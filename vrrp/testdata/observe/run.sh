#!/bin/bash
# Harness for keepalived-2.2.7-observed.md: run.sh NAME CONF PEER_SCRIPT (root). Writes /tmp/vrx/NAME.*
# (keepalived log, tcpdump, events); KADDR=192.0.2.3 moves keepalived off 192.0.2.1.
set -u
mkdir -p /tmp/vrx
name=$1 conf=$2 peer=$3
K=vrxk P=vrxp
ip netns del $K 2>/dev/null; ip netns del $P 2>/dev/null
ip netns add $K; ip netns add $P
ip -n $K link add eth0 type veth peer name eth1 netns $P
ip -n $K link set lo up; ip -n $P link set lo up
ip -n $K addr add ${KADDR:-192.0.2.1}/24 dev eth0; ip -n $P addr add 192.0.2.2/24 dev eth1
ip -n $K link set eth0 up; ip -n $P link set eth1 up
sleep 1
ip netns exec $P tcpdump -n -l -tt -i eth1 "ip proto 112 or arp" > /tmp/vrx/$name.tcpdump 2>/dev/null &
tp=$!
sleep 0.5
start=$(date +%s.%N)
echo "start $start" > /tmp/vrx/$name.events
ip netns exec $K keepalived -n -l -D -P -f $conf -p /tmp/vrx/$name.pid -r /tmp/vrx/$name.vpid -c /tmp/vrx/$name.cpid > /tmp/vrx/$name.log 2>&1 &
kp=$!
ip netns exec $P bash $peer >> /tmp/vrx/$name.events 2>&1
kill -TERM $kp; wait $kp
sleep 0.5; kill $tp; wait $tp 2>/dev/null
ip netns del $K; ip netns del $P
