package raftlog

import (
	"slices"
	"sync/atomic"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Entry cache limits. The cache exists so that raft's reads of entries it
// just handed over for persistence — committed entries to apply, appends to
// followers once the inflight window opens — come from memory instead of a
// Pebble iterator that may seek through every level of the LSM.
const (
	// cacheRetainApplied is how many bytes of applied entries a group keeps
	// for followers that lag a little (about raft's MaxInflightBytes).
	cacheRetainApplied = 8 << 20
	// cacheGroupMax bounds one group's cache, applied or not; older
	// entries are read from the engine.
	cacheGroupMax = 64 << 20
	// DefaultEntryCacheBytes bounds the bytes of applied entries kept by
	// all groups of a scheduler together, beyond which groups keep none.
	DefaultEntryCacheBytes = 256 << 20
)

// cacheBudget counts the bytes cached by every group of a scheduler.
type cacheBudget struct {
	used atomic.Int64
	max  int64
}

func (b *cacheBudget) add(n int64) {
	if b != nil {
		b.used.Add(n)
	}
}

func (b *cacheBudget) over() bool { return b != nil && b.used.Load() > b.max }

// entryCache holds a suffix of a group's stored log in memory. Entries are
// shared with raft and never modified.
//
// Invariant: ents[i] has index first+i; when ents is non-empty its last
// entry is the store's last entry; bytes is the sum of entrySize over ents.
type entryCache struct {
	ents   []*pb.Entry
	first  uint64
	bytes  int64
	budget *cacheBudget
}

func entrySize(e *pb.Entry) int64 { return int64(len(e.GetData())) + 16 }

// truncateFrom drops the entries at index and above.
func (c *entryCache) truncateFrom(index uint64) {
	if len(c.ents) == 0 || index >= c.first+uint64(len(c.ents)) {
		return
	}
	keep := 0
	if index > c.first {
		keep = int(index - c.first)
	}
	var freed int64
	for i := keep; i < len(c.ents); i++ {
		freed += entrySize(c.ents[i])
		c.ents[i] = nil
	}
	c.ents = c.ents[:keep]
	c.bytes -= freed
	c.budget.add(-freed)
}

// append adds ents, which follow the cached suffix directly (the caller
// truncated conflicting entries first).
func (c *entryCache) append(ents []*pb.Entry) {
	if len(ents) == 0 {
		return
	}
	if len(c.ents) == 0 {
		c.first = ents[0].GetIndex()
	} else if c.first+uint64(len(c.ents)) != ents[0].GetIndex() {
		// Not contiguous (cannot happen after truncateFrom): start over.
		c.dropFront(len(c.ents))
		c.first = ents[0].GetIndex()
	}
	var added int64
	for _, e := range ents {
		added += entrySize(e)
	}
	c.ents = append(c.ents, ents...)
	c.bytes += added
	c.budget.add(added)
	for c.bytes > cacheGroupMax && len(c.ents) > 1 {
		c.dropFront(1)
	}
}

// dropFront drops the n oldest entries.
func (c *entryCache) dropFront(n int) {
	var freed int64
	for i := range n {
		freed += entrySize(c.ents[i])
		c.ents[i] = nil
	}
	c.ents = c.ents[n:]
	c.first += uint64(n)
	c.bytes -= freed
	c.budget.add(-freed)
	if len(c.ents) == 0 {
		c.ents = nil // release the array
	}
}

// clear drops every entry.
func (c *entryCache) clear() {
	if len(c.ents) > 0 {
		c.dropFront(len(c.ents))
	}
}

// evictApplied drops applied entries (index <= applied) from the front
// beyond cacheRetainApplied bytes of them, or all of them when retain is
// false or the scheduler's budget is exhausted.
func (c *entryCache) evictApplied(applied uint64, retain bool) {
	n := 0
	for n < len(c.ents) && c.first+uint64(n) <= applied {
		n++
	}
	if n == 0 {
		return
	}
	if !retain || c.budget.over() {
		c.dropFront(n)
		return
	}
	var appliedBytes int64
	for _, e := range c.ents[:n] {
		appliedBytes += entrySize(e)
	}
	drop := 0
	for drop < n && appliedBytes > cacheRetainApplied {
		appliedBytes -= entrySize(c.ents[drop])
		drop++
	}
	if drop > 0 {
		c.dropFront(drop)
	}
}

// get returns the cached entries from lo below hi, at most maxSize bytes
// but at least one, or false if lo is not cached. The entries are shared
// but the slice is a copy: raft keeps such slices in messages that wait in
// the transport's queues, while the cache reuses and clears its array.
func (c *entryCache) get(lo, hi, maxSize uint64) ([]*pb.Entry, bool) {
	if len(c.ents) == 0 || lo < c.first || hi > c.first+uint64(len(c.ents)) || lo >= hi {
		return nil, false
	}
	a, b := int(lo-c.first), int(hi-c.first)
	var size uint64
	end := a
	for end < b {
		size += uint64(entrySize(c.ents[end]))
		if end > a && size > maxSize {
			break
		}
		end++
	}
	return slices.Clone(c.ents[a:end]), true
}

// term returns the term of the cached entry at index.
func (c *entryCache) term(index uint64) (uint64, bool) {
	if len(c.ents) == 0 || index < c.first || index >= c.first+uint64(len(c.ents)) {
		return 0, false
	}
	return c.ents[index-c.first].GetTerm(), true
}
