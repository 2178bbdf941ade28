package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"testing"

	"github.com/raftka/raftka/broker"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkStorageCeiling is the raw rate: 1 KiB records in synced Pebble
// batches. Compare BenchmarkProduce with it in the same run:
//
//	go test -run '^$' -bench 'StorageCeiling|Produce' -benchtime 5s ./bench/
func BenchmarkStorageCeiling(b *testing.B) {
	for _, tc := range []struct{ batch, writers int }{{64, 1}, {256, 1}, {1024, 1}, {64, 4}} {
		b.Run(fmt.Sprintf("batch=%d/writers=%d", tc.batch, tc.writers), func(b *testing.B) {
			b.SetBytes(1024)
			r, err := RunStorage(context.Background(), StorageConfig{Dir: b.TempDir(), RecordSize: 1024, BatchRecords: tc.batch, Writers: tc.writers, Records: int64(b.N)})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(r.Batches)/r.Elapsed.Seconds(), "syncs/s")
		})
	}
}

// BenchmarkProduce produces 1 KiB records with acks=all and idempotence to
// a broker on Pebble, and reports MB/s.
func BenchmarkProduce(b *testing.B) {
	for _, parts := range []int32{1, 8} {
		b.Run(fmt.Sprintf("partitions=%d", parts), func(b *testing.B) {
			cfg := broker.TestConfig()
			cfg.Storage = broker.StoragePebble
			cfg.DataDir = b.TempDir()
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			br, err := broker.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := br.Start(); err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			cl, err := kgo.NewClient(kgo.SeedBrokers(br.Addr()), kgo.DefaultProduceTopic("bench"),
				kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16),
				kgo.ProducerBatchCompression(kgo.NoCompression()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			if _, err := kadm.NewClient(cl).CreateTopic(ctx, parts, 1, nil, "bench"); err != nil {
				b.Fatal(err)
			}
			value := make([]byte, 1024)
			rand.Read(value)
			b.SetBytes(1024)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
