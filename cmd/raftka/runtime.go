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

// minMaxProcs is the smallest GOMAXPROCS the broker runs with. Go polls
// the network only when a processor runs out of work (or from its monitor
// thread, every 10 ms): with as many processors as cores and CPU-bound
// goroutines on all of them (Pebble flushes and compactions, the load
// generator of an in-process bench), a connection whose data has arrived
// waits up to 10 ms, for every chunk of a large request. With spare
// processors an idle one sleeps in the poller and the kernel wakes it. On
// 2 cores, a 1 MB loopback transfer beside 2 spinning goroutines took p99
// 21 ms at GOMAXPROCS=2 and 3 ms at 8; the bench above, with GOGC 400:
// p99 12.3–16.4 ms at 2, 9.3–12.3 ms at 8 (3 interleaved runs each). The
// price is idle CPU: `raftka bench partitions --in-process 3 --replicas 3
// --count 2000` measured 3.5–3.9% of a core per broker at 2 and 3.9–4.5%
// at 8 (2 interleaved runs each).
const minMaxProcs = 8

// tuningFor returns the tuning for a process whose environment is getenv on
// a machine where the runtime chose procs processors. A setting the user
// made in the environment (GOGC, GOMAXPROCS) is left alone.
func tuningFor(getenv func(string) string, procs int) runtimeTuning {
	var t runtimeTuning
	if getenv("GOGC") == "" {
		t.GCPercent = defaultGCPercent
	}
	if getenv("GOMAXPROCS") == "" && procs < minMaxProcs {
		t.MaxProcs = minMaxProcs
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
