package storage

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Direct writes of blob files. A flush writes every record batch of a
// memtable into a new blob file, about as many bytes as the WAL took, and
// through the page cache that costs far more CPU than the bytes suggest:
// each write allocates page-cache pages, and on a VM that hands freed guest
// memory back to its host every new page is a host fault. On the 2-core
// benchmark machine dd wrote 2 GB in 1.5 s with 0.35 s of system time with
// O_DIRECT, and in 3–9 s with 2–8 s of system time through the page cache;
// in `raftka bench produce` at half the maximum rate the blob files' write
// calls were 13% of the process's CPU, four times the WAL's writes of the
// same bytes (the WAL reuses its files' cached pages).
//
// directFile writes a file sequentially through a second descriptor opened
// with O_DIRECT, in whole aligned chunks, so the pages never enter the
// cache. The unaligned end of the data is written through the ordinary
// descriptor when the file is synced, read, stat'ed or closed, and written
// again by the direct write that later covers it (a direct write replaces
// the cached pages of its range). Syncs go through the ordinary descriptor:
// fdatasync covers the whole inode, whichever descriptor wrote the data.

// directAlign is the alignment of a direct write's memory, offset and
// length: the largest logical block size of common disks.
const directAlign = 4096

// directChunk is the size of one direct write. Large enough that the
// per-call cost vanishes, small enough that a flush waits for the disk in
// steps a commit can slip between.
const directChunk = 512 << 10

// directWriter is the O_DIRECT descriptor: positioned, aligned writes only.
type directWriter interface {
	WriteAt(p []byte, off int64) (int, error)
	Close() error
}

// directFile is a vfs.File written sequentially with direct I/O (see above).
// It is used by one goroutine at a time, as Pebble uses a file it writes.
type directFile struct {
	// File is the ordinary descriptor: it serves reads, syncs, preallocation
	// and writes of the unaligned end.
	vfs.File
	// direct is the O_DIRECT descriptor; nil once the file fell back to
	// ordinary writes (see fallBack) or closed.
	direct directWriter

	// buf holds the bytes written after off, in memory aligned to
	// directAlign. Invariant: while direct is set, len(buf) == directChunk
	// and everything before off has been written to the file by direct;
	// afterwards buf is nil.
	buf []byte
	// n is how many bytes of buf hold data.
	n int
	// off is the file offset of buf[0], a multiple of directAlign.
	off int64
	// tailWritten is set when buf[:n] has also been written through File;
	// cleared by the next Write.
	tailWritten bool
	// err is the first write error; every later write or sync returns it,
	// since the file's contents are no longer what its writer wrote.
	err error
}

// newDirectFile wraps f, whose data is to be written through direct.
func newDirectFile(f vfs.File, direct directWriter) *directFile {
	return &directFile{File: f, direct: direct, buf: chunkPool.Get().(*[directChunk]byte)[:]}
}

// chunkPool recycles directFile buffers: a flush creates a file every few
// hundred milliseconds under load, and a fresh buffer is fresh memory to
// fault in.
var chunkPool = sync.Pool{New: func() any { return alignedChunk() }}

// alignedChunk returns a buffer whose address is a multiple of directAlign.
func alignedChunk() *[directChunk]byte {
	b := make([]byte, directChunk+directAlign)
	skip := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % directAlign); r != 0 {
		skip = directAlign - r
	}
	return (*[directChunk]byte)(b[skip : skip+directChunk])
}

// releaseBuf returns buf to the pool; the file writes no more directly.
func (f *directFile) releaseBuf() {
	if f.buf != nil {
		chunkPool.Put((*[directChunk]byte)(f.buf))
		f.buf = nil
	}
}

// Write appends p, writing every chunk it completes.
func (f *directFile) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.direct == nil {
		n, err := f.File.WriteAt(p, f.off+int64(f.n))
		f.n += n
		return n, f.fail(err)
	}
	written := 0
	for len(p) > 0 {
		c := copy(f.buf[f.n:], p)
		f.n += c
		f.tailWritten = false
		p = p[c:]
		written += c
		if f.n == len(f.buf) {
			if err := f.writeChunk(); err != nil {
				return written, err
			}
			if f.direct == nil {
				// The chunk fell back to ordinary writes; so does the rest.
				n, err := f.Write(p)
				return written + n, err
			}
		}
	}
	return written, nil
}

