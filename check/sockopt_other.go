//go:build !linux

package check

import (
	"errors"
	"syscall"
)

func sockopts(c syscall.RawConn, mark uint32, dev string, reuse bool) error {
	if mark != 0 || dev != "" {
		return errors.New("fwmark and bind_if need Linux")
	}
	return nil
}
