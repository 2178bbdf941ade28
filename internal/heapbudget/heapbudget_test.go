package heapbudget

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/raftka/raftka/internal/syncbuf"
)

// These tests change the GOGC of their own test binary: they run one at a
// time, and each restores GOGC when it ends.

const mib = int64(1) << 20

func TestPercentFor(t *testing.T) {
	cases := []struct {
		name               string
		budget, live, scan int64
		want               int
	}{
		{"small live heap", 1536 * mib, 100 * mib, 100 * mib, 1436},
		{"stacks and globals count as scanned", 1536 * mib, 100 * mib, 200 * mib, 718},
		{"before the first collection", 1536 * mib, 0, 0, 38300},
		{"live heap at a quarter of the budget", 1024 * mib, 256 * mib, 256 * mib, 300},
		{"live heap at half the budget", 1024 * mib, 512 * mib, 512 * mib, 100},
		{"live heap past half the budget", 1024 * mib, 768 * mib, 768 * mib, 100},
	}
	for _, c := range cases {
		if got := PercentFor(c.budget, c.live, c.scan); got != c.want {
			t.Errorf("%s: PercentFor(%d MiB, %d MiB, %d MiB) = %d, want %d",
				c.name, c.budget/mib, c.live/mib, c.scan/mib, got, c.want)
		}
	}
}

// readUint64 reads one uint64 runtime metric.
func readUint64(t *testing.T, name string) int64 {
	t.Helper()
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("metric %s is not a uint64", name)
	}
	return int64(s[0].Value.Uint64())
}

// sink keeps allocations from being optimized away.
var sink []byte

// liveBytes allocates n bytes for the caller to keep reachable.
func liveBytes(n int64) [][]byte {
	keep := make([][]byte, 0, n/mib)
	for range n / mib {
		keep = append(keep, make([]byte, mib))
	}
	return keep
}

// churnTimeout bounds churn. It is generous: under -race on a loaded 2-core
// CI machine, the first cycles through a 256 MiB goal, each page faulted in
// fresh, once took over 30 s for two collections (0.3–2.6 s when idle).
const churnTimeout = 2 * time.Minute

// churn allocates garbage until n more collections have completed and
// returns the heap goal then. The caller keeps its live bytes reachable.
func churn(t *testing.T, n int64) int64 {
	t.Helper()
	target := readUint64(t, "/gc/cycles/total:gc-cycles") + n
	deadline := time.Now().Add(churnTimeout)
	for readUint64(t, "/gc/cycles/total:gc-cycles") < target {
		if time.Now().After(deadline) {
			t.Fatalf("%d collections did not happen in %v", n, churnTimeout)
		}
		for range 64 {
			sink = make([]byte, 64<<10)
		}
	}
	return readUint64(t, "/gc/heap/goal:bytes")
}

// waitGoal churns until the heap goal is within 10% of want, with keep (of
// live bytes) reachable throughout.
func waitGoal(t *testing.T, keep [][]byte, live, want int64) {
	t.Helper()
	var goal int64
	for range 20 {
		goal = churn(t, 1)
		if goal >= want*9/10 && goal <= want*11/10 {
			runtime.KeepAlive(keep)
			return
		}
	}
	t.Fatalf("heap goal %d MiB with %d MiB live, want about %d MiB", goal/mib, live/mib, want/mib)
}

// waitLog waits for logs to contain msg. The cleanup that retunes sets
// GOGC before it logs, so a test that has just seen the new goal may be
// ahead of the message.
func waitLog(t *testing.T, logs *syncbuf.Buffer, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("%q was not logged:\n%s", msg, logs.String())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBudgetHoldsTheHeapGoal(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	runtime.GC()
	var logs syncbuf.Buffer
	const budget = 256 * mib
	b := Start(budget, slog.New(slog.NewTextHandler(&logs, nil)))
	defer b.Stop()

	// A small live heap: the goal is the budget, not a multiple of it.
	// Each phase keeps its live bytes until the next phase has allocated
	// its own, so that no collection in between sees a different heap.
	small := liveBytes(4 * mib)
	waitGoal(t, small, 4*mib, budget)
	medium := liveBytes(12 * mib)
	small = nil
	waitGoal(t, medium, 12*mib, budget)

	// A live heap past half the budget gets twice itself. The goal was
	// just the budget, so the crossing is logged from here on.
	logs.Reset()
	large := liveBytes(200 * mib)
	medium = nil
	waitGoal(t, large, 200*mib, LivePerGoal*200*mib)
	waitLog(t, &logs, "needs more than the Go heap budget")
	// And back.
	logs.Reset()
	small = liveBytes(4 * mib)
	large = nil
	waitGoal(t, small, 4*mib, budget)
	waitLog(t, &logs, "back within its budget")
	runtime.KeepAlive(medium)
	runtime.KeepAlive(large)
}

func TestBudgetStop(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	runtime.GC()
	runtime.GC() // the live heap of earlier tests is gone
	// A small budget keeps the collections after Stop cheap.
	b := Start(32*mib, slog.New(slog.DiscardHandler))
	if p := b.Percent(); p <= 100 {
		t.Fatalf("GOGC %d right after Start, want the budget's (well above 100)", p)
	}
	b.Stop()
	churn(t, 2) // the chain ends at the first collection after Stop
	debug.SetGCPercent(100)
	// A running chain sets GOGC only when its figure changes, so change the
	// live heap: a chain still running would now set about 300.
	keep := liveBytes(8 * mib)
	churn(t, 3)
	runtime.KeepAlive(keep)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC is %d after Stop, want the 100 set after it", got)
	}
}
