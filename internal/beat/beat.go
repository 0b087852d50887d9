package beat

import (
	"errors"
	"syscall"
)

// MaxMsgs bounds the messages of one Sender (an advert to each unicast
// peer), as the kernel bounds one sendmmsg (UIO_MAXIOV).
const MaxMsgs = 1024

// ErrStuck is Stop's error when the thread did not go.
var ErrStuck = errors.New("beat: the sender thread did not stop")

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
	Lapsed       bool          // it stopped at the end of its lease
}
