// Package bufpool recycles the large byte buffers of the produce path:
// request frames and Raft proposal envelopes, megabytes each, which live
// for one request. Allocating them afresh costs zeroing them and, when the
// Go heap has returned the memory to the kernel, a page fault per page
// (a host round trip on a VM); recycling them costs neither.
//
// A buffer must be returned only by its last user, once nothing refers to
// any part of it: a buffer handed out again while a slice of it is still
// read silently corrupts that reader's data. Callers document, where they
// Put, why nothing else holds the buffer.
package bufpool

import (
	"math/bits"
	"sync"
)

const (
	// minClass and maxClass bound the pooled capacities, as powers of
	// two: smaller buffers are cheap to allocate, larger ones too rare to
	// be worth pinning.
	minClass = 12 // 4 KiB
	maxClass = 24 // 16 MiB
)

// pools[c] holds buffers of capacity exactly 1<<(minClass+c).
var pools [maxClass - minClass + 1]sync.Pool

// class returns the pool index for a buffer of n bytes, and false if n is
// too large to pool.
func class(n int) (int, bool) {
	if n <= 1<<minClass {
		return 0, true
	}
	c := bits.Len(uint(n-1)) - minClass // smallest power of two >= n
	return c, c < len(pools)
}

// Get returns a buffer of length n. Its contents are arbitrary: the caller
// overwrites all n bytes.
func Get(n int) []byte {
	c, ok := class(n)
	if !ok {
		return make([]byte, n)
	}
	if p, _ := pools[c].Get().(*[]byte); p != nil {
		return (*p)[:n]
	}
	return make([]byte, n, 1<<(minClass+c))
}

// Put returns b, which must have come from Get, for reuse. Buffers Get did
// not pool are dropped.
func Put(b []byte) {
	c, ok := class(cap(b))
	if !ok || cap(b) != 1<<(minClass+c) {
		return
	}
	b = b[:cap(b)]
	pools[c].Put(&b)
}
