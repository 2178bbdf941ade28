package cmalloc

import "math"

const (
	// MmapThreshold is the allocation size from which glibc maps memory
	// of its own for a request: its largest allowed value, above a 16 MiB
	// memtable.
	MmapThreshold = 32 << 20
	// TrimThreshold is how much free memory at the top of a heap glibc
	// keeps before returning it: never, in practice.
	TrimThreshold = math.MaxInt32
	// ArenaMax is the number of arenas glibc may use. glibc gives threads
	// arenas of their own, and memory freed in one arena serves only the
	// threads allocating from it: with several, a memtable rotated on one
	// thread found the freed one in another's arena and was faulted in
	// afresh all the same. Pebble's C allocations are few (memtables and
	// block cache entries), so one lock costs little.
	ArenaMax = 1
)

// EnvSet reports whether the environment already tunes glibc's malloc
// (GLIBC_TUNABLES or glibc's older MALLOC_ variables for the same
// settings), which Retain then leaves to the user.
func EnvSet(getenv func(string) string) bool {
	for _, k := range []string{"GLIBC_TUNABLES", "MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_"} {
		if getenv(k) != "" {
			return true
		}
	}
	return false
}

// Retain makes the C allocator keep the memory it is given back (see the
// package documentation). It is process-wide and must run before Pebble
// opens, so that the first memtables already come from the allocator's
// heap. It returns an error if the C library refuses, and does nothing in
// builds without cgo.
func Retain() error { return retain() }
