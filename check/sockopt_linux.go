package check

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// sockopts applies fwmark (SO_MARK), bind_if (SO_BINDTODEVICE) and, with a
// fixed bind_port, SO_REUSEADDR so that the next check can bind the same
// source port while the previous connection lingers in TIME_WAIT.
func sockopts(c syscall.RawConn, mark uint32, dev string, reuse bool) error {
	var opErr error
	err := c.Control(func(fd uintptr) { opErr = setsockopts(int(fd), mark, dev, reuse) })
	if err != nil {
		return err
	}
	return opErr
}

func setsockopts(fd int, mark uint32, dev string, reuse bool) error {
	if mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			return fmt.Errorf("fwmark %d: %w", mark, err)
		}
	}
	if dev != "" {
		if err := unix.BindToDevice(fd, dev); err != nil {
			return fmt.Errorf("bind_if %s: %w", dev, err)
		}
	}
	if reuse {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	return nil
}
