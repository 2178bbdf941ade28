package storage

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// fakeDirect stands in for an O_DIRECT descriptor: it checks the alignment
// O_DIRECT demands and writes into the same file as the ordinary one.
type fakeDirect struct {
	t      *testing.T
	f      vfs.File
	writes int
	// failAt, if positive, makes that write (counting from 1) fail with
	// failErr, or errFakeDisk if failErr is nil.
	failAt  int
	failErr error
	closed  bool
}

var errFakeDisk = errors.New("fake disk error")

func (d *fakeDirect) WriteAt(p []byte, off int64) (int, error) {
	d.t.Helper()
	d.writes++
	if addr := uintptr(unsafe.Pointer(&p[0])); addr%directAlign != 0 || off%directAlign != 0 || len(p)%directAlign != 0 {
		d.t.Errorf("unaligned direct write: address %#x, offset %d, length %d", addr, off, len(p))
	}
	if d.writes == d.failAt {
		if d.failErr != nil {
			return 0, d.failErr
		}
		return 0, errFakeDisk
	}
	return d.f.WriteAt(p, off)
}

func (d *fakeDirect) Close() error { d.closed = true; return nil }

// newFakeDirectFile returns a directFile over a new in-memory file.
func newFakeDirectFile(t *testing.T) (vfs.FS, *directFile, *fakeDirect) {
	t.Helper()
	fs := vfs.NewMem()
	f, err := fs.Create("000001.blob", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDirect{t: t, f: f}
	return fs, newDirectFile(f, d), d
}

// readAll returns the contents of name in fs.
func readAll(t *testing.T, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDirectFileContents writes a file in writes of random sizes, with
// syncs, stats and reads in between, and checks that the file holds exactly
// what was written at every one of them and at the end, and that whole
// chunks went through aligned direct writes.
func TestDirectFileContents(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	fs, f, d := newFakeDirectFile(t)
	var want []byte
	for len(want) < 3*directChunk+12345 {
		p := make([]byte, rng.IntN(200<<10))
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		n, err := f.Write(p)
		if err != nil || n != len(p) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
		}
		want = append(want, p...)
		switch rng.IntN(4) {
		case 0:
			if err := f.SyncData(); err != nil {
				t.Fatal(err)
			}
		case 1:
			st, err := f.Stat()
			if err != nil || st.Size() != int64(len(want)) {
				t.Fatalf("Stat: size %v, %v; want %d", st, err, len(want))
			}
		case 2:
			got := make([]byte, len(want))
			if n, err := f.ReadAt(got, 0); n != len(want) || (err != nil && err != io.EOF) || !bytes.Equal(got, want) {
				t.Fatalf("ReadAt after %d bytes: %d bytes, %v, equal %v", len(want), n, err, bytes.Equal(got, want))
			}
		}
	}
	if full, err := f.SyncTo(int64(len(want))); full || err != nil {
		t.Fatalf("SyncTo = %v, %v; want false, nil (nothing is left dirty)", full, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !d.closed {
		t.Error("direct descriptor not closed")
	}
	if d.writes != len(want)/directChunk {
		t.Errorf("%d direct writes for %d bytes; want one per whole chunk, %d", d.writes, len(want), len(want)/directChunk)
	}
	if got := readAll(t, fs, "000001.blob"); !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, not the %d written", len(got), len(want))
	}
}

// TestDirectFileCloseWritesTail checks that closing without a sync still
// leaves everything written in the file.
func TestDirectFileCloseWritesTail(t *testing.T) {
	t.Parallel()
	fs, f, _ := newFakeDirectFile(t)
	want := bytes.Repeat([]byte("tail"), 1000)
	if _, err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fs, "000001.blob"); !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, not the %d written", len(got), len(want))
	}
}

// TestDirectFileWriteError checks that a failed direct write fails the
// write, and every later write and sync: the file no longer holds what was
// written, so nothing may report it durable.
func TestDirectFileWriteError(t *testing.T) {
	t.Parallel()
	_, f, d := newFakeDirectFile(t)
	d.failAt = 2
	p := make([]byte, directChunk)
	if _, err := f.Write(p); err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	if _, err := f.Write(p); !errors.Is(err, errFakeDisk) {
		t.Fatalf("second chunk: %v; want the disk error", err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, errFakeDisk) {
		t.Errorf("write after the error: %v; want the disk error", err)
	}
	if err := f.Sync(); !errors.Is(err, errFakeDisk) {
		t.Errorf("Sync after the error: %v; want the disk error", err)
	}
	if _, err := f.SyncTo(1); !errors.Is(err, errFakeDisk) {
		t.Errorf("SyncTo after the error: %v; want the disk error", err)
	}
	if err := f.Close(); !errors.Is(err, errFakeDisk) {
		t.Errorf("Close after the error: %v; want the disk error", err)
	}
}

// TestDirectFileWriteAtFallsBack checks that a positioned write, which
// Pebble does not use on new files, switches the file to ordinary writes
// without losing or misplacing anything.
func TestDirectFileWriteAtFallsBack(t *testing.T) {
	t.Parallel()
	fs, f, d := newFakeDirectFile(t)
	first := bytes.Repeat([]byte{1}, directChunk+100)
	if _, err := f.Write(first); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{9, 9}, 10); err != nil {
		t.Fatal(err)
	}
	if !d.closed {
		t.Error("direct descriptor still open after falling back")
	}
	if _, err := f.Write([]byte{2, 2, 2}); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte{}, first...), 2, 2, 2)
	want[10], want[11] = 9, 9
	if got := readAll(t, fs, "000001.blob"); !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, not the %d expected", len(got), len(want))
	}
}

// TestDirectFileOnDisk writes through a real O_DIRECT descriptor, where
// the filesystem of the test's temporary directory supports one.
func TestDirectFileOnDisk(t *testing.T) {
	t.Parallel()
	name := filepath.Join(t.TempDir(), "000001.blob")
	f, err := vfs.Default.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := openDirect(name)
	if err != nil {
		f.Close()
		t.Skipf("no direct I/O here: %v", err)
	}
	df := newDirectFile(f, direct)
	rng := rand.New(rand.NewPCG(3, 4))
	want := make([]byte, 2*directChunk+777)
	for i := range want {
		want[i] = byte(rng.Uint32())
	}
	for p := want; len(p) > 0; {
		n := min(len(p), 1+rng.IntN(100<<10))
		if _, err := df.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := df.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := df.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, not the %d written", len(got), len(want))
	}
}

// TestDirectFileUnalignedDeviceFallsBack checks that a device refusing a
// direct write as unaligned (EINVAL) gets the whole file through ordinary
// writes instead of failing the flush.
func TestDirectFileUnalignedDeviceFallsBack(t *testing.T) {
	t.Parallel()
	fs, f, d := newFakeDirectFile(t)
	d.failAt, d.failErr = 2, &os.PathError{Op: "write", Path: "000001.blob", Err: syscall.EINVAL}
	want := make([]byte, 3*directChunk+10)
	for i := range want {
		want[i] = byte(i * 7)
	}
	for p := want; len(p) > 0; {
		n := min(len(p), 100<<10)
		if _, err := f.Write(p[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		p = p[n:]
	}
	if !d.closed {
		t.Error("direct descriptor still open after EINVAL")
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fs, "000001.blob"); !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, not the %d written", len(got), len(want))
	}
}
