// Package beat sends a VRRP master's periodic ADVERTISEMENTs (RFC 5798
// section 6.4.3, the Adver_Timer; keepalived's vrrp_instance adverts) from
// a thread outside the Go runtime, so that a master at a short advert_int
// does not wake the Go scheduler for every advert (issue #7).
//
// A Sender is one thread made with a raw clone(2) that runs a few
// instructions of assembly: sleep until an absolute CLOCK_MONOTONIC
// deadline on a futex, send the prepared messages with one sendmmsg(2),
// move the deadline one interval on (the time read through the vDSO). Two
// system calls per advert and no scheduler: keepalived's VRRP process
// makes four (epoll_wait, a timerfd
// read, sendmsg, timerfd_settime), and vigil's loop, parked in the Go
// runtime's poller, four plus the runtime's park and wake-up, 10-15 µs of
// CPU per advert above keepalived's (docs/benchmarks.md, footprint).
//
// The thread decides nothing. Its owner (the daemon's loop) hands it the
// adverts of a master in steady state and takes them back (Stop, which
// returns only once the thread is gone, so no advert of the old beat can
// follow a new one, such as the priority 0 advert of a shutdown) the
// moment anything changes. It sends only while its lease lasts: an owner
// that stops renewing it (a loop that hangs) stops the adverts within the
// lease, and the backups take over as they would from keepalived.
//
// The thread has no g and shares its creator's thread pointer, so it must
// never run Go code or take a signal: it starts with every signal blocked,
// and its stack is never used. Only linux/amd64 has the thread; elsewhere
// Supported is false and Start fails, and the loop sends every advert
// itself, as it always did.
package beat
