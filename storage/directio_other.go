//go:build !linux

package storage

import "errors"

// openDirect fails: direct writes are implemented only on Linux.
func openDirect(name string) (directWriter, error) {
	return nil, errors.New("storage: direct I/O is implemented only on Linux")
}
