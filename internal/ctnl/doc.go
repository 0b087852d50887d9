// Package ctnl speaks ctnetlink, the kernel's conntrack interface
// (linux/netfilter/nfnetlink_conntrack.h), on its own NETLINK_NETFILTER
// socket: dumps read without allocating per flow, filtered in the kernel
// when asked (CTA_FILTER), and creates, updates and deletes sent many to a
// sendmsg. Connection sync (ctsync: keepalived's lvs_sync_daemon) writes a
// master's flows into a backup's table with it; the data plane (nft) reads
// its NAT and FNAT flows and deletes the stale ones with it. Flows are
// ctflow Entries: the tuples, TCP state, status, timeout and mark.
package ctnl
