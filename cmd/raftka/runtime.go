package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// runtimeTuning is how the process tunes the Go runtime for a broker.
type runtimeTuning struct {
	// GCPercent is passed to debug.SetGCPercent; 0 leaves it alone.
	GCPercent int
	// MaxProcs is passed to runtime.GOMAXPROCS; 0 leaves it alone.
	MaxProcs int
}

// defaultGCPercent lets the heap grow to five times the live data between
// collections instead of twice. A broker's live heap is small (tens of
// MB: caches live in Pebble's manually managed memory) while it allocates
// hundreds of MB/s of short-lived request and entry buffers; collecting
// less often means fewer assists stealing time from the produce path.
// Measured with `raftka bench produce --in-process 1 --rate 148000` (1 KiB,
// half the maximum rate) on 2 cores with GOMAXPROCS 8: p99 22–49 ms at the
// default 100 (4 runs), 11–13 ms at 400 (3 runs); it also halves the page
// faults of reusing freed memory, which on a VM cost a host round trip.
const defaultGCPercent = 400

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
// a machine where the runtime chose procs processors. A setting the user
// made in the environment (GOGC, GOMAXPROCS) is left alone.
func tuningFor(getenv func(string) string, procs int) runtimeTuning {
	var t runtimeTuning
	if getenv("GOGC") == "" {
		t.GCPercent = defaultGCPercent
	}
	if getenv("GOMAXPROCS") == "" && procs < spareProcsBelow {
		t.MaxProcs = procs + 1
	}
	return t
}

// apply sets t on the running process.
func (t runtimeTuning) apply() {
	if t.GCPercent != 0 {
		debug.SetGCPercent(t.GCPercent)
	}
	if t.MaxProcs != 0 {
		runtime.GOMAXPROCS(t.MaxProcs)
	}
}

// tuneRuntime applies the broker's runtime tuning to this process.
func tuneRuntime() { tuningFor(os.Getenv, runtime.GOMAXPROCS(0)).apply() }
