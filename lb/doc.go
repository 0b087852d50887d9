// Package lb is vigil's pure load-balancing model: the virtual servers of
// keepalived.conf with their real servers, health, weights, quorum and
// sorry server, and the schedulers and Maglev lookup table that decide
// where new flows go. Model.Desired turns it into a Desired value that
// dataplane/nft renders as one atomic nftables transaction.
//
// The package does no I/O and reads no clock: the daemon's loop steps a
// Model with what it learns (health verdicts, VRRP state, conntrack
// counts, neighbour MACs) and applies what Desired returns. Same state, same
// Desired, so re-applying is a no-op.
//
// # keepalived features
//
//   - real_server weight, and the dynamic weight of MISC_CHECK misc_dynamic
//     (SetHealth's weight argument).
//   - A failed real server leaves the pool; with inhibit_on_failure it
//     stays with weight 0 (Service.Draining): established flows finish,
//     no new ones arrive. A live server with weight 0 drains the same way.
//   - uthreshold/lthreshold: a server over its upper connection threshold
//     (from the conntrack counts the daemon passes) drains until it falls
//     below the lower one, 3/4 of the upper when unset, as ipvsadm
//     documents. Overload does not touch the quorum.
//   - quorum and hysteresis: the quorum is lost when the total weight of
//     live real servers falls below quorum − hysteresis (or to 0), and
//     regained when it reaches quorum + hysteresis. Each transition is an
//     Event for the daemon to run quorum_up/quorum_down; omega's shutdown
//     notifications come from Model.Shutdown.
//   - sorry_server: while the quorum is lost it replaces the whole pool
//     (real servers with inhibit_on_failure drain at weight 0); with
//     sorry_server_inhibit it stays at weight 0 while the quorum holds.
//     Without a sorry server a lost quorum changes nothing but the event.
//   - persistence_timeout and persistence_granularity (carried to the
//     data plane as an affinity timeout and prefix length); port 0
//     (all-ports) services, allowed only when persistent, as in keepalived.
//   - lb_kind NAT, DR and DPVS's FNAT with local_address_group; fwmark
//     services. virtual_server_group is expanded by the daemon.
//
// alpha is split: the checker (package check) starts an alpha server as
// failed and reports its first success; RealServerConfig.Alpha only makes
// the model start that server down, so that the start raises no quorum
// event. Likewise the daemon aggregates several checkers of one server
// into one SetHealth verdict.
//
// # Schedulers as data
//
// nftables has no IPVS schedulers; each becomes a Selection, a Hash and
// weights:
//
//   - rr: numgen over the live servers, weight 1 each; wrr: numgen over
//     weighted ranges.
//   - sh: a hash of the source address (sh-port: and port) over weighted
//     ranges; dh: of the destination address. lblc/lblcr map to dh (their
//     overload escape is dropped).
//   - mh: the Maglev table (below), hashed on the source address (mh-port:
//     and port).
//   - fo: only the highest-weight live server takes new flows (the others
//     drain). ovf: the highest-weight server whose connection count is
//     still below its weight, else the highest.
//   - lc, wlc, sed, nq, twos: the data plane cannot count connections per
//     packet, so the model approximates. The daemon reads conntrack every
//     few seconds and passes the count per backend (Model.SetConnCounts);
//     each backend then gets a share of new flows proportional to
//     w²/(c+w), that is its weight times 1/(load+1) with load = c/w (lc:
//     w = 1), scaled so the largest is 256, at least 1. At equal loads
//     that is plain wrr; a new or idle server soaks up traffic while a
//     loaded one still gets a trickle; and in steady state the loads
//     settle proportional to the weights, which is what wlc aims at
//     (tested by simulation). IPVS's strict "pick the minimum" cannot be
//     copied: between two refreshes it would send every new flow to one
//     server. nq gives busy servers weight 1 while any server is idle;
//     sed and twos are treated as wlc. The arithmetic is exact integers
//     so that two directors derive the same weights.
//     Until counts arrive the configured weights are used (lc: equal).
//
// DR directors share no per-flow state (each remembers only the flows it
// forwarded, Service.FlowTimeout), so a flow's first packet must find the
// same backend on any of them from its headers alone: every DR service
// selects through a Maglev table, keyed by the scheduler's hash
// when it has one, the client address when persistent, the whole flow
// otherwise; the weights above decide each backend's share of the table.
//
// # Maglev
//
// MaglevTable implements the lookup table of Eisenbud et al., "Maglev: A
// Fast and Reliable Software Network Load Balancer" (NSDI 2016), section
// 3.4, with weights honoured by weighted turns (see maglev.go). Its
// properties, tested: shares proportional to weights within one entry
// plus N·w/W; removing (or adding) one of N backends moves its 1/N of the
// table and at most 10% (0.9% on average) of the entries of the backends
// that stay, at the default sizes (MaglevSizeFor); two models with the
// same backends build identical tables.
package lb
