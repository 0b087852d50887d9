package check

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// sockopts applies fwmark (SO_MARK), bind_if (SO_BINDTODEVICE) and, with a
// fixed bind_port, SO_REUSEADDR so that the next check can bind the same
// source port while the previous connection lingers in TIME_WAIT.
func sockopts(c syscall.RawConn, mark uint32, dev string, reuse bool) error {
	var opErr error
	err := c.Control(func(fd uintptr) {
		if mark != 0 {
			if opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark)); opErr != nil {
				return
			}
		}
		if dev != "" {
			if opErr = unix.BindToDevice(int(fd), dev); opErr != nil {
				return
			}
		}
		if reuse {
			opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		}
	})
	if err != nil {
		return err
	}
	return opErr
}
