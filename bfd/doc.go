// Package bfd is vigil's BFD engine: RFC 5880 Bidirectional Forwarding
// Detection in asynchronous mode, for the single-hop sessions of RFC 5881
// that keepalived's bfd_instance configures.
//
// Like package vrrp it is a pure value: a Set of Sessions is stepped with
// received packets (Receive) and the clock (Advance), and Ready says what
// to send and which sessions changed state; Next is the next deadline. It
// does no I/O, starts no goroutines and never reads the clock, so every
// rule is tested in virtual time. Sockets and the goroutine that drives a
// Set live in package bfd/link.
//
// What is implemented: the state machine of section 6.2 (Down, Init, Up,
// AdminDown) with the reception rules of 6.8.6 and the TTL check of RFC
// 5881 section 5; discriminators drawn at random and demultiplexing by
// them (6.3), by addresses while the peer does not know ours; the Poll
// Sequence for timer changes (6.5, 6.8.3: the idle interval while not Up,
// min_tx once Up); detection time = the peer's multiplier times the larger
// of our RequiredMinRx and its DesiredMinTx (6.8.4); transmit jitter
// (6.8.7); passive sessions (6.1). Not implemented: demand mode, the echo
// function and authentication (a packet with the A bit is dropped, as
// 6.8.6 says for a session without authentication; keepalived has none).
//
// One departure from 6.8.4, which declares a session Down as soon as a
// detection time passes without a packet: when the caller says it could
// not run for longer than the peer's transmit interval (Set.Resumed: a
// paused VM, a stopped process), a detection time that ran out in that
// stall is extended once by one detection time from the wake-up, because
// the peer's packets of that time may still be on their way or the peer
// stalled with us. A dead peer is then declared Down one detection time
// later than the RFC's rule would.
package bfd
