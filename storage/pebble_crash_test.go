package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/raftka/raftka/storage"
	"github.com/raftka/raftka/storage/storagetest"
)

// crashBatchValue is the value of record j of batch i: recognisable, and
// long enough that a few hundred batches overflow a 1 MiB memtable, so that
// crashes also land around flushes.
func crashBatchValue(i, j int) []byte {
	prefix := fmt.Sprintf("batch=%d record=%d ", i, j)
	return append([]byte(prefix), bytes.Repeat([]byte{byte('a' + (i+j)%26)}, 600)...)
}

func crashBatchKey(i, j int) string { return fmt.Sprintf("b%05d/%02d", i, j) }

// crashPoint is a crash clone of the filesystem and what had been committed
// when it was taken.
type crashPoint struct {
	fs *vfs.MemFS
	// committed is how many batches had committed.
	committed int
	// synced is how many batches were durable: every batch up to and
	// including the last one committed with sync=true.
	synced int
}

// TestPebbleCrashKeepsSyncedPrefix writes batches, some synced, takes crash
// clones of the filesystem as it goes, and checks that each clone reopens to
// an atomic prefix of the batches that contains every synced batch.
func TestPebbleCrashKeepsSyncedPrefix(t *testing.T) {
	t.Parallel()
	for _, unsynced := range []int{0, 50, 100} {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("unsynced=%d/seed=%d", unsynced, seed), func(t *testing.T) {
				t.Parallel()
				runCrashTest(t, unsynced, seed)
			})
		}
	}
}

func runCrashTest(t *testing.T, unsyncedPercent int, seed uint64) {
	const batches = 300
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	fs := vfs.NewCrashableMem()
	p, err := storage.OpenPebble(storage.PebbleOptions{
		Dir: "db", FS: fs, Logger: testLogger, MemTableSize: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	sizes := make([]int, batches)
	var points []crashPoint
	synced := 0
	for i := range batches {
		sizes[i] = 1 + rng.IntN(12)
		sync := rng.IntN(5) == 0
		storagetest.Apply(t, p, sync, func(b storage.Batch) error {
			for j := range sizes[i] {
				if err := b.Set([]byte(crashBatchKey(i, j)), crashBatchValue(i, j)); err != nil {
					return err
				}
			}
			// Every batch overwrites one shared key, so a clone must
			// also agree on which batch was last.
			return b.Set([]byte("last"), []byte(fmt.Sprint(i)))
		})
		if sync {
			synced = i + 1
		}
		if rng.IntN(40) == 0 || i == batches-1 {
			clone := fs.CrashClone(vfs.CrashCloneCfg{
				UnsyncedDataPercent: unsyncedPercent,
				RNG:                 rand.New(rand.NewPCG(seed, uint64(i))),
			})
			points = append(points, crashPoint{fs: clone, committed: i + 1, synced: synced})
		}
	}
	for _, cp := range points {
		checkCrashClone(t, cp, sizes)
	}
}

// checkCrashClone reopens a crash clone and checks its contents.
//
// Even a clone keeping all unsynced file data may lack the latest unsynced
// batches: Pebble buffers them in memory before writing the WAL.
func checkCrashClone(t *testing.T, cp crashPoint, sizes []int) {
	t.Helper()
	p, err := storage.OpenPebble(storage.PebbleOptions{Dir: "db", FS: cp.fs, Logger: testLogger})
	if err != nil {
		t.Fatalf("crash after %d batches: reopen: %v", cp.committed, err)
	}
	defer p.Close()

	present := make([]int, len(sizes)) // records of each batch found
	var last string
	for _, kv := range storagetest.Scan(t, p, nil, nil, false) {
		if kv.Key == "last" {
			last = kv.Value
			continue
		}
		var i, j int
		if _, err := fmt.Sscanf(kv.Key, "b%05d/%02d", &i, &j); err != nil || i >= len(sizes) || j >= sizes[i] {
			t.Fatalf("crash after %d batches: unexpected key %q", cp.committed, kv.Key)
		}
		if !bytes.Equal([]byte(kv.Value), crashBatchValue(i, j)) {
			t.Fatalf("crash after %d batches: key %q has a corrupt value %.40q", cp.committed, kv.Key, kv.Value)
		}
		present[i]++
	}

	// The surviving batches must be a prefix [0, n), each all or nothing.
	n := 0
	for n < len(sizes) && present[n] == sizes[n] {
		n++
	}
	for i := range sizes {
		switch {
		case i < n:
		case present[i] != 0 && present[i] != sizes[i]:
			t.Fatalf("crash after %d batches: batch %d is torn: %d of %d records", cp.committed, i, present[i], sizes[i])
		case present[i] != 0:
			t.Fatalf("crash after %d batches: batch %d survived but batch %d did not", cp.committed, i, n)
		}
	}
	if n < cp.synced {
		t.Fatalf("crash after %d batches: only %d survived; %d were synced", cp.committed, n, cp.synced)
	}
	if n > cp.committed {
		t.Fatalf("crash after %d batches: %d survived", cp.committed, n)
	}
	if wantLast := fmt.Sprint(n - 1); n > 0 && last != wantLast {
		t.Fatalf("crash after %d batches: last = %q; want %q", cp.committed, last, wantLast)
	}
}

// TestPebbleEmptySyncedBatchSyncsEarlierWrites checks that committing an
// empty batch with sync=true makes earlier unsynced batches durable, which
// Pebble alone would skip.
func TestPebbleEmptySyncedBatchSyncsEarlierWrites(t *testing.T) {
	t.Parallel()
	fs := vfs.NewCrashableMem()
	p := openPebble(t, fs, "db")
	defer p.Close()
	storagetest.Set(t, p, "unsynced", "1")
	lost := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	storagetest.Apply(t, p, true, func(storage.Batch) error { return nil })
	kept := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})

	q := openPebble(t, lost, "db")
	storagetest.WantAbsent(t, q, "unsynced") // otherwise the test proves nothing
	q.Close()
	q = openPebble(t, kept, "db")
	defer q.Close()
	if got := storagetest.MustGet(t, q, "unsynced"); got != "1" {
		t.Fatalf("get after crash = %q", got)
	}
}

