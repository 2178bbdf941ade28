// Package storage defines the key-value Engine that a Raftka broker keeps all
// of its durable state in (every partition's Raft log, hard state and derived
// indexes, and the metadata log), and its two implementations: Pebble, the
// durable default, and an in-memory engine for fast tests.
//
// A broker owns exactly one Engine and shares it between all of its Raft
// groups, so that one synced batch can carry the writes of many groups (group
// commit). The key layout on top of the engine belongs to the packages that
// write it (see raftlog/keys.go); this package knows nothing of Raft.
//
// Pebble runs on the broker's filesystem through two thin vfs.FS layers:
// blob files (the record batches) leave the OS page cache once synced
// (pagecache.go), and flushes and compactions write at a pace set by the
// WAL's (pacing.go), so that their bursts do not queue ahead of the synced
// commits that produce requests wait for. On Linux the threads that run
// flushes and compactions also take a lower CPU priority (bgpriority.go), so
// that they use the CPU the commit path leaves rather than sharing it.
package storage

import "errors"

// ErrNotFound is returned by Engine.Get when the key has no value.
var ErrNotFound = errors.New("storage: not found")

// ErrClosed is returned by operations on an Engine after Close.
var ErrClosed = errors.New("storage: engine closed")

// Engine is an ordered key-value store with atomic, optionally synced,
// batches. Keys are compared bytewise.
//
// An Engine is safe for concurrent use. Writes become visible to readers
// atomically when their batch commits. A batch committed with sync=true is
// durable when Commit returns, and so is every batch committed before it.
type Engine interface {
	// Get returns a copy of the value stored at key, or ErrNotFound. The
	// caller owns the returned slice.
	Get(key []byte) ([]byte, error)

	// NewBatch returns an empty write batch. The batch is owned by the
	// caller and is not safe for concurrent use.
	NewBatch() Batch

	// NewBatchWithSize is NewBatch for a batch expected to hold about size
	// bytes of keys and values: it allocates that room at once instead of
	// growing the batch (by doubling and copying) as it fills.
	NewBatchWithSize(size int) Batch

	// NewIter returns an iterator over the keys in [lower, upper). A nil
	// bound is unbounded. The iterator sees a consistent snapshot of the
	// engine taken when it was created. The caller must Close it.
	NewIter(lower, upper []byte) (Iterator, error)

	// Close releases the engine. Unsynced writes may be lost. It waits for
	// running calls; afterwards every call (including on iterators still
	// open, and a second Close) fails with ErrClosed.
	Close() error
}

// BatchSizer is implemented by an Engine whose batches should stay under a
// size: a caller that can split its writes (at points where a crash between
// the parts is harmless) commits parts of at most MaxBatchBytes.
type BatchSizer interface {
	// MaxBatchBytes returns the largest batch, in bytes, that the engine
	// commits without a cost out of proportion to its size.
	MaxBatchBytes() int
}

// Batch collects writes that commit atomically. Operations apply in the
// order they were added: a Set after a DeleteRange covering its key survives.
// Key and value slices are copied; the caller may reuse them after the call.
type Batch interface {
	// Set stores value at key.
	Set(key, value []byte) error
	// SetWith stores at key a value of valueLen bytes that fill writes
	// into the batch's own buffer, saving a copy of large values. fill must
	// write all valueLen bytes and not keep the slice.
	SetWith(key []byte, valueLen int, fill func(value []byte)) error
	// Delete removes key.
	Delete(key []byte) error
	// DeleteRange removes every key in [start, end). An empty range is a
	// no-op; start > end is an error.
	DeleteRange(start, end []byte) error
	// Len returns the approximate size of the batch in bytes.
	Len() int
	// Empty reports whether the batch holds no operations.
	Empty() bool
	// Commit applies the batch atomically. With sync=true it returns only
	// once the batch (and everything committed before it) is durable. A
	// batch may not be reused after Commit. Committing an empty batch with
	// sync=true still makes earlier batches durable.
	Commit(sync bool) error
	// Close releases the batch without committing it if it was not
	// committed. It is safe to call after Commit.
	Close() error
}

// Iterator walks keys in ascending order. Positioning methods return whether
// the iterator is now at a valid key. Key and Value return slices owned by
// the engine: they must not be modified and are valid only until the next
// positioning call; copy them to keep them.
//
// Seeks are clamped to the iterator's bounds. On a fresh iterator Next acts
// as First and Prev as Last; after Next ran off the end Prev moves to the
// last key, and after Prev ran off the start Next moves to the first key.
// An iterator is not safe for concurrent use.
type Iterator interface {
	// First moves to the first key in range.
	First() bool
	// Last moves to the last key in range.
	Last() bool
	// SeekGE moves to the first key >= key.
	SeekGE(key []byte) bool
	// SeekLT moves to the last key < key.
	SeekLT(key []byte) bool
	// Next moves to the next key.
	Next() bool
	// Prev moves to the previous key.
	Prev() bool
	// Valid reports whether the iterator is at a key.
	Valid() bool
	// Key returns the current key.
	Key() []byte
	// Value returns the current value.
	Value() []byte
	// Error returns any error the iterator met.
	Error() error
	// Close releases the iterator and returns any error it met.
	Close() error
}
