// Package netio is vigil's I/O edge for VRRP: the raw sockets adverts travel
// on, and the link-layer announcements a new master makes for its addresses.
//
// It is the only part of the VRRP stack that touches the kernel. The engine
// (package vrrp) hands over marshalled adverts and "announce these addresses"
// actions; netio sends and receives them exactly as RFC 5798 section 5.1
// requires and as keepalived 2.2.7 does on the wire:
//
//   - Conn is a raw IP socket for protocol 112 on one interface and one
//     address family, bound to the interface (SO_BINDTODEVICE) so that
//     instances on different links never see each other's adverts. It joins
//     224.0.0.18 or ff02::12 only when asked, sends with TTL / hop limit 255
//     (RFC 5798 sections 5.1.1.3 and 5.1.2.3, multicast and unicast alike)
//     and DSCP CS6 as keepalived does, from the source address the caller
//     chooses (IP_PKTINFO / IPV6_PKTINFO), does not loop its own multicast
//     back, and reports for every packet received the TTL / hop limit,
//     destination and interface the receive checks of RFC 5798 section 7.1
//     need. Socket, the daemon's, sends the same packets; once the kernel
//     has accepted a source on a kernel-built IPv4 send, it writes the
//     IPv4 header itself for that source for up to a second (an
//     IPPROTO_RAW socket beside it), the kernel's work of building the
//     header and checking the source saved on every other advert, as
//     keepalived writes its headers.
//   - GratuitousARP and UnsolicitedNA build the frames that move the
//     neighbours' caches to the new master: an ARP Announcement (RFC 5227
//     section 3, on the RFC 826 packet format) or its reply form (RFC 2002
//     section 4.6), and an unsolicited Neighbor Advertisement with the
//     Override flag (RFC 4861 sections 4.4 and 7.2.6). ParseARP and ParseNA
//     decode such frames; they never panic on any input and are fuzzed.
//     Announcer sends the frames on an AF_PACKET socket without allocating
//     (built in place, a raw sendto), and survives the interface going
//     down and up.
//   - Sniffer counts every VRRP advert seen on a link by (version, VRID,
//     source), our own and foreign ones alike, so that `vigil doctor` can
//     spot two virtual routers sharing a VRID.
//
// Nothing here runs a goroutine of its own (Sniffer.Run's context.AfterFunc
// only expires a read deadline): the daemon owns the loops that read from a
// Conn or run a Sniffer, and stops them with Close or a context.
package netio
