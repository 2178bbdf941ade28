package storage

import (
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// dropPagesFS is a vfs.FS that evicts a blob file's pages from the OS page
// cache once the file is synced. Blob files hold the record batches of every
// partition log; they are written once, in full, by flushes, and read again
// only by consumers or followers far behind (recent entries are served from
// Raft's entry cache and the memtable). Left cached, they grow the page
// cache by everything the broker ever wrote, and on a VM whose host backs
// guest memory lazily and takes freed memory back (Firecracker with free
// page reporting), every page of that growth is a host page fault: on the
// 2-core benchmark machine writing a new file cost 2.8–3.0 s of CPU per GiB
// left cached and 0.3 s per GiB evicted after each sync, measured with
// 32 MiB synced chunks. Redpanda and ScyllaDB bypass the page cache for the
// same reason; so does this, where the filesystem allows, by writing blob
// files with direct I/O (see directFile), and evicts what did enter the
// cache (the unaligned ends of files, or everything where direct I/O is
// unavailable).
type dropPagesFS struct{ vfs.FS }

// isBlobFile reports whether name is one of Pebble's blob (separated value)
// files.
func isBlobFile(name string) bool { return strings.HasSuffix(name, ".blob") }

// Create wraps blob files so that their pages are dropped after each sync,
// and, where the filesystem allows, written with direct I/O so that they
// never enter the page cache in the first place (see directFile).
func (fs dropPagesFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	if err != nil || !isBlobFile(name) {
		return f, err
	}
	if f.Fd() != vfs.InvalidFd {
		if direct, err := openDirect(name); err == nil {
			f = newDirectFile(f, direct)
		}
	}
	return dropPagesFile{File: f}, nil
}

// dropPagesFile evicts its pages from the page cache after a full sync:
// only then are they all clean, so the kernel drops them rather than
// skipping dirty ones.
type dropPagesFile struct{ vfs.File }

func (f dropPagesFile) Sync() error     { return f.dropAfter(f.File.Sync()) }
func (f dropPagesFile) SyncData() error { return f.dropAfter(f.File.SyncData()) }

func (f dropPagesFile) SyncTo(length int64) (fullSync bool, err error) {
	fullSync, err = f.File.SyncTo(length)
	if err == nil && fullSync {
		f.drop()
	}
	return fullSync, err
}

// dropAfter drops the pages once a full sync succeeded, and returns its
// error.
func (f dropPagesFile) dropAfter(syncErr error) error {
	if syncErr == nil {
		f.drop()
	}
	return syncErr
}

// drop is advice: a file without a descriptor (an in-memory FS) or an
// error from the kernel leaves the pages cached, which is only slower.
func (f dropPagesFile) drop() {
	if fd := f.Fd(); fd != vfs.InvalidFd {
		dropPageCache(fd)
	}
}
