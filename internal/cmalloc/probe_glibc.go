//go:build linux && cgo

package cmalloc

/*
#include <stdlib.h>
#include <malloc.h>

// probe_mapped returns the bytes glibc holds in blocks mapped for single
// requests, and in *heap the bytes of its heaps (both from mallinfo2), or
// -1 where mallinfo2 does not exist (glibc before 2.33, other C libraries).
static long probe_mapped(long *heap) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 mi = mallinfo2();
	*heap = (long)mi.arena;
	return (long)mi.hblkhd;
#else
	*heap = -1;
	return -1;
#endif
}
*/
import "C"

import "unsafe"

// These let the package's tests watch the C allocator from Go (test files
// cannot use cgo).

// cAlloc allocates n bytes with C's malloc and touches them.
func cAlloc(n int) unsafe.Pointer {
	p := C.malloc(C.size_t(n))
	if p == nil {
		panic("cmalloc: malloc failed")
	}
	clear(unsafe.Slice((*byte)(p), n))
	return p
}

// cFree frees what cAlloc returned.
func cFree(p unsafe.Pointer) { C.free(p) }

// mallocStats returns glibc's bytes in single-request mappings and in its
// heaps, and ok false where they are unknown.
func mallocStats() (mapped, heap int64, ok bool) {
	var h C.long
	m := C.probe_mapped(&h)
	return int64(m), int64(h), m >= 0
}
