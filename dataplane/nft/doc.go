// Package nft programs vigil's L4 load balancing into nftables: what IPVS
// does for keepalived's virtual_server blocks, done with nft rules because
// this kernel has no IPVS (and kube-proxy's IPVS mode is deprecated).
//
// The data plane is declarative, like tailscale's router.Set: Apply takes a
// whole lb.Desired and reconciles vigil's own tables to it in one atomic
// `nft -f -` transaction (sigs.k8s.io/knftables). Applying the same state
// twice sends nothing. Only the tables named "vigil" (family inet for NAT
// and FNAT, family netdev for DR) are ever touched; Close removes them.
//
// # keepalived keywords and their nft form
//
// virtual_server IP PORT / fwmark N: a rule in chain inet vigil dispatch,
// hooked at prerouting (traffic through the director) and output (clients
// on the director), that jumps to the service's chain (named lb.Service.ID).
// A service whose VRRP instance is not MASTER (Active false) keeps its
// chains and maps but gets no dispatch rule, so a backup never answers.
//
// lb_kind (lvs_method):
//   - NAT: "dnat to" the chosen real server in the service chain. Real servers
//     route their replies through the director, where conntrack undoes the
//     DNAT; there is no masquerade. Chain real_fwd (forward hook) drops TCP
//     from a real server's address and port (sets natrs4, natrs6) that
//     conntrack finds invalid or new without a SYN: a stray reply it cannot
//     translate, which would reach the client from the real server's own
//     address (realGuardChain).
//   - FNAT (DPVS full NAT, laddr_group_name): the same DNAT, plus "snat to"
//     a local address of the pool in postrouting for flows whose original
//     destination is the service (ct original daddr/proto-dst), so real
//     servers reply to the director from anywhere. A contiguous pool is one
//     address range with an explicit port range (FNATPorts ports each);
//     otherwise numgen spreads flows over the addresses. Capacity per real
//     server is addresses × FNATPorts: see FNATCapacity. Chain local_in
//     (input hook) drops TCP to a local address (sets laddr4, laddr6) that
//     conntrack finds invalid or new without a SYN: a stray reply the
//     director cannot de-NAT, which its own stack would answer with a reset
//     that kills the real server's end of a flow another director carries
//     now (localGuardChain; docs/architecture.md, "Connection sync").
//   - DR: table netdev vigil, a base chain on the ingress hook of
//     lb.Service.Interface rewrites the source MAC (to the director's, so
//     that switches do not relearn the client's MAC on our port) and the
//     destination MAC (to the real server's) and "fwd"s the frame back out
//     of the same device. No conntrack exists at ingress, so the backend of
//     a flow's first packet comes from a Maglev table indexed by a jhash of
//     the flow: with a fixed seed, two directors with the same table pick
//     the same real server and a failover breaks no connection. Each
//     director then remembers the flows it forwards in a dynamic map (flow
//     to MAC, for lvs_timeouts; drFlows), so that a change of the table
//     does not move them, as IPVS keeps its connections; `vigil conns`
//     lists them (drConns).
//   - TUN is rejected by lb before it reaches here.
//
// lb_algo (lvs_sched), as lb turns it into lb.Selection:
//   - rr, wrr: "numgen inc mod W" through an interval map in which real
//     server i owns weight(i) consecutive slots; rr has every weight 1.
//   - lc, wlc, sed, nq: the same map with "numgen random": lb re-derives the
//     weights from conntrack counts (ConnCounts) and vigil renders them, so
//     flows are spread in proportion rather than by an exact
//     least-connection choice per flow; random rather than inc because
//     such weights run into the hundreds, and inc would hand that many
//     consecutive new flows to one real server.
//   - sh, dh (and sh-port): "jhash ip saddr|ip daddr mod W" through the
//     same weighted map.
//   - mh (and every DR service): "jhash <flow> mod M" through a map of the
//     M Maglev slots (lb.Service.Maglev).
//   - The jhash seed is fixed (hashSeed): nft would otherwise pick a random
//     seed per rule, and two directors (or one director after a restart)
//     would disagree.
//
// persistence_timeout and persistence_granularity: per real server a
// dynamic set of client prefixes (address & mask) with the timeout, and a
// rule per real server in front of the scheduler that sends a known client
// back to it; the real server's chain adds or refreshes the client on each
// new connection (nat chains see the first packet of a flow only, so the
// timeout counts from the client's last new connection, where IPVS counts
// from the end of its last connection). A real server that leaves Backends
// (removed or draining) loses its set, so its clients are rescheduled.
//
// Weight 0 (inhibit_on_failure, lb.Service.Draining): NAT and FNAT flows
// already established keep their conntrack NAT binding, so removing the
// real server from the maps stops new flows only. DR has no conntrack:
// the flows a director remembers keep going to a draining real server;
// for those it does not remember, vigil keeps the Maglev slots a draining
// real server owned in the previous Apply in a second map that non-SYN
// TCP packets use, and pins (dynamic set, client address and port) the new
// flows that hash to those slots after draining began, so that their later
// packets follow the new table. UDP over DR that the director does not
// remember cannot tell old flows from new ones and follows the new table
// at once.
//
// A service with no Backends rejects new flows (TCP reset, ICMP port
// unreachable) with NAT and FNAT and drops them with DR, rather than let
// them reach the director's own sockets.
//
// # Namespaces
//
// knftables runs the nft binary. To program another network namespace
// (tests, `vigil demo`) Config.NetNS names it, and every nft command is
// started from an OS thread that has entered that namespace: a child
// process inherits the namespace of the thread that forks it. knftables has
// no hook to wrap its command line (its executor is unexported), which
// rules out wrapping it in `ip netns exec`.
package nft
