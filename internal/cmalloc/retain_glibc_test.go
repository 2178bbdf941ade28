//go:build linux && cgo

package cmalloc

import (
	"runtime"
	"testing"
)

// TestRetainKeepsMemtablesInTheHeap checks, with glibc's own accounting,
// that after Retain a memtable-sized allocation comes from the allocator's
// heap instead of a mapping of its own, and that freeing it keeps the
// memory for the next one instead of handing it back.
func TestRetainKeepsMemtablesInTheHeap(t *testing.T) {
	if _, _, ok := mallocStats(); !ok {
		t.Skip("mallinfo2 is not available: not glibc 2.33 or later")
	}
	const memtable = 16 << 20
	// glibc gives each thread an arena of its own: stay on one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	// The probe sees a mapping: a request above the largest threshold
	// glibc allows is always mapped, tuned or not.
	m0, _, _ := mallocStats()
	huge := cAlloc(2 * MmapThreshold)
	m1, _, _ := mallocStats()
	cFree(huge)
	if m1-m0 < 2*MmapThreshold {
		t.Fatalf("a %d MiB block was not counted as mapped (%d -> %d bytes)", 2*MmapThreshold>>20, m0, m1)
	}

	if err := Retain(); err != nil {
		t.Fatal(err)
	}
	m0, h0, _ := mallocStats()
	p := cAlloc(memtable)
	m1, h1, _ := mallocStats()
	if m1 != m0 {
		t.Fatalf("after Retain a %d MiB block was still mapped on its own (mapped bytes %d -> %d)", memtable>>20, m0, m1)
	}
	if h1 < memtable {
		t.Fatalf("after Retain a %d MiB block did not come from the heap (heap bytes %d -> %d)", memtable>>20, h0, h1)
	}
	cFree(p)
	_, h2, _ := mallocStats()
	if h2 < h1 {
		t.Fatalf("freeing the block trimmed the heap from %d to %d bytes: the next memtable would be faulted in afresh", h1, h2)
	}
	p = cAlloc(memtable)
	_, h3, _ := mallocStats()
	cFree(p)
	if h3 > h2 {
		t.Fatalf("a second block grew the heap from %d to %d bytes instead of reusing the first's", h2, h3)
	}
}
