//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(client(t, addr)).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
}

// readAll consumes topic from the start up to its current end offsets.
func readAll(t *testing.T, addr, topic string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Right after a restart the partitions may still be electing leaders.
	adm := kadm.NewClient(client(t, addr))
	var ends kadm.ListedOffsets
	var err error
	waitUntil(t, 30*time.Second, "end offsets of "+topic, func() bool {
		ends, err = adm.ListEndOffsets(ctx, topic)
		return err == nil && ends.Error() == nil
	})
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	c := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	next := map[int32]int64{}
	for got := int64(0); got < want; {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d: %v", got, want, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			seen[string(r.Value)]++
			got++
		})
	}
	return seen
}

// TestSIGKILLKeepsAcknowledged is issue 2's acceptance run: the broker
// process is killed with SIGKILL while an idempotent acks=all producer
// writes to 8 partitions, and restarted on the same data. The producer
// keeps going across the restart (retrying what was in flight), and every
// acknowledged record is then there exactly once.
func TestSIGKILLKeepsAcknowledged(t *testing.T) {
	n := newNode(t)
	n.start()
	createTopic(t, n.kafkaAddr(), "kill", 8)

	prod := client(t, n.kafkaAddr(), kgo.DefaultProduceTopic("kill"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(2*time.Minute), kgo.ProducerLinger(2*time.Millisecond))
	var (
		mu     sync.Mutex
		acked  = map[string]bool{}
		failed int
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopProducing := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := 0; ; i++ {
			select {
			case <-stopProducing:
				return
			default:
			}
			v := fmt.Sprintf("r%07d", i)
			prod.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed++
					return
				}
				acked[v] = true
			})
		}
	}()
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	waitUntil(t, 60*time.Second, "5000 acknowledged records", func() bool { return ackedCount() >= 5000 })
	before := ackedCount()
	n.kill()
	t.Logf("SIGKILL after %d acknowledged records", before)
	n.start()
	waitUntil(t, 60*time.Second, "production resumed after restart", func() bool { return ackedCount() >= before+5000 })
	close(stopProducing)
	<-produced
	flushCtx, flushCancel := context.WithTimeout(ctx, 60*time.Second)
	defer flushCancel()
	if err := prod.Flush(flushCtx); err != nil {
		t.Fatalf("flush: %v", err)
	}

	seen := readAll(t, n.kafkaAddr(), "kill")
	mu.Lock()
	defer mu.Unlock()
	lost, dup := 0, 0
	for v := range acked {
		if seen[v] == 0 {
			lost++
		}
	}
	for v, c := range seen {
		if c > 1 {
			dup++
			if dup < 5 {
				t.Errorf("%s stored %d times", v, c)
			}
		}
	}
	t.Logf("%d acknowledged, %d failed, %d stored", len(acked), failed, len(seen))
	if lost > 0 || dup > 0 {
		t.Fatalf("%d acknowledged records lost, %d duplicated", lost, dup)
	}
}

// TestSIGTERMShutsDownCleanly stops the broker with SIGTERM: it exits 0,
// releases its port, and keeps what was acknowledged.
func TestSIGTERMShutsDownCleanly(t *testing.T) {
	n := newNode(t)
	n.start()
	createTopic(t, n.kafkaAddr(), "term", 1)
	prod := client(t, n.kafkaAddr(), kgo.DefaultProduceTopic("term"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 100 {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	if err := n.stop(ctx); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	ln, err := net.Listen("tcp", n.kafkaAddr())
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	ln.Close()
	n.start()
	if seen := readAll(t, n.kafkaAddr(), "term"); len(seen) != 100 {
		t.Fatalf("%d records after restart, want 100", len(seen))
	}
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
