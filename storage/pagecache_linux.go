package storage

import "golang.org/x/sys/unix"

// dropPageCache asks the kernel to evict fd's clean pages.
func dropPageCache(fd uintptr) { _ = unix.Fadvise(int(fd), 0, 0, unix.FADV_DONTNEED) }
