package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"syscall"
	"testing"
	"time"

	"github.com/raftka/raftka/broker"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startCluster starts n brokers on Pebble in one process, all metadata
// voters, and returns them once all are registered.
func startCluster(b *testing.B, n int) []*broker.Broker {
	b.Helper()
	var voters []uint64
	for i := 1; i <= n; i++ {
		voters = append(voters, uint64(i))
	}
	var out []*broker.Broker
	for i := 1; i <= n; i++ {
		cfg := broker.TestConfig()
		cfg.NodeID = int32(i)
		cfg.MetadataVoters = voters
		cfg.Storage = broker.StoragePebble
		cfg.DataDir = b.TempDir()
		// Production timing: 100 ms ticks.
		cfg.Raft.TickInterval = 100 * time.Millisecond
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if len(out) > 0 {
			cfg.Join = []string{out[0].GossipAddr()}
		}
		br, err := broker.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := br.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { br.Close() })
		out = append(out, br)
	}
	for _, br := range out {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := br.WaitReady(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	return out
}

func addrs(bs []*broker.Broker) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Addr())
	}
	return out
}

// BenchmarkProduceReplicated produces 1 KiB records with acks=all to an
// 8-partition topic: one broker with RF=1 and three brokers (in this one
// process, on this one disk) with RF=3, in the same run.
//
//	go test -run '^$' -bench ProduceReplicated -benchtime 100000x ./bench/
func BenchmarkProduceReplicated(b *testing.B) {
	for _, tc := range []struct{ brokers, rf int }{{1, 1}, {3, 3}} {
		b.Run(fmt.Sprintf("brokers=%d/rf=%d", tc.brokers, tc.rf), func(b *testing.B) {
			bs := startCluster(b, tc.brokers)
			cl, err := kgo.NewClient(kgo.SeedBrokers(addrs(bs)...), kgo.DefaultProduceTopic("bench"),
				kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<16),
				kgo.ProducerBatchCompression(kgo.NoCompression()))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			resp, err := kadm.NewClient(cl).CreateTopic(ctx, 8, int16(tc.rf), nil, "bench")
			if err == nil {
				err = resp.Err
			}
			if err != nil {
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

// BenchmarkIdlePartitions measures what idle partition replicas cost: a
// three-broker cluster (production 100 ms ticks) with a topic of 2,000
// partitions at RF=3 — 2,000 replicas on each broker — left idle. It
// reports the CPU the whole process used per broker, as a percentage of
// one core, over 10 s once the groups have quiesced.
//
//	go test -run '^$' -bench IdlePartitions -benchtime 1x ./bench/
func BenchmarkIdlePartitions(b *testing.B) {
	const partitions, brokers = 2000, 3
	bs := startCluster(b, brokers)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs(bs)...))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 3, nil, "idle")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		b.Fatal(err)
	}
	created := time.Since(start)
	// Wait until the groups have elected leaders and quiesced.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		q := 0
		for _, br := range bs {
			q += br.QuiescedGroups()
		}
		if q >= brokers*partitions {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d replicas quiesced", q, brokers*partitions)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.ResetTimer()
	for range b.N {
		before := cpuTime()
		wall := time.Now()
		time.Sleep(10 * time.Second) // the measurement window itself
		used := cpuTime() - before
		pct := 100 * used.Seconds() / time.Since(wall).Seconds() / brokers
		b.ReportMetric(pct, "cpu%/broker")
	}
	b.ReportMetric(created.Seconds(), "create-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
