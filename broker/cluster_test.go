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
	// A broker is ready once its own registration is applied; the others
	// may not have applied it yet, and a topic created through one of them
	// would be placed on fewer brokers (INVALID_REPLICATION_FACTOR).
	waitFor(t, 20*time.Second, "every broker sees every broker registered and unfenced", func() bool {
		for _, b := range brokers {
			seen := b.meta.View().Brokers
			for _, o := range brokers {
				if br := seen[o.NodeID()]; br == nil || br.Fenced {
					return false
				}
			}
		}
		return true
	})
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

// TestIsolatedLeaderAcknowledgesNothing cuts a partition leader off from
// its followers (Raft traffic only, in memory) while a client keeps
// producing to it: nothing is acknowledged on the isolated side, the
// majority elects a new leader and accepts writes, and after healing every
// replica holds the same log.
func TestIsolatedLeaderAcknowledgesNothing(t *testing.T) {
	t.Parallel()
	net := raftlog.NewMemNetwork(1)
	t.Cleanup(net.Close)
	brokers := startTestCluster(t, 3, net, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, brokers[0].Addr(), kgo.SeedBrokers(seeds(brokers)...)))
	if resp, err := adm.CreateTopic(ctx, 1, 3, nil, "isolated"); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	var leader int32
	waitFor(t, 20*time.Second, "a leader", func() bool {
		leader = leaderOf(brokers[0], "isolated", 0)
		return leader > 0
	})
	old := brokers[leader-1]
	var majority []*Broker
	for _, b := range brokers {
		if b != old {
			majority = append(majority, b)
		}
	}

	// A client that only knows the old leader, producing without retries
	// beyond a short delivery timeout.
	isoClient := newClient(t, old.Addr(), kgo.DefaultProduceTopic("isolated"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(2*time.Second), kgo.DisableIdempotentWrite())
	if err := isoClient.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatalf("produce before isolation: %v", err)
	}

	net.Isolate(uint64(old.NodeID()))
	var isoAcked []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 50 {
		v := fmt.Sprintf("isolated-%d", i)
		wg.Add(1)
		isoClient.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err == nil {
				mu.Lock()
				isoAcked = append(isoAcked, v)
				mu.Unlock()
			}
		})
	}

	// The majority elects a new leader and takes writes.
	waitFor(t, 20*time.Second, "a new leader on the majority side", func() bool {
		l := leaderOf(majority[0], "isolated", 0)
		return l > 0 && l != old.NodeID()
	})
	majClient := newClient(t, majority[0].Addr(), kgo.SeedBrokers(majority[0].Addr(), majority[1].Addr()),
		kgo.DefaultProduceTopic("isolated"), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range 20 {
		if err := majClient.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("majority-%d", i))}).FirstErr(); err != nil {
			t.Fatalf("produce on the majority side: %v", err)
		}
	}
	wg.Wait() // every isolated produce has an outcome
	if len(isoAcked) > 0 {
		t.Fatalf("the isolated leader acknowledged %d records: %v", len(isoAcked), isoAcked)
	}

	net.Heal()
	td := brokers[0].meta.View().Topics["isolated"]
	var logs []string
	waitFor(t, 20*time.Second, "every replica holds the same log", func() bool {
		logs = logs[:0]
		for _, b := range brokers {
			rp := b.partition(td.Partitions[0].GroupID)
			data, err := rp.Read(nil, 0, 1<<30)
			if err != nil {
				return false
			}
			logs = append(logs, string(data))
		}
		return logs[0] == logs[1] && logs[1] == logs[2]
	})
	got := consumeAll(t, majority[0].Addr(), "isolated", 21)
	for _, v := range got[0] {
		if len(v) > 9 && v[:9] == "isolated-" {
			t.Fatalf("unacknowledged %s is in the log", v)
		}
	}
	if len(got[0]) != 21 {
		t.Fatalf("log holds %d records, want 21: %v", len(got[0]), got[0])
	}
}

// TestMetadataLearner runs four brokers with three metadata voters: the
// fourth joins the metadata group as a learner, registers through the
// controller, keeps its own metadata cache and serves clients.
func TestMetadataLearner(t *testing.T) {
	t.Parallel()
	brokers := startTestCluster(t, 4, nil, func(c *Config) { c.MetadataVoters = []uint64{1, 2, 3} })
	learner := brokers[3]
	voters, learners := learner.meta.Group().ConfState()
	if len(voters) != 3 || len(learners) != 1 || learners[0] != 4 {
		t.Fatalf("metadata group: voters %v learners %v, want 3 voters and learner 4", voters, learners)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Admin requests through the learner reach the controller.
	adm := kadm.NewClient(newClient(t, learner.Addr()))
	if resp, err := adm.CreateTopic(ctx, 4, 3, nil, "via-learner"); err != nil || resp.Err != nil {
		t.Fatalf("create via learner: %v %v", err, resp.Err)
	}
	waitFor(t, 10*time.Second, "the learner's metadata to show the topic", func() bool {
		return learner.meta.View().Topics["via-learner"] != nil
	})
	if n := len(learner.meta.View().Brokers); n != 4 {
		t.Fatalf("learner sees %d brokers, want 4", n)
	}
}
