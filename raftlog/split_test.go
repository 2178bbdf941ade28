package raftlog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/raftka/raftka/storage"
)

// sizedEngine is a faultEngine that asks for batches of at most max bytes.
type sizedEngine struct {
	*faultEngine
	max int
}

func (e sizedEngine) MaxBatchBytes() int { return e.max }

var _ storage.BatchSizer = sizedEngine{}

// TestSchedulerSplitsLargeLogWrites holds one pass's log write while seven
// more groups propose 40 KiB each, so that the next pass has about 280 KiB
// to write to an engine that takes 64 KiB batches. The pass must write it in
// parts that never put two groups over the limit nor one group in two parts,
// sync only the last, and lose nothing acknowledged in a crash.
func TestSchedulerSplitsLargeLogWrites(t *testing.T) {
	t.Parallel()
	const groups, limit = 8, 64 << 10
	fs := vfs.NewCrashableMem()
	pe := openPebbleOn(t, fs)
	t.Cleanup(func() { _ = pe.Close() })
	eng := sizedEngine{faultEngine: newFaultEngine(pe), max: limit}
	rs := startScheduler(t, testConfig(1), eng, nil)
	parts := make([]*Partition, groups)
	for i := range parts {
		parts[i] = openLeaderPartition(t, rs.Scheduler, uint64(700+i))
	}
	marker := func(i int) string { return fmt.Sprintf("split-g%d-", i) }
	payload := func(i int) []byte { return plainBatch(marker(i)+strings.Repeat("x", 40<<10), 1).build() }

	type commit struct {
		sync   bool
		len    int
		groups []int
	}
	var (
		mu      sync.Mutex
		commits []commit
		hold    = make(chan struct{})
		held    = make(chan struct{})
		once    sync.Once
	)
	eng.setBeforeCommit(func(b *faultBatch) error {
		c := commit{len: b.Len()}
		for i := range groups {
			if b.setsValueContaining(marker(i)) {
				c.groups = append(c.groups, i)
			}
		}
		if len(c.groups) == 0 {
			return nil
		}
		if c.groups[0] == 0 {
			once.Do(func() { close(held); <-hold })
		}
		mu.Lock()
		commits = append(commits, c)
		mu.Unlock()
		return nil
	})
	// Record whether each commit was synced: faultBatch's hook cannot see
	// it, so count syncs through the scheduler's metric instead and check
	// the shape below.
	_, _, syncs0 := schedulerCounters(t, rs.Scheduler)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var waits []func(context.Context) (AppendResult, error)
	w, err := parts[0].AppendAsync(payload(0))
	if err != nil {
		t.Fatal(err)
	}
	waits = append(waits, w)
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the first log write never came")
	}
	for i := 1; i < groups; i++ {
		w, err := parts[i].AppendAsync(payload(i))
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, w)
	}
	close(hold)
	for i, w := range waits {
		if r, err := w(ctx); err != nil || r.Err != nil || r.BaseOffset != 0 {
			t.Fatalf("group %d: %+v, %v", i, r, err)
		}
	}

	if n := schedulerMetric(t, rs.Scheduler, "raftka_raft_log_split_writes_total"); n < 1 {
		t.Errorf("no pass split its log write (split writes %v)", n)
	}
	_, _, syncs1 := schedulerCounters(t, rs.Scheduler)
	mu.Lock()
	seen := make(map[int]int)
	for _, c := range commits {
		if len(c.groups) > 1 && c.len > limit {
			t.Errorf("a commit of %d bytes carried groups %v, over the %d-byte limit", c.len, c.groups, limit)
		}
		for _, g := range c.groups {
			seen[g]++
		}
	}
	t.Logf("%d log commits carrying payloads, %v synced log writes", len(commits), syncs1-syncs0)
	if len(commits) < 3 {
		t.Errorf("%d commits carried the 8 payloads; want the second pass split into several", len(commits))
	}
	mu.Unlock()
	for i := range groups {
		if seen[i] != 1 {
			t.Errorf("group %d's entry was in %d commits, want 1", i, seen[i])
		}
	}
	// Fewer syncs than commits: the parts of a pass share its one sync.
	if syncs1-syncs0 >= float64(len(commits)) {
		t.Errorf("%v syncs for %d log commits: the parts were synced one by one", syncs1-syncs0, len(commits))
	}

	// A crash that drops everything unsynced keeps every acknowledged entry:
	// the last part's sync made the earlier parts durable.
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0, RNG: rand.New(rand.NewPCG(1, 2))})
	if err := rs.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := pe.Close(); err != nil {
		t.Fatal(err)
	}
	eng2 := openPebbleOn(t, crashed)
	t.Cleanup(func() { _ = eng2.Close() })
	rs2 := startScheduler(t, testConfig(1), eng2, nil)
	for i := range groups {
		p, err := OpenPartition(rs2.Scheduler, uint64(700+i), testLogger())
		if err != nil {
			t.Fatal(err)
		}
		waitPartition(t, p, "high watermark 1", func(o Offsets) bool { return o.HighWatermark >= 1 })
		out, err := p.Read(nil, 0, 1<<20)
		if err != nil {
			t.Fatalf("group %d after crash: %v", i, err)
		}
		bs, _, err := ParseBatches(out)
		if err != nil || len(bs) != 1 {
			t.Fatalf("group %d after crash: %d batches, %v", i, len(bs), err)
		}
		if v := string(decodeRecords(t, bs[0])[0].Value); !strings.HasPrefix(v, marker(i)) {
			t.Fatalf("group %d after crash holds %.20q, want %q...", i, v, marker(i))
		}
	}
}
