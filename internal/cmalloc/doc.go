// Package cmalloc tunes the C allocator that Pebble's manually managed
// memory comes from, so that a broker keeps that memory instead of handing
// it back to the operating system and faulting it in again.
//
// Pebble allocates its memtables (16 MiB each at Raftka's default) and its
// block cache with C's malloc when cgo is enabled. glibc serves a request
// that large with a fresh mmap and unmaps it on free. Pebble keeps one
// obsolete memtable to recycle; whenever a flush falls behind the memtable
// it drains, the next rotation needs one more and gets fresh pages, and the
// commit that fills them takes one page fault per 4 KiB page (4,096 for a
// memtable) inside the synced write every produce request waits for. On the
// 2-core benchmark VM the seconds of a half-rate run with such a burst had a
// median p99 of 33.7 ms against 10.4 ms for the seconds without one.
//
// Retain fixes glibc's mmap threshold at its maximum (32 MiB), turns off
// trimming and keeps one arena, as GLIBC_TUNABLES=glibc.malloc.arena_max=1:
// glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=...
// would: a memtable then comes from the allocator's own heap, a freed one
// stays mapped for the next, and the next finds it whichever thread rotates
// the memtable (with an arena per thread, as glibc has by default, the
// thresholds alone still let a memtable be faulted in afresh in another
// thread's arena: measured, 4,036 faults for 16 MiB of resident memory). The
// cost is that the process's resident memory does not shrink after a peak
// of C allocations. Pebble bounds those: the block cache by its size,
// memtables by MemTableStopWritesThreshold.
package cmalloc
