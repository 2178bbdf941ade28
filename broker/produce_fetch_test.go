package broker

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestProduceConsumeRoundTrip(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	createTopic(t, b.Addr(), "orders", 3)

	prod := newClient(t, b.Addr(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("orders"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 1000
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("v%d", i))}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	cons := newClient(t, b.Addr(), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	next := map[int32]int64{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", len(seen), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			if seen[string(r.Value)] {
				t.Fatalf("duplicate %s", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
}

// TestPipelinedProducesOfMixedSizesKeepTheirBytes produces records of many
// sizes on one connection, with several requests in flight, and checks
// every value read back byte for byte: produce frames and proposal buffers
// are recycled (internal/bufpool), and a buffer reused while still
// referenced would show here as corrupted or swapped values.
func TestPipelinedProducesOfMixedSizesKeepTheirBytes(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	createTopic(t, b.Addr(), "mixed", 4)

	prod := newClient(t, b.Addr(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("mixed"), kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 600
	value := func(i int) []byte {
		size := 8 + (i*7919)%(200<<10) // 8 B to 200 KiB
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(i + j*31)
		}
		copy(v, fmt.Sprintf("%08d", i))
		return v
	}
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Value: value(i)}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	cons := newClient(t, b.Addr(), kgo.ConsumeTopics("mixed"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := 0
	for seen < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d: %v", seen, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			var i int
			if len(r.Value) < 8 {
				t.Fatalf("record %s/%d@%d: %d bytes, want at least 8", r.Topic, r.Partition, r.Offset, len(r.Value))
			}
			if _, err := fmt.Sscanf(string(r.Value[:8]), "%d", &i); err != nil {
				t.Fatalf("record %s/%d@%d: unreadable value prefix %q", r.Topic, r.Partition, r.Offset, r.Value[:8])
			}
			if !bytes.Equal(r.Value, value(i)) {
				t.Fatalf("record %d (%s/%d@%d): %d bytes differ from what was produced", i, r.Topic, r.Partition, r.Offset, len(r.Value))
			}
			seen++
		})
	}
}
