// Package doctor diagnoses the ways a VRRP deployment ends in split brain or
// silently stops protecting its addresses, and says the cause in plain
// words: a firewall dropping IP protocol 112, multicast that never arrives,
// another router reusing the VRID, adverts dropped for a wrong password,
// TTL, checksum mode or interval, a host that stalled, rp_filter or ARP
// settings that break DR and VMACs, and configuration traps such as
// nopreempt or unicast_src_ip without peers.
//
// keepalived only logs these conditions, one line at a time; doctor looks at
// all the evidence at once. The evidence is an Input: the daemon's status
// (twice, around a short capture, so counters are seen moving), the parsed
// keepalived.conf, what a passive capture heard on each VRRP interface, both
// on the wire and as delivered to a VRRP socket on this host (the difference
// is what the host itself dropped), and host facts behind the small Facts
// interface (firewall dumps, /proc values, local addresses, who answers ARP
// for a VIP).
//
// Every check is a pure function of the Input with the same shape, so each
// is table-tested with synthetic inputs; only Gather (Linux) touches the
// host. Each Finding carries a stable code (VD101, ...) documented in
// docs/doctor.md: what it means, how it is detected, how to fix it.
package doctor
