package storage

import (
	"log/slog"
	"sync/atomic"
)

// Pebble's flushes and compactions run at a lower CPU priority than the rest
// of the process, where the system allows it (Linux): the goroutine of each
// flush and compaction locks itself to its OS thread when it begins and
// raises that thread's nice value. On a small machine a flush costs about a
// core for as long as it copies and checksums a memtable into a blob file,
// and when the cores are also busy with the produce path (connections, the
// Raft scheduler, the WAL's synced writes) the kernel would otherwise share
// them evenly, so every synced log write waits its turn behind the flush.
// With a higher nice value the flush runs in the idle time the commit path
// leaves, which on a broker below its maximum rate is most of a core.
// RocksDB offers the same for its background threads
// (Env::LowerThreadPoolCPUPriority).
//
// The goroutine stays locked to its thread until it exits, and Go ends a
// thread whose goroutine exits locked, so the lowered priority never passes
// to other goroutines. That also means the thread is never given back its
// priority, which an unprivileged process could not do anyway (Linux lets it
// raise its nice value, not lower it). Pebble runs every flush and
// compaction on a goroutine of its own (pebble v2.1.7, DB.flush and
// DB.compact); were that to change, the goroutines reusing the thread would
// stay on it at the lower priority, and nothing else would.

// DefaultBackgroundNice is the nice value flushes and compactions run at.
// Linux weighs a thread at nice 10 about a tenth of one at 0: when the cores
// are contended a flush gets little, and when they are not it runs at full
// speed. Measured with `raftka bench produce --in-process 1 --rate 140000`
// (RF=1, 1 KiB, half the maximum rate, 2 cores, 90 s of warm-up),
// interleaved, whole-window p99: at nice 10 a median of 10.1 ms over 10
// runs (6.1–185), at the process's priority 14.1 ms (8.6–515); at nice 19
// 5.9, 8.0 and 925 ms (three runs; in the last the produce rate fell to
// half for two seconds and resident memory grew by 300 MB, a collapse seen at
// every setting, so 19 is not ruled out, only not shown better). See
// BENCHMARKS.md.
const DefaultBackgroundNice = 10

// lowerThreadPriority locks the calling goroutine to its OS thread and sets
// that thread's nice value to nice, unless it is already at least that. It
// is a variable so that a test can observe the calls.
var lowerThreadPriority = setThreadNice

// backgroundPriority returns the function Pebble's FlushBegin and
// CompactionBegin events call: it lowers the calling goroutine's priority to
// nice, logging (once) if the system refuses. Nil if nice is off (<= 0).
func backgroundPriority(nice int, log *slog.Logger) func() {
	if nice <= 0 {
		return nil
	}
	var warned atomic.Bool
	return func() {
		if err := lowerThreadPriority(nice); err != nil && warned.CompareAndSwap(false, true) {
			log.Warn("flushes and compactions run at the process's priority: the system refused a lower one", "nice", nice, "err", err)
		}
	}
}
