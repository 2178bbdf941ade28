package storage_test

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/raftka/raftka/storage"
)

// benchValueSize is the size of one record, about a small Kafka batch.
const benchValueSize = 1 << 10

// benchKey is a Raft-log-like key: a fixed prefix and a big-endian index, so
// writes append in key order.
func benchKey(buf []byte, i uint64) []byte {
	buf = append(buf[:0], "log/0001/"...)
	return binary.BigEndian.AppendUint64(buf, i)
}

// BenchmarkPebbleSyncedBatch measures synced commits of batches of 1 KiB
// records on a real disk, one committer at a time: the fsync latency bound.
func BenchmarkPebbleSyncedBatch(b *testing.B) {
	for _, records := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) {
			p := openPebble(b, nil, b.TempDir())
			defer p.Close()
			value := make([]byte, benchValueSize)
			var key []byte
			var next uint64
			b.SetBytes(int64(records * benchValueSize))
			b.ResetTimer()
			for range b.N {
				batch := p.NewBatch()
				for range records {
					key = benchKey(key, next)
					next++
					if err := batch.Set(key, value); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Commit(true); err != nil {
					b.Fatal(err)
				}
				batch.Close()
			}
		})
	}
}

// BenchmarkPebbleSyncedBatchParallel is BenchmarkPebbleSyncedBatch with
// concurrent committers, which Pebble's commit pipeline groups into shared
// fsyncs.
func BenchmarkPebbleSyncedBatchParallel(b *testing.B) {
	for _, records := range []int{1, 16} {
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) {
			p := openPebble(b, nil, b.TempDir())
			defer p.Close()
			var next atomic.Uint64
			b.SetBytes(int64(records * benchValueSize))
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				value := make([]byte, benchValueSize)
				var key []byte
				for pb.Next() {
					batch := p.NewBatch()
					for range records {
						key = benchKey(key, next.Add(1))
						if err := batch.Set(key, value); err != nil {
							b.Error(err)
							return
						}
					}
					if err := batch.Commit(true); err != nil {
						b.Error(err)
						return
					}
					batch.Close()
				}
			})
		})
	}
}

// BenchmarkMemoryBatch is the in-memory engine's cost per batch, for
// comparison with Pebble in tests of the layers above.
func BenchmarkMemoryBatch(b *testing.B) {
	m := storage.NewMemory()
	defer m.Close()
	value := make([]byte, benchValueSize)
	var key []byte
	var next uint64
	b.SetBytes(16 * benchValueSize)
	for range b.N {
		batch := m.NewBatch()
		for range 16 {
			key = benchKey(key, next)
			next++
			_ = batch.Set(key, value)
		}
		if err := batch.Commit(true); err != nil {
			b.Fatal(err)
		}
	}
}
