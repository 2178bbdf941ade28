//go:build !linux

package storage

// dropPageCache is a no-op where posix_fadvise is not available.
func dropPageCache(fd uintptr) {}
