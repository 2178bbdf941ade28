package storage_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/raftka/raftka/storage"
)

// TestPebbleOnCommit checks that every commit of a non-empty batch reports
// its statistics, synced or not, that an empty synced batch reports none,
// and that WAL rotations are seen.
func TestPebbleOnCommit(t *testing.T) {
	var (
		mu  sync.Mutex
		got []storage.CommitStats
	)
	p, err := storage.OpenPebble(storage.PebbleOptions{
		Dir: t.TempDir(), Logger: testLogger, MemTableSize: 1 << 20,
		OnCommit: func(st storage.CommitStats) {
			mu.Lock()
			got = append(got, st)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	taken := func() []storage.CommitStats {
		mu.Lock()
		defer mu.Unlock()
		out := got
		got = nil
		return out
	}
	commit := func(sync bool, keys int, value []byte) {
		t.Helper()
		b := p.NewBatch()
		for i := range keys {
			if err := b.Set(fmt.Appendf(nil, "k%08d", i), value); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(sync); err != nil {
			t.Fatal(err)
		}
	}

	commit(false, 1, []byte("v"))
	commit(true, 1, []byte("v"))
	sts := taken()
	if len(sts) != 2 {
		t.Fatalf("%d commit reports for 2 commits", len(sts))
	}
	if sts[0].Synced || !sts[1].Synced {
		t.Errorf("synced flags %v, %v; want false, true", sts[0].Synced, sts[1].Synced)
	}
	for i, st := range sts {
		if st.Total <= 0 || st.SyncWait < 0 || st.SyncWait > st.Total {
			t.Errorf("commit %d: total %v, sync wait %v", i, st.Total, st.SyncWait)
		}
	}

	// An empty synced batch only syncs the WAL: nothing to report.
	commit(true, 0, nil)
	if sts := taken(); len(sts) != 0 {
		t.Errorf("empty batch reported %d commits", len(sts))
	}

	// Writing several memtables' worth rotates the WAL.
	value := bytes.Repeat([]byte("x"), 64<<10)
	var rotation bool
	for range 64 {
		commit(true, 1, value)
	}
	for _, st := range taken() {
		rotation = rotation || st.WALRotation > 0
	}
	if !rotation {
		t.Error("4 MiB through 1 MiB memtables: no commit saw a WAL rotation")
	}
}
