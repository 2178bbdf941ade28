// Package heapbudget holds a process's Go heap goal at a fixed budget, the
// way a JVM broker runs with a fixed heap, instead of letting the goal follow
// the live heap (GOGC) or sit at a memory limit (GOMEMLIMIT).
//
// Both of the Go runtime's own settings make a broker hand memory back to the
// operating system and fault it in again while it serves produce requests,
// and on a VM each of those page faults is a trip to the host:
//
//   - Under GOGC the heap goal is a multiple of the live heap, which swings
//     with the produce backlog. When the goal falls after a swing, the
//     scavenger returns the memory above it, and the next swing faults it
//     back in inside the copies of the produce path.
//   - Under a memory limit with GOGC off, the goal sits just under the limit
//     (3% of headroom) while the scavenger keeps the process's memory at 95%
//     of it, so every cycle the scavenger returns a few percent of the heap
//     that the allocator then faults back in, and an allocation at the limit
//     makes the allocator return as much as it takes.
//
// A Budget instead sets GOGC after every collection so that the next goal is
// the budget: the heap cycles through the same mapped memory, the goal does
// not move, and the scavenger (which retains about 10% above the last goal)
// has nothing to return. When the live heap outgrows half the budget, the
// goal becomes twice the live heap (GOGC 100, Go's default), so a large live
// heap is neither collected back to back nor allowed a multiple of itself: a
// process that keeps everything it is sent, such as `raftka bench --kfake`
// with franz-go's in-memory broker, was killed for memory at four times.
//
// A Budget learns of each collection from a cleanup attached to a sentinel
// object that only the collector can reclaim: the cleanup runs once per
// cycle, after marking, when the live heap of that cycle is known. This is
// the technique of TiDB's gctuner.
package heapbudget

import (
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

const (
	// LivePerGoal is the smallest heap goal allowed per byte of live heap:
	// the goal is at least this many times the live heap (GOGC 100), so a
	// live heap close to the budget is not collected back to back.
	LivePerGoal = 2
	// minLive is the live heap assumed when the runtime reports less, such
	// as before the first collection: the runtime's own minimum heap.
	minLive = 4 << 20
)

// PercentFor returns the GOGC that makes the heap goal equal to budget, or
// LivePerGoal times the live heap if that is larger, after a collection that
// left live bytes of heap live and scanned scan bytes (live heap, stacks
// and globals). The runtime's goal is live + scan×GOGC/100.
func PercentFor(budget, live, scan int64) int {
	live = max(live, minLive)
	scan = max(scan, live)
	goal := max(budget, LivePerGoal*live)
	pct := float64(goal-live) / float64(scan) * 100
	return int(min(pct, math.MaxInt32))
}

// Budget keeps the heap goal of this process at a budget (see the package
// documentation). Create it with Start; it runs until Stop.
type Budget struct {
	budget int64
	log    *slog.Logger

	mu struct {
		sync.Mutex
		// stopped is set by Stop; the cleanup chain then ends.
		stopped bool
		// percent is the GOGC last set.
		percent int
		// over is set while the live heap needs a goal above the budget,
		// so that crossing the budget is logged once each way.
		over bool
	}
}

// sentinel is the object whose reclamation marks a collection. It holds a
// pointer so that it is never a tiny allocation, which the runtime batches
// with others and may keep alive.
type sentinel struct {
	_ *byte
	_ [16]byte
}

// Start sets GOGC so that the heap goal is budget bytes and keeps it there
// after every collection. log receives a message when the live heap pushes
// the goal above the budget and when it falls back; nil means slog.Default().
func Start(budget int64, log *slog.Logger) *Budget {
	if log == nil {
		log = slog.Default()
	}
	b := &Budget{budget: budget, log: log}
	b.retune()
	b.arm()
	return b
}

// Stop ends the tuning after the next collection. GOGC keeps its last value.
func (b *Budget) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.stopped = true
}

// Percent returns the GOGC last set.
func (b *Budget) Percent() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.percent
}

// arm attaches the next cycle's cleanup to a fresh sentinel, which nothing
// references once arm returns.
func (b *Budget) arm() {
	runtime.AddCleanup(new(sentinel), func(b *Budget) {
		if b.retune() {
			b.arm()
		}
	}, b)
}

// retune sets GOGC for the live heap the last collection left. It reports
// false once stopped.
func (b *Budget) retune() bool {
	samples := []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}
	metrics.Read(samples)
	var v [3]int64
	for i, s := range samples {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = int64(s.Value.Uint64())
		}
	}
	live := v[0]
	pct := PercentFor(b.budget, live, live+v[1]+v[2])
	over := LivePerGoal*live > b.budget

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.stopped {
		return false
	}
	if pct != b.mu.percent {
		debug.SetGCPercent(pct)
		b.mu.percent = pct
	}
	if over != b.mu.over {
		b.mu.over = over
		if over {
			b.log.Info("the live heap needs more than the Go heap budget", "live_bytes", live,
				"budget_bytes", b.budget, "goal_bytes", LivePerGoal*live)
		} else {
			b.log.Info("the Go heap is back within its budget", "live_bytes", live, "budget_bytes", b.budget)
		}
	}
	return true
}