// TestPebbleWALWriteErrorFailsCommit injects an error into every write and
// sync of the WAL and checks that a synced Commit reports it rather than
// succeeding, and that the engine then refuses further work.
//
// The batches are small on purpose: Pebble treats a WAL failure as fatal,
// and one met while rotating the WAL (when a memtable fills) panics inside
// Pebble with its mutex released, which crashes the process. That is an
// acceptable fail-stop for a broker but cannot be tested in process.
func TestPebbleWALWriteErrorFailsCommit(t *testing.T) {
	t.Parallel()
	for _, unsyncedFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("unsyncedFirst=%v", unsyncedFirst), func(t *testing.T) {
			t.Parallel()
			walErr := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
				if strings.HasSuffix(op.Path, ".log") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
					return errorfs.ErrInjected
				}
				return nil
			})}
			p := openPebble(t, errorfs.Wrap(vfs.NewMem(), walErr), "db")
			storagetest.Set(t, p, "before", "1")
			walErr.On()

			if unsyncedFirst {
				// An unsynced commit may return before its write fails;
				// whatever it returns, the synced commit below must fail.
				b := p.NewBatch()
				_ = b.Set([]byte("unsynced"), []byte("1"))
				_ = b.Commit(false)
				b.Close()
			}
			b := p.NewBatch()
			_ = b.Set([]byte("synced"), []byte("1"))
			err := b.Commit(true)
			b.Close()
			if err == nil {
				t.Fatal("synced commit succeeded while every WAL write failed")
			}
			if !strings.Contains(err.Error(), "injected") {
				t.Errorf("commit error %q does not carry the injected error", err)
			}
			if _, gerr := p.Get([]byte("before")); gerr == nil {
				t.Fatal("get succeeded on an engine whose commit pipeline failed")
			}
			if cerr := p.Close(); cerr == nil || errors.Is(cerr, storage.ErrClosed) {
				t.Fatalf("close of a failed engine = %v; want the failure", cerr)
			}
		})
	}
}