// writeChunk writes the full buffer with one direct write. A device that
// refuses the write as unaligned (EINVAL: its logical blocks are larger
// than directAlign) gets the file through the page cache instead.
func (f *directFile) writeChunk() error {
	n, err := f.direct.WriteAt(f.buf, f.off)
	if errors.Is(err, syscall.EINVAL) && n <= 0 {
		return f.fallBack()
	}
	if err := f.checkWrite("direct write", n, len(f.buf), err); err != nil {
		return err
	}
	f.off += int64(len(f.buf))
	f.n = 0
	return nil
}

// writeTail writes the buffered bytes through the ordinary descriptor, so
// that the file holds everything written so far.
func (f *directFile) writeTail() error {
	if f.err != nil {
		return f.err
	}
	if f.direct == nil || f.n == 0 || f.tailWritten {
		return nil
	}
	n, err := f.File.WriteAt(f.buf[:f.n], f.off)
	if err := f.checkWrite("write", n, f.n, err); err != nil {
		return err
	}
	f.tailWritten = true
	return nil
}

// checkWrite turns the outcome of writing want bytes at off (a short write
// included) into the file's error, if any.
func (f *directFile) checkWrite(op string, n, want int, err error) error {
	if err == nil && n != want {
		err = io.ErrShortWrite
	}
	if err != nil {
		return f.fail(fmt.Errorf("storage: %s at %d: %w", op, f.off, err))
	}
	return nil
}

// fail records err, if any, as the file's first error and returns it.
func (f *directFile) fail(err error) error {
	if err != nil && f.err == nil {
		f.err = err
	}
	return err
}

// WriteAt is not how Pebble writes a new file; should it ever be, the file
// falls back to ordinary writes for good, after writing out what it holds.
func (f *directFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fallBack(); err != nil {
		return 0, err
	}
	n, err := f.File.WriteAt(p, off)
	return n, f.fail(err)
}

// fallBack writes out the buffer and stops writing directly. Afterwards off
// plus n is the end of the sequential writes.
func (f *directFile) fallBack() error {
	if f.direct == nil {
		return f.err
	}
	err := f.writeTail()
	if cerr := f.direct.Close(); err == nil {
		err = f.fail(cerr)
	}
	f.direct = nil
	f.releaseBuf()
	f.off += int64(f.n)
	f.n = 0
	return err
}

// Sync writes out the buffer and syncs the file.
func (f *directFile) Sync() error {
	if err := f.writeTail(); err != nil {
		return err
	}
	return f.fail(f.File.Sync())
}

// SyncData writes out the buffer and syncs the file's data.
func (f *directFile) SyncData() error {
	if err := f.writeTail(); err != nil {
		return err
	}
	return f.fail(f.File.SyncData())
}

// SyncTo is how Pebble bounds a file's dirty pages as it writes; direct
// writes leave none, so there is nothing to do, and it reports no full sync.
func (f *directFile) SyncTo(length int64) (fullSync bool, err error) {
	if f.direct == nil {
		return f.File.SyncTo(length)
	}
	return false, f.err
}

// Stat reports the file with everything written so far.
func (f *directFile) Stat() (vfs.FileInfo, error) {
	if err := f.writeTail(); err != nil {
		return nil, err
	}
	return f.File.Stat()
}

// ReadAt reads the file with everything written so far.
func (f *directFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.writeTail(); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

// Read is not supported: the ordinary descriptor's position is not the
// writer's.
func (f *directFile) Read([]byte) (int, error) {
	return 0, errors.New("storage: Read of a file being written with direct I/O")
}

// Close writes out the buffer and closes both descriptors.
func (f *directFile) Close() error {
	return errors.Join(f.fallBack(), f.File.Close())
}
