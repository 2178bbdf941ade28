package main

import (
	"log/slog"
	"os"
	"runtime"

	"github.com/raftka/raftka/internal/cmalloc"
	"github.com/raftka/raftka/internal/heapbudget"
)

// runtimeTuning is how the process tunes the Go runtime for a broker.
type runtimeTuning struct {
	// HeapBudget is the heap goal heapbudget holds the process at; 0 leaves
	// garbage collection to the Go runtime.
	HeapBudget int64
	// MaxProcs is passed to runtime.GOMAXPROCS; 0 leaves it alone.
	MaxProcs int
	// RetainCMemory makes the C allocator keep freed memory (package
	// cmalloc), so that Pebble's memtables are not faulted in afresh.
	RetainCMemory bool
}

// The broker's heap is collected at a fixed budget, the way a JVM broker
// runs with a fixed heap: package heapbudget sets GOGC after every
// collection so that the next heap goal is the budget, whatever the live
// heap. The heap then cycles through the same mapped memory, and the
// runtime's scavenger never hands memory back to the host that the next
// cycle would fault in again. On a VM each of those page faults is a trip to
// the host, taken inside the copies of the produce path.
//
// Two earlier settings did hand memory back. Under GOGC=400 the goal was
// five times the live heap, which swings with the produce backlog: on the
// 2-core benchmark machine a backlog raised the live heap from about 80 to
// 290 MB, the goal followed to 1.4 GB, 40–90k page faults a second slowed
// every copy and Pebble's flushes fell behind until writes stopped; 19 of 24
// runs of `raftka bench produce --in-process 1 --rate 148000` (1 KiB, half
// the maximum rate) stalled so. Under GOGC=off and a 1.5 GiB memory limit,
// 1 of 14 did, but the goal sits 3% under the limit while the scavenger
// holds the process at 95% of it, so every cycle returned 16–37 MB that the
// next one faulted back in, and the slowest seconds of a run still came
// with thousands of page faults.
const (
	// heapBudgetShare is the share of the machine's memory (or of the
	// process's cgroup limit) that the default budget takes.
	heapBudgetShare = 8
	// minHeapBudget and maxHeapBudget bound the default budget. The cap is
	// not about memory: a larger heap made the produce tail slower, though
	// why is not fully known (the produce path's copies cost more: in CPU
	// profiles, memmove took 12.1 s at 1.5 GiB against 9.4 s at 384 MiB for
	// the same bytes). At half the maximum rate on the 2-core benchmark VM
	// (`raftka bench produce --in-process 1 --rate 148000`, 1 KiB), nine
	// interleaved runs each: a 1.5 GiB budget gave a median p99 of 26.4 ms
	// (2 runs with a stall), 768 MiB 15.0 ms (1 run with a stall). At
	// 384–512 MiB the calm seconds were as fast, but 2 of 6 runs stalled:
	// the large batches of a backlog need runs of free pages that a small
	// recycled heap lacks, so it grows into memory never faulted in.
	minHeapBudget int64 = 256 << 20
	maxHeapBudget int64 = 768 << 20
	// unknownMemHeapBudget is the budget when the machine's memory is unknown.
	unknownMemHeapBudget int64 = 512 << 20
)

// heapBudgetFor is the default heap budget on a machine (or cgroup) with
// mem bytes of memory; 0 means unknown.
func heapBudgetFor(mem int64) int64 {
	if mem <= 0 {
		return unknownMemHeapBudget
	}
	return min(max(mem/heapBudgetShare, minHeapBudget), maxHeapBudget)
}

// spareProcsBelow is the number of processors below which the broker runs
// with one more GOMAXPROCS than the machine has cores. Go polls the network
// only when a processor runs out of work (or from its monitor thread, every
// 10 ms): with as many processors as cores and CPU-bound goroutines on all
// of them (Pebble flushes and compactions, the load generator of an
// in-process bench), a connection whose data has arrived waits up to 10 ms,
// for every chunk of a large request. One spare processor sleeps in the
// poller and the kernel wakes it. More spares than that cost more than they
// give: each is another thread for the kernel to time-slice against the
// commit path, and idle processors spin looking for work.
//
// Measured on 2 cores with `raftka bench produce --in-process 1 --rate
// 120641` (RF=1, 1 KiB, acks=all, half the maximum rate), interleaved
// runs, whole-window p99: GOMAXPROCS 3 7.6–8.9 ms over 6 runs; 2 12.1 and
// 12.1 ms; 4 11.8 and 13.7 ms; 8 (the previous default) 10.2 ms once and
// 318–1,221 ms in 3 of 4 runs, where the heap's churn turned into page
// faults and write stalls; and 3 used 84–90% of a core against 86–110% at
// 8. The maximum rate is the same at 3 and 8 (264–266k records/s).
const spareProcsBelow = 8

// tuningFor returns the tuning for a process whose environment is getenv on
// a machine where the runtime chose procs processors and which has mem bytes
// of memory (0 if unknown). A setting the user made in the environment is
// left alone: GOGC or GOMEMLIMIT hands collection to the Go runtime's own
// reading of them, GOMAXPROCS the processors, GLIBC_TUNABLES or glibc's
// MALLOC_ variables the C allocator.
func tuningFor(getenv func(string) string, procs int, mem int64) runtimeTuning {
	var t runtimeTuning
	if getenv("GOGC") == "" && getenv("GOMEMLIMIT") == "" {
		t.HeapBudget = heapBudgetFor(mem)
	}
	if getenv("GOMAXPROCS") == "" && procs < spareProcsBelow {
		t.MaxProcs = procs + 1
	}
	t.RetainCMemory = cmalloc.Supported && !cmalloc.EnvSet(getenv)
	return t
}

// apply sets t on the running process. A heap budget is kept for the life
// of the process.
func (t runtimeTuning) apply() {
	if t.RetainCMemory {
		if err := cmalloc.Retain(); err != nil {
			slog.Warn("the C allocator is left as it is: Pebble's memtables may be faulted in afresh under load", "err", err)
		}
	}
	if t.HeapBudget != 0 {
		heapbudget.Start(t.HeapBudget, slog.Default())
	}
	if t.MaxProcs != 0 {
		runtime.GOMAXPROCS(t.MaxProcs)
	}
}

// tuneRuntime applies the broker's runtime tuning to this process.
func tuneRuntime() {
	tuningFor(os.Getenv, runtime.GOMAXPROCS(0), memoryOfProcess()).apply()
}
