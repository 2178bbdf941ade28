package broker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/raftka/raftka/raftlog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startCluster starts n brokers that form one cluster (all metadata
// voters), on net if given (else TCP), and waits until all are registered.
func startTestCluster(t *testing.T, n int, net *raftlog.MemNetwork, mutate func(*Config)) []*Broker {
	t.Helper()
	var voters []uint64
	for i := 1; i <= n; i++ {
		voters = append(voters, uint64(i))
	}
	brokers := make([]*Broker, n)
	var seed string
	for i := range brokers {
		cfg := TestConfig()
		cfg.Logger = testLogger().With("node", i+1)
		cfg.NodeID = int32(i + 1)
		cfg.MetadataVoters = voters
		cfg.RaftNetwork = net
		if seed != "" {
			cfg.Join = []string{seed}
		}
		if mutate != nil {
			mutate(&cfg)
		}
		b, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		if seed == "" {
			seed = b.GossipAddr()
		}
		brokers[i] = b
	}
	for _, b := range brokers {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := b.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	return brokers
}

func seeds(brokers []*Broker) []string {
	var out []string
	for _, b := range brokers {
		out = append(out, b.Addr())
	}
	return out
}

// leaderOf returns the broker leading partition p of topic, per b.
func leaderOf(b *Broker, topic string, p int32) int32 {
	t := b.meta.View().Topics[topic]
	if t == nil || int(p) >= len(t.Partitions) {
		return -1
	}
	rp := b.partition(t.Partitions[p].GroupID)
	if rp == nil {
		return -1
	}
	return int32(rp.Offsets().Leader)
}

func TestClusterReplicatesAndFailsOver(t *testing.T) {
	t.Parallel()
	brokers := startTestCluster(t, 3, nil, nil)
	cl := newClient(t, brokers[0].Addr(), kgo.SeedBrokers(seeds(brokers)...))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, 6, 3, nil, "replicated")
	if err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	// Leaders spread over the brokers, one per preferred replica.
	waitFor(t, 20*time.Second, "every partition led by its preferred replica", func() bool {
		td := brokers[0].meta.View().Topics["replicated"]
		for i, p := range td.Partitions {
			if leaderOf(brokers[0], "replicated", int32(i)) != p.Replicas[0] {
				return false
			}
		}
		return true
	})

	prod := newClient(t, brokers[0].Addr(), kgo.SeedBrokers(seeds(brokers)...), kgo.DefaultProduceTopic("replicated"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
	)
	produce := func(from, to int) {
		for i := from; i < to; i++ {
			v := fmt.Sprintf("v%05d", i)
			prod.Produce(ctx, &kgo.Record{Value: []byte(v), Partition: int32(i % 6)}, func(_ *kgo.Record, err error) {
				if err == nil {
					mu.Lock()
					acked[v] = true
					mu.Unlock()
				}
			})
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 3000)

	// Stop the leader of partition 0; a new leader takes over.
	old := leaderOf(brokers[0], "replicated", 0)
	victim := brokers[old-1]
	victim.Close()
	var live []*Broker
	for _, b := range brokers {
		if b != victim {
			live = append(live, b)
		}
	}
	waitFor(t, 20*time.Second, "a new leader for partition 0", func() bool {
		l := leaderOf(live[0], "replicated", 0)
		return l > 0 && l != old
	})
	produce(3000, 6000)

	mu.Lock()
	n := len(acked)
	mu.Unlock()
	if n != 6000 {
		t.Fatalf("%d of 6000 records acknowledged", n)
	}
	got := consumeAll(t, live[0].Addr(), "replicated", 6000)
	for p, values := range got {
		for off, v := range values {
			if !acked[v] {
				t.Fatalf("partition %d offset %d: unexpected %s", p, off, v)
			}
		}
	}
	// The surviving replicas hold byte-identical logs: the same offset
	// holds the same record whichever broker leads.
	td := live[0].meta.View().Topics["replicated"]
	for _, p := range td.Partitions {
		var logs [][]byte
		waitFor(t, 10*time.Second, "replicas caught up", func() bool {
			logs = logs[:0]
			for _, b := range live {
				rp := b.partition(p.GroupID)
				data, err := rp.Read(nil, 0, 1<<30)
				if err != nil {
					t.Fatal(err)
				}
				logs = append(logs, data)
			}
			return len(logs[0]) > 0 && string(logs[0]) == string(logs[1])
		})
	}
}
