package main

import (
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// runtimeTuning is how the process tunes the Go runtime for a broker.
type runtimeTuning struct {
	// GCPercent is passed to debug.SetGCPercent; 0 leaves it alone and
	// gcOff turns proportional collection off.
	GCPercent int
	// MemoryLimit is passed to debug.SetMemoryLimit; 0 leaves it alone.
	MemoryLimit int64
	// MaxProcs is passed to runtime.GOMAXPROCS; 0 leaves it alone.
	MaxProcs int
}

// gcOff is debug.SetGCPercent's value for GOGC=off.
const gcOff = -1

// The broker's heap is collected by a budget, the way a JVM broker runs
// with a fixed heap: proportional collection (GOGC) is off and the Go
// runtime collects when the heap reaches a memory limit (GOMEMLIMIT), so
// the heap stays mapped at the budget instead of following the live heap.
//
// Under GOGC, the heap goal is a multiple of the live heap. A broker's live
// heap is small (tens of MB: Pebble's caches and memtables are outside it)
// but swings with the produce backlog, and every swing down lets the
// runtime's scavenger hand memory back to the host, which the next swing up
// faults back in, one 4 KiB page at a time, inside the copies of the
// produce path. On the 2-core benchmark machine that is how a 200 ms hiccup
// became a multi-second write stall: a backlog raised the live heap from
// about 80 to 290 MB, the heap goal followed to 1.4 GB, 40–90k page faults a
// second slowed every copy (memmove of a produce request's batches went
// from 0.1 to 1–4 ms), Pebble's flushes fell behind and writes stopped.
// With the heap held at a budget, a backlog finds its memory already
// mapped. Measured with `raftka bench produce --in-process 1 --rate 148000`
// (1 KiB, half the maximum rate; BENCHMARKS.md): at the previous GOGC=400,
// 19 of 24 runs stalled (whole-run p99 409–1,394 ms; the other five
// 7.4–22.5); with a 1.5 GiB budget 1 of 14 did, for one second (p99 27.0
// ms; the others 12.0–17.8); with 2 GiB 1 of 13 did, and the others' p99
// was a little higher (12.9–36 ms). The maximum rate did not change (274.6k
// records/s against 273.3k).
const (
	// heapBudgetShare is the share of the machine's memory (or of the
	// process's cgroup limit) that the default budget takes.
	heapBudgetShare = 8
	// minHeapBudget and maxHeapBudget bound the default budget.
	minHeapBudget int64 = 256 << 20
	maxHeapBudget int64 = 1536 << 20
	// guardHeapPerLive is the heap the guard allows per byte of live heap
	// once the budget is too small for it: the live heap must not approach
	// the limit, where the runtime would collect back to back. 4 is GOGC=300.
	guardHeapPerLive = 4
)

// heapBudgetFor is the default heap budget on a machine (or cgroup) with
// mem bytes of memory; 0 means unknown.
func heapBudgetFor(mem int64) int64 {
	if mem <= 0 {
		return 1 << 30
	}
	return min(max(mem/heapBudgetShare, minHeapBudget), maxHeapBudget)
}

// guardLimit is the memory limit for a live heap of live bytes under a
// limit of limit: limit itself unless the live heap has grown past a
// guardHeapPerLive-th of it. The limit only grows; a heap that was needed
// once stays mapped, as a JVM's does.
func guardLimit(limit, live int64) int64 {
	return max(limit, live*guardHeapPerLive)
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
// reading of them, GOMAXPROCS the processors.
func tuningFor(getenv func(string) string, procs int, mem int64) runtimeTuning {
	var t runtimeTuning
	if getenv("GOGC") == "" && getenv("GOMEMLIMIT") == "" {
		t.GCPercent = gcOff
		t.MemoryLimit = heapBudgetFor(mem)
	}
	if getenv("GOMAXPROCS") == "" && procs < spareProcsBelow {
		t.MaxProcs = procs + 1
	}
	return t
}

// apply sets t on the running process. With a heap budget it also starts
// the guard that raises the budget when the live heap outgrows it.
func (t runtimeTuning) apply() {
	if t.MemoryLimit != 0 {
		debug.SetMemoryLimit(t.MemoryLimit)
	}
	if t.GCPercent != 0 {
		debug.SetGCPercent(t.GCPercent)
	}
	if t.MaxProcs != 0 {
		runtime.GOMAXPROCS(t.MaxProcs)
	}
	if t.GCPercent == gcOff && t.MemoryLimit != 0 {
		go guardHeap(time.Second)
	}
}

// guardHeap raises the memory limit every period as the live heap grows
// (see guardLimit). It runs for the life of the process.
func guardHeap(period time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	for range time.Tick(period) {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return
		}
		live := int64(sample[0].Value.Uint64())
		limit := debug.SetMemoryLimit(-1)
		if next := guardLimit(limit, live); next != limit {
			debug.SetMemoryLimit(next)
			slog.Info("raised the Go heap budget", "live_bytes", live, "from_bytes", limit, "to_bytes", next)
		}
	}
}

// tuneRuntime applies the broker's runtime tuning to this process.
func tuneRuntime() {
	tuningFor(os.Getenv, runtime.GOMAXPROCS(0), memoryOfProcess()).apply()
}
