// Package vrrp is the VRRP protocol engine: one Instance per vrrp_instance
// of keepalived.conf, and Group for a vrrp_sync_group. It implements the
// state machine of RFC 5798 section 6 (version 3, IPv4 and IPv6) and of
// RFC 3768 section 6 (version 2), with the receive checks of RFC 5798
// section 7.1 and the behaviour of keepalived 2.2.7 where the RFC leaves a
// choice.
//
// # The engine is a value you step
//
// Like etcd raft's RawNode, an Instance owns no socket, clock, goroutine or
// source of randomness. Its caller, the daemon's event loop (or the
// simulated LAN of package vrrp/sim), drives it:
//
//	inst, err := vrrp.New(cfg, now)       // startup: BACKUP (MASTER for an owner with state MASTER)
//	for {
//		rd := inst.Ready()               // what to do now; clears it
//		// 1. add rd.AddAddrs (VIPs), 2. announce rd.Announce (GARP/NA),
//		// 3. send rd.Adverts, 4. delete rd.DelAddrs, 5. log rd.Transitions
//		// and run notify scripts, then wait for a packet, an event or rd.Next.
//		select {
//		case p := <-packets:
//			inst.Step(now, vrrp.Packet{Data: p.Payload, Src: p.Src, Dst: p.Dst, TTL: p.TTL})
//		case <-timer(rd.Next):
//			inst.Advance(now)
//		}
//	}
//
// Time is an argument: every method that can fire a timer takes the current
// time, and timers are plain arithmetic on it (section 6.1's Skew_Time and
// Master_Down_Interval, see SkewTime and MasterDownInterval). Step first
// runs the timers that are due, so a caller that steps without advancing
// gets the same result as one that advances first. The engine only
// compares times (Before, After, Sub): a monotonic clock is expected but
// not required.
//
// # Receiving an advert
//
// Packet carries the raw VRRP message (the IP payload) and what the IP
// layer knew: source, destination and TTL or hop limit. The engine applies
// keepalived's receive checks in keepalived's order, and a packet that
// fails one is dropped, counted under its DropReason (Status().Counters)
// and reported by Step as a *DropError (errors.Is(err, ErrDropped)); a
// dropped packet never changes state or timers. The order is: length and
// family; VRID; TTL or hop limit 255 (RFC 5798 section 7.1; for unicast
// only with Config.CheckUnicastTTL); version; version 2 auth type and
// password (constant-time); version 2 interval (RFC 3768 section 7.1: a
// different Adver Int is an error); type; address count (the length's,
// and ours); checksum; unicast/multicast fits the instance; every VIP of
// ours is in the advert; source is a known unicast peer
// (Config.CheckUnicastSrc); our own advert.
//
// RFC 5798 section 7.1 only says a receiver MAY verify the address list
// and SHOULD log a mismatch. keepalived 2.2.7 drops such adverts, vrrp_strict
// or not (observed: "received an unexpected ip number count 2, expected 1!"
// and "ip address associated with VRID 51 not present in MASTER advert",
// after which the backup takes over), so routers whose VIP lists differ
// both become master. vigil does the same and counts DropAddrCount and
// DropVIPs, so that the daemon can log and the doctor can report the
// misconfiguration. A version 3 interval other than ours is accepted
// (and adopted by a backup) and noted once in Ready.Notes, as keepalived
// logs "advertisement interval updated".
//
// Then, per RFC 5798 sections 6.4.2 and 6.4.3 with keepalived's additions:
//
//   - Backup: priority 0 sets the Master_Down_Timer to Skew_Time. Otherwise,
//     with nopreempt, a priority at least our own, or a preempt delay still
//     pending, the advert is accepted: a version 3 backup adopts the
//     master's interval (section 6.4.2) and the Master_Down_Timer restarts.
//     A lower priority from a preempting backup is ignored, so the timer
//     runs out and the backup takes over.
//   - Master: priority 0 makes us send an advert at once. A higher priority,
//     or an equal one from a higher primary address (compared as unsigned
//     integers, section 6.4.3), makes us a backup and releases the VIPs. A
//     lower priority keeps us master; like keepalived we answer with an
//     advert at once (unless Config.LowerPrioNoAdvert) and announce the VIPs
//     again (GARP.LowerPrioRepeat), so that a healed split brain converges
//     and stale ARP caches are fixed quickly.
//
// # Choices between the RFC and keepalived
//
// Where the RFC leaves a choice or keepalived departs from it, vigil does
// what keepalived 2.2.7 was seen doing on the wire and in its log; the
// experiments are in testdata/keepalived-2.2.7-observed.md. Besides the
// receive checks and the lower priority answer above:
//
//   - Skew_Time is computed exactly, (256−Priority)/256 of a second for
//     version 2 and (256−Priority)×Master_Adver_Interval/256 for version
//     3, in nanoseconds, rather than truncated to whole centiseconds. This
//     is what keepalived does (it counts in microseconds) and it keeps
//     adjacent priorities (100 and 101) apart, where centisecond truncation
//     would give them the same Master_Down_Interval.
//   - RFC 5798 section 6.4.1 sends priority 255 (the address owner)
//     straight to MASTER on Startup. keepalived 2.2.7 does so only when the
//     instance is also configured `state MASTER`, and only when the process
//     starts: with `state BACKUP`, or leaving FAULT, an owner waits for its
//     Master_Down_Timer like any backup (observed). vigil follows
//     keepalived, so the same keepalived.conf behaves the same; `state
//     MASTER` has no other effect (a non-owner starts in BACKUP).
//   - Leaving MASTER for FAULT because of tracking (the interface is still
//     up) sends a priority 0 advert first, as keepalived does, so that a
//     backup takes over after Skew_Time instead of Master_Down_Interval.
//   - preempt_delay: a preempting backup that sees a lower priority master
//     keeps accepting its adverts for PreemptDelay, counted from the first
//     such advert after startup or after it last saw a master at least as
//     good; after that it discards them and takes over when the
//     Master_Down_Timer runs out. This is what keepalived 2.2.7 was
//     observed doing ("start preempt delay", then "received lower priority
//     (100) advert ... discarding" and a takeover one Master_Down_Interval
//     after the last advert accepted).
//
// # Tracking and faults
//
// Tracking carries the sum of the weights of the failing (or succeeding)
// trackers and whether one with weight 0 has failed. The effective priority
// is the base priority plus that delta, clamped to 1..254
// (EffectivePriority); priority 255 never changes. A fault, an interface
// down or a sync group member in fault puts the instance in FAULT, which
// releases the VIPs; when every cause has cleared it returns to BACKUP.
//
// # Sync groups
//
// A Group ties Instances together as keepalived's vrrp_sync_group does:
// when one member goes to FAULT all do, and they leave it together when no
// member has a fault of its own; when one leaves MASTER for BACKUP the
// others follow; and a member whose Master_Down_Timer expires goes MASTER
// only when every other member wants to as well (keepalived prefers BACKUP
// to avoid thrashing), and then all go together. The members are still
// stepped one by one; a step on one may change the others, so the caller
// collects Ready from every member after each step.
package vrrp
