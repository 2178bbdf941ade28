package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens the existing file name for writing with O_DIRECT. It
// fails where the filesystem does not support direct I/O (tmpfs, say).
func openDirect(name string) (directWriter, error) {
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open O_DIRECT", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}
