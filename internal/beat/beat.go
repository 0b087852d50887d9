package beat

import (
	"syscall"
	"time"
)

// Msg is one message of a beat, as sendmsg(2) takes it.
type Msg struct {
	Name    []byte // the destination, a struct sockaddr
	Control []byte // ancillary data: the source's IP_PKTINFO or IPV6_PKTINFO
	Data    []byte // the advert
}

// State is what a Sender's thread has done so far.
type State struct {
	Sent, Failed uint64        // messages
	Err          syscall.Errno // of the last failed sendmmsg, 0 if none
	Next         time.Time     // the next send (or the one it would have made)
	Lapsed       bool          // it stopped at the end of its lease
}
