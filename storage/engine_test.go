package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/raftka/raftka/storage"
	"github.com/raftka/raftka/storage/storagetest"
)

// testLogger discards Pebble's logging.
var testLogger = slog.New(slog.DiscardHandler)

// openPebble opens a Pebble engine on fs in dir, failing t on error.
func openPebble(t testing.TB, fs vfs.FS, dir string) *storage.Pebble {
	t.Helper()
	p, err := storage.OpenPebble(storage.PebbleOptions{Dir: dir, FS: fs, Logger: testLogger})
	if err != nil {
		t.Fatalf("open pebble: %v", err)
	}
	return p
}

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	storagetest.RunConformance(t, func(t *testing.T) storage.Engine { return storage.NewMemory() })
}

func TestPebbleConformance(t *testing.T) {
	t.Parallel()
	t.Run("MemFS", func(t *testing.T) {
		t.Parallel()
		storagetest.RunConformance(t, func(t *testing.T) storage.Engine {
			return openPebble(t, vfs.NewMem(), "db")
		})
	})
	t.Run("Disk", func(t *testing.T) {
		t.Parallel()
		storagetest.RunConformance(t, func(t *testing.T) storage.Engine {
			return openPebble(t, nil, t.TempDir())
		})
	})
}

func TestPebbleReopenKeepsData(t *testing.T) {
	t.Parallel()
	fs := vfs.NewMem()
	p := openPebble(t, fs, "db")
	storagetest.Set(t, p, "a", "1")
	storagetest.Set(t, p, "b", "2")
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	// These live only in the WAL until the reopen replays it.
	storagetest.Apply(t, p, true, func(b storage.Batch) error {
		return errors.Join(b.Set([]byte("c"), []byte("3")), b.DeleteRange([]byte("a"), []byte("b")))
	})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	p = openPebble(t, fs, "db")
	defer p.Close()
	got := storagetest.Scan(t, p, nil, nil, false)
	want := []storagetest.KV{{Key: "b", Value: "2"}, {Key: "c", Value: "3"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("after reopen: %v; want %v", got, want)
	}
	m, err := p.Metrics()
	if err != nil || m == nil {
		t.Fatalf("metrics: %v", err)
	}
}

func TestPebbleReadsFromSSTables(t *testing.T) {
	t.Parallel()
	p := openPebble(t, vfs.NewMem(), "db")
	defer p.Close()
	storagetest.Set(t, p, "a", "1")
	it, err := p.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	storagetest.Set(t, p, "b", "2")
	if got := storagetest.MustGet(t, p, "a"); got != "1" {
		t.Fatalf("get a from sstable = %q", got)
	}
	if !it.First() || string(it.Key()) != "a" || it.Next() {
		t.Fatal("iterator opened before the flush lost its snapshot")
	}
}

func TestPebbleOptionsValidate(t *testing.T) {
	t.Parallel()
	var o storage.PebbleOptions
	o.EnsureDefaults()
	o.MemTableSize = 1
	o.L0CompactionThreshold = 10
	o.L0StopWritesThreshold = 5
	o.MaxBlobReferenceDepth = -1
	o.L0TargetFileSize = 1
	err := o.Validate()
	if err == nil {
		t.Fatal("invalid options passed")
	}
	for _, want := range []string{"Dir", "MemTableSize", "L0StopWritesThreshold", "MaxBlobReferenceDepth", "L0TargetFileSize"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := storage.OpenPebble(storage.PebbleOptions{}); err == nil {
		t.Fatal("OpenPebble without a Dir succeeded")
	}
	o = storage.PebbleOptions{Dir: "db"}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

// TestPebbleSeparatedValuesSurviveCompactionAndReopen writes log-like data —
// large values under ordered keys, overwrites and prefix deletions — through
// enough flushes that values land in blob files and compactions run, then
// checks every key before and after reopening.
func TestPebbleSeparatedValuesSurviveCompactionAndReopen(t *testing.T) {
	t.Parallel()
	fs := vfs.NewMem()
	open := func() *storage.Pebble {
		p, err := storage.OpenPebble(storage.PebbleOptions{Dir: "db", FS: fs, Logger: testLogger, MemTableSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := open()
	value := func(i, gen int) []byte {
		v := bytes.Repeat([]byte{byte(i), byte(gen)}, 2048)
		return append(v, fmt.Sprintf("key %d gen %d", i, gen)...)
	}
	want := map[string][]byte{}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		b := p.NewBatch()
		for range 64 {
			i := rng.IntN(2000)
			k := fmt.Sprintf("log/%06d", i)
			v := value(i, round)
			if err := b.Set([]byte(k), v); err != nil {
				t.Fatal(err)
			}
			want[k] = v
		}
		if round%10 == 9 { // truncate a prefix, as log truncation does
			end := fmt.Sprintf("log/%06d", round*20)
			if err := b.DeleteRange([]byte("log/"), []byte(end)); err != nil {
				t.Fatal(err)
			}
			for k := range want {
				if k < end {
					delete(want, k)
				}
			}
		}
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
		b.Close()
	}
	m := flushMetrics(t, p)
	if m.BlobFiles.LiveCount == 0 {
		t.Errorf("no blob files after writing %d MiB of 4 KiB values: values were not separated", 40*64*4/1024)
	}
	if m.Compact.Count == 0 {
		t.Errorf("no compaction ran; the test no longer covers separated values being compacted")
	}
	check := func(p *storage.Pebble) {
		t.Helper()
		it, err := p.NewIter([]byte("log/"), []byte("log0"))
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		n := 0
		for ok := it.First(); ok; ok = it.Next() {
			if v, found := want[string(it.Key())]; !found || !bytes.Equal(v, it.Value()) {
				t.Fatalf("key %s: value of %d bytes, in model %v", it.Key(), len(it.Value()), found)
			}
			n++
		}
		if n != len(want) {
			t.Fatalf("%d keys, want %d", n, len(want))
		}
	}
	check(p)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = open()
	defer p.Close()
	check(p)
}

// TestPebbleAppendOnlyLogKeepsValuesInPlace appends to several interleaved
// logs, as partitions do, through many flushes and compactions, and checks
// that compactions carried the separated values forward instead of
// rewriting them (see DefaultPebbleMaxBlobReferenceDepth). The same
// workload with a shallow depth must rewrite them, or the test proves
// nothing.
func TestPebbleAppendOnlyLogKeepsValuesInPlace(t *testing.T) {
	t.Parallel()
	// blobBytes returns the value bytes flushes wrote to blob files and
	// those compactions rewrote (Pebble counts a flush's in both figures).
	blobBytes := func(depth int) (flushed, rewritten uint64) {
		p, err := storage.OpenPebble(storage.PebbleOptions{
			Dir: "db", FS: vfs.NewMem(), Logger: testLogger,
			MemTableSize: 1 << 20, L0TargetFileSize: 256 << 10, MaxBlobReferenceDepth: depth,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		value := bytes.Repeat([]byte{'v'}, 1024)
		const logs = 8
		var next [logs]int
		for range 400 {
			b := p.NewBatch()
			for l := range logs {
				for range 8 {
					if err := b.Set([]byte(fmt.Sprintf("log/%02d/%08d", l, next[l])), value); err != nil {
						t.Fatal(err)
					}
					next[l]++
				}
			}
			if err := b.Commit(false); err != nil {
				t.Fatal(err)
			}
			b.Close()
		}
		m := flushMetrics(t, p)
		if m.Compact.Count == 0 {
			t.Fatalf("depth %d: no compaction ran; the workload is too small to test anything", depth)
		}
		for _, l := range m.Levels {
			flushed += l.BlobBytesFlushed
			rewritten += l.BlobBytesCompacted
		}
		return flushed, rewritten - flushed
	}
	flushed, rewritten := blobBytes(0) // the default depth
	if flushed == 0 {
		t.Fatal("no values were separated into blob files")
	}
	if rewritten != 0 {
		t.Errorf("default depth: compactions rewrote %d bytes of values (flushes wrote %d); an append-only log should not be rewritten", rewritten, flushed)
	}
	if _, rewritten := blobBytes(2); rewritten == 0 {
		t.Errorf("depth 2: compactions rewrote no values; the workload no longer exercises the reference depth")
	}
}

// flushMetrics flushes p's memtable and returns Pebble's metrics after it.
func flushMetrics(t *testing.T, p *storage.Pebble) *pebble.Metrics {
	t.Helper()
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := p.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	return m
}
