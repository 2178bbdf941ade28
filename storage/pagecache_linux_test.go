package storage_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/raftka/raftka/storage"
)

// residentPages reports how many of path's pages are in the page cache and
// how many pages it has.
func residentPages(t *testing.T, path string) (resident, total int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		t.Fatalf("stat %s: size %d, %v", path, st.Size(), err)
	}
	// Mapping a file does not read it; mincore then reports residency.
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	page := os.Getpagesize()
	vec := make([]byte, (len(mem)+page-1)/page)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatalf("mincore: %v", errno)
	}
	for _, v := range vec {
		if v&1 != 0 {
			resident++
		}
	}
	return resident, len(vec)
}

// writeAndFlush writes n separated values of size bytes and flushes them,
// returning the database's blob files.
func writeAndFlush(t *testing.T, opts storage.PebbleOptions, n, size int) (p *storage.Pebble, blobs []string) {
	t.Helper()
	p, err := storage.OpenPebble(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	value := bytes.Repeat([]byte{'v'}, size)
	b := p.NewBatch()
	for i := range n {
		if err := b.Set([]byte{byte(i >> 8), byte(i)}, value); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(opts.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".blob") {
			blobs = append(blobs, filepath.Join(opts.Dir, e.Name()))
		}
	}
	if len(blobs) == 0 {
		t.Fatalf("no blob files in %s after flushing %d values of %d bytes", opts.Dir, n, size)
	}
	return p, blobs
}

// TestPebbleBlobPagesLeaveThePageCache checks that, by default, the record
// batches a flush writes to blob files do not stay in the OS page cache,
// that they are still read back correctly, and that CacheBlobPages keeps
// them.
func TestPebbleBlobPagesLeaveThePageCache(t *testing.T) {
	t.Parallel()
	const n, size = 2000, 4096 // 8 MB of values, well above a blob file's block

	dir := t.TempDir()
	p, blobs := writeAndFlush(t, storage.PebbleOptions{Dir: dir, Logger: testLogger}, n, size)
	for _, path := range blobs {
		if res, total := residentPages(t, path); res > 0 {
			t.Errorf("%s: %d of %d pages resident after flush; want 0", filepath.Base(path), res, total)
		}
	}
	got, err := p.Get([]byte{byte(1234 >> 8), byte(1234 & 0xff)})
	if err != nil || len(got) != size || got[0] != 'v' {
		t.Fatalf("read back after eviction: %d bytes, %v", len(got), err)
	}

	// With CacheBlobPages the same write leaves most pages cached (the
	// kernel may evict some under memory pressure, so ask only for half).
	dir = t.TempDir()
	_, blobs = writeAndFlush(t, storage.PebbleOptions{Dir: dir, Logger: testLogger, CacheBlobPages: true}, n, size)
	var res, total int
	for _, path := range blobs {
		r, tot := residentPages(t, path)
		res, total = res+r, total+tot
	}
	if res < total/2 {
		t.Errorf("CacheBlobPages: %d of %d pages resident; want most", res, total)
	}
}
