package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/raftka/raftka/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeAll reads topic from the start until want records — or, with want
// < 0, every record below the high watermarks at the time of the call — and
// returns the values per partition in offset order. It fails the test on a
// gap in offsets.
func consumeAll(t *testing.T, addr, topic string, want int) map[int32][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if want < 0 {
		ends, err := kadm.NewClient(newClient(t, addr)).ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		want = 0
		ends.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
			}
			want += int(o.Offset)
		})
	}
	c := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	out := map[int32][]string{}
	total := 0
	for total < want {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", total, want, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if int64(len(out[r.Partition])) != r.Offset {
				t.Fatalf("partition %d: got offset %d after %d records", r.Partition, r.Offset, len(out[r.Partition]))
			}
			out[r.Partition] = append(out[r.Partition], string(r.Value))
			total++
		})
	}
	return out
}

// TestIdempotentProduce100k is issue 2's acceptance run: an 8-partition
// topic on Pebble, 100k records with acks=all and idempotence, consumed back
// complete and in order per partition.
func TestIdempotentProduce100k(t *testing.T) {
	t.Parallel()
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	b := startBroker(t, func(c *Config) {
		c.Storage = StoragePebble
		c.DataDir = t.TempDir()
	})
	createTopic(t, b.Addr(), "events", 8)
	prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("events"), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
	)
	for i := range n {
		r := &kgo.Record{Key: []byte(strconv.Itoa(i % 64)), Value: []byte(strconv.Itoa(i))}
		prod.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if first != nil {
		t.Fatalf("produce failed: %v", first)
	}
	got := consumeAll(t, b.Addr(), "events", n)
	seen := make([]bool, n)
	for p, values := range got {
		last := -1
		for _, v := range values {
			i, _ := strconv.Atoi(v)
			if seen[i] {
				t.Fatalf("record %d read twice", i)
			}
			seen[i] = true
			if i <= last {
				t.Fatalf("partition %d: record %d after %d", p, i, last)
			}
			last = i
		}
	}
	for i, ok := range seen {
		if !ok {
			t.Fatalf("record %d missing", i)
		}
	}
	if len(got) != 8 {
		t.Fatalf("records landed in %d partitions, want 8", len(got))
	}
}

// TestCrashKeepsAcknowledged crashes the broker's filesystem in the middle
// of producing — keeping only what was synced, or a random part of what was
// not — restarts on what survived, and checks that every record
// acknowledged before the crash is there exactly once, at contiguous
// offsets.
func TestCrashKeepsAcknowledged(t *testing.T) {
	t.Parallel()
	for _, unsynced := range []int{0, 50, 100} {
		t.Run(fmt.Sprintf("unsynced=%d%%", unsynced), func(t *testing.T) {
			t.Parallel()
			fs := vfs.NewCrashableMem()
			eng, err := storage.OpenPebble(storage.PebbleOptions{Dir: "/data", FS: fs, Logger: testLogger()})
			if err != nil {
				t.Fatal(err)
			}
			b := startBroker(t, func(c *Config) { c.Engine = eng })
			createTopic(t, b.Addr(), "crash", 4)
			prod := newClient(t, b.Addr(), kgo.DefaultProduceTopic("crash"), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.RecordRetries(3), kgo.ProducerLinger(time.Millisecond))

			var (
				mu    sync.Mutex
				acked = map[string]bool{}
			)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; ctx.Err() == nil; i++ {
					v := fmt.Sprintf("r%d", i)
					prod.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
						if err == nil {
							mu.Lock()
							acked[v] = true
							mu.Unlock()
						}
					})
				}
			}()
			waitFor(t, 30*time.Second, "2000 acknowledged records", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(acked) >= 2000
			})
			// Everything acknowledged before the clone starts was synced
			// before it was acknowledged.
			mu.Lock()
			before := make([]string, 0, len(acked))
			for v := range acked {
				before = append(before, v)
			}
			mu.Unlock()
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(unsynced), 7))})
			cancel()
			<-done
			b.Close()
			eng.Close()

			eng2, err := storage.OpenPebble(storage.PebbleOptions{Dir: "/data", FS: crashed, Logger: testLogger()})
			if err != nil {
				t.Fatalf("reopen after crash: %v", err)
			}
			t.Cleanup(func() { eng2.Close() })
			b2 := startBroker(t, func(c *Config) { c.Engine = eng2 })
			waitFor(t, 10*time.Second, "partitions led after restart", func() bool {
				v := b2.meta.View()
				tp := v.Topics["crash"]
				if tp == nil {
					return false
				}
				for _, p := range tp.Partitions {
					rp := b2.partition(p.GroupID)
					if rp == nil || rp.Offsets().Leader == 0 {
						return false
					}
				}
				return true
			})
			got := consumeAll(t, b2.Addr(), "crash", -1)
			count := map[string]int{}
			for _, vs := range got {
				for _, v := range vs {
					count[v]++
				}
			}
			for v, c := range count {
				if c > 1 {
					t.Errorf("%s stored %d times", v, c)
				}
			}
			missing := 0
			for _, v := range before {
				if count[v] != 1 {
					missing++
					if missing < 5 {
						t.Errorf("acknowledged record %s lost", v)
					}
				}
			}
			if missing > 0 {
				t.Fatalf("%d of %d acknowledged records lost", missing, len(before))
			}
			t.Logf("%d acknowledged before the crash, %d records after restart", len(before), len(count))
		})
	}
}
