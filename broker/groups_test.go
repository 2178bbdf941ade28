package broker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// groupRun is a consumer group under test: members consume a topic and
// every record they get and every offset commit acknowledged is logged,
// so the test can check that every record is consumed and that none is
// consumed again once a commit covering it was acknowledged.
type groupRun struct {
	t            *testing.T
	seeds        []string
	topic, group string
	opts         []kgo.Opt

	mu        sync.Mutex
	consumed  map[string]int  // record value → times consumed
	committed map[int32]int64 // highest acknowledged commit per partition
	// violations are records consumed below an acknowledged commit.
	violations []string
}

func newGroupRun(t *testing.T, seeds []string, topic, group string, opts ...kgo.Opt) *groupRun {
	return &groupRun{t: t, seeds: seeds, topic: topic, group: group, opts: opts,
		consumed: map[string]int{}, committed: map[int32]int64{}}
}

// groupMember is one consumer of a groupRun.
type groupMember struct {
	name string
	cl   *kgo.Client
	stop context.CancelFunc
	done chan struct{}
	// assigns counts OnPartitionsAssigned calls; owned is what the
	// member holds now.
	assigns atomic.Int32
	mu      sync.Mutex
	owned   map[int32]bool
}

func (m *groupMember) ownedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.owned)
}

// onCommit logs an acknowledged commit.
func (g *groupRun) onCommit(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err != nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, t := range resp.Topics {
		for j, p := range t.Partitions {
			if p.ErrorCode != 0 || i >= len(req.Topics) || j >= len(req.Topics[i].Partitions) {
				continue
			}
			if o := req.Topics[i].Partitions[j].Offset; o > g.committed[p.Partition] {
				g.committed[p.Partition] = o
			}
		}
	}
}

// start adds a member; it consumes until stopped.
func (g *groupRun) start(name string, opts ...kgo.Opt) *groupMember {
	m := &groupMember{name: name, done: make(chan struct{}), owned: map[int32]bool{}}
	base := []kgo.Opt{
		kgo.SeedBrokers(g.seeds...),
		kgo.ConsumerGroup(g.group),
		kgo.ConsumeTopics(g.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.HeartbeatInterval(250 * time.Millisecond),
		kgo.SessionTimeout(6 * time.Second),
		kgo.AutoCommitInterval(200 * time.Millisecond),
		kgo.AutoCommitCallback(g.onCommit),
		// Rebalances wait until a poll's records are logged, so a revoke
		// commits only what the log already holds.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			m.assigns.Add(1)
			m.mu.Lock()
			for _, p := range a[g.topic] {
				m.owned[p] = true
			}
			m.mu.Unlock()
		}),
		// Commit on revoke: what was consumed is committed before the
		// partitions go to another member.
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, r map[string][]int32) {
			cl.CommitOffsetsSync(ctx, cl.UncommittedOffsets(), g.onCommit)
			m.mu.Lock()
			for _, p := range r[g.topic] {
				delete(m.owned, p)
			}
			m.mu.Unlock()
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, l map[string][]int32) {
			m.mu.Lock()
			for _, p := range l[g.topic] {
				delete(m.owned, p)
			}
			m.mu.Unlock()
		}),
	}
	cl, err := kgo.NewClient(append(append(base, g.opts...), opts...)...)
	if err != nil {
		g.t.Fatal(err)
	}
	m.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	g.t.Cleanup(func() { m.close() })
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			g.log(name, fs)
			cl.AllowRebalance()
		}
	}()
	return m
}

// close stops consuming and closes the client (a dynamic member leaves
// the group, committing on revoke; a static one does not leave).
func (m *groupMember) close() {
	m.stop()
	<-m.done
	m.cl.AllowRebalance()
	m.cl.Close()
}

func (g *groupRun) log(member string, fs kgo.Fetches) {
	g.mu.Lock()
	defer g.mu.Unlock()
	fs.EachRecord(func(r *kgo.Record) {
		g.consumed[string(r.Value)]++
		if c := g.committed[r.Partition]; r.Offset < c {
			g.violations = append(g.violations, fmt.Sprintf("%s consumed partition %d offset %d after offset %d was committed", member, r.Partition, r.Offset, c))
		}
	})
}

func (g *groupRun) consumedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.consumed)
}

// check fails the test for records never consumed or consumed again
// after a commit.
func (g *groupRun) check(produced []string) {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	missing, dups := 0, 0
	for _, v := range produced {
		switch n := g.consumed[v]; {
		case n == 0:
			missing++
		case n > 1:
			dups++
		}
	}
	if missing > 0 {
		g.t.Errorf("%d of %d records never consumed", missing, len(produced))
	}
	for i, v := range g.violations {
		if i == 10 {
			g.t.Errorf("... and %d more", len(g.violations)-10)
			break
		}
		g.t.Error(v)
	}
	g.t.Logf("%d records consumed, %d more than once (before any commit covered them)", len(g.consumed), dups)
}

// produceN produces values prefix-from..prefix-to-1 round-robin and waits
// for their acknowledgements.
func produceN(t *testing.T, cl *kgo.Client, topic, prefix string, from, to int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var vals []string
	for i := from; i < to; i++ {
		v := fmt.Sprintf("%s-%05d", prefix, i)
		vals = append(vals, v)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %s: %v", v, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return vals
}

func createReplicated(t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 3, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// TestConsumerGroups runs consumer groups on a 3-broker cluster: three
// members over a 12-partition topic with the eager range balancer, with
// cooperative-sticky, and with static membership, while members join and
// leave; and the group APIs one by one.
func TestConsumerGroups(t *testing.T) {
	t.Parallel()
	brokers := startTestCluster(t, 3, nil, nil)
	seedAddrs := seeds(brokers)
	admCl := newClient(t, seedAddrs[0], kgo.SeedBrokers(seedAddrs...))
	adm := kadm.NewClient(admCl)

	dynamic := func(t *testing.T, name string, balancer kgo.GroupBalancer) {
		t.Parallel()
		topic, group := "groups-"+name, "group-"+name
		createReplicated(t, adm, topic, 12)
		prod := newClient(t, seedAddrs[0], kgo.SeedBrokers(seedAddrs...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		g := newGroupRun(t, seedAddrs, topic, group, kgo.Balancers(balancer))

		produced := produceN(t, prod, topic, name, 0, 600)
		m1 := g.start("m1")
		waitFor(t, 20*time.Second, "m1 consuming", func() bool { return g.consumedCount() >= 100 })
		m2, m3 := g.start("m2"), g.start("m3")
		waitFor(t, 20*time.Second, "three members sharing the partitions", func() bool {
			return m1.ownedCount() == 4 && m2.ownedCount() == 4 && m3.ownedCount() == 4
		})
		produced = append(produced, produceN(t, prod, topic, name, 600, 1200)...)
		waitFor(t, 20*time.Second, "records consumed", func() bool { return g.consumedCount() >= 900 })

		// m1 leaves (committing on revoke) and m4 joins.
		m1.close()
		waitFor(t, 20*time.Second, "two members sharing the partitions", func() bool {
			return m2.ownedCount()+m3.ownedCount() == 12
		})
		m4 := g.start("m4")
		waitFor(t, 20*time.Second, "m4 sharing the partitions", func() bool {
			return m2.ownedCount() == 4 && m3.ownedCount() == 4 && m4.ownedCount() == 4
		})
		produced = append(produced, produceN(t, prod, topic, name, 1200, 1800)...)
		waitFor(t, 30*time.Second, "every record consumed", func() bool { return g.consumedCount() >= len(produced) })
		m2.close()
		m3.close()
		m4.close()
		g.check(produced)
		assertCommittedEnd(t, adm, group, topic)
	}
	t.Run("eager-range", func(t *testing.T) { dynamic(t, "range", kgo.RangeBalancer()) })
	t.Run("cooperative-sticky", func(t *testing.T) { dynamic(t, "coop", kgo.CooperativeStickyBalancer()) })

	t.Run("static", func(t *testing.T) {
		t.Parallel()
		topic, group := "groups-static", "group-static"
		createReplicated(t, adm, topic, 12)
		prod := newClient(t, seedAddrs[0], kgo.SeedBrokers(seedAddrs...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		g := newGroupRun(t, seedAddrs, topic, group, kgo.Balancers(kgo.RangeBalancer()))
		produced := produceN(t, prod, topic, "static", 0, 600)
		s1 := g.start("s1", kgo.InstanceID("s1"))
		s2 := g.start("s2", kgo.InstanceID("s2"))
		s3 := g.start("s3", kgo.InstanceID("s3"))
		waitFor(t, 30*time.Second, "three static members sharing the partitions", func() bool {
			return s1.ownedCount() == 4 && s2.ownedCount() == 4 && s3.ownedCount() == 4
		})
		waitFor(t, 20*time.Second, "records consumed", func() bool { return g.consumedCount() >= 300 })
		before3 := s3.assigns.Load()

		// s1 (the first to join, so most likely the leader) and then s2
		// restart: each new incarnation takes over its instance and its
		// partitions, and the other members do not rebalance.
		restart := func(old *groupMember, instance string) *groupMember {
			old.mu.Lock()
			owned := slices.Sorted(maps.Keys(old.owned))
			old.mu.Unlock()
			old.close()
			m := g.start(instance+"b", kgo.InstanceID(instance))
			waitFor(t, 20*time.Second, "the restarted member assigned", func() bool { return m.ownedCount() == len(owned) })
			m.mu.Lock()
			defer m.mu.Unlock()
			if got := slices.Sorted(maps.Keys(m.owned)); !slices.Equal(got, owned) {
				t.Errorf("restarted static member %s owns %v, want its old %v", instance, got, owned)
			}
			return m
		}
		s1b := restart(s1, "s1")
		produced = append(produced, produceN(t, prod, topic, "static", 600, 900)...)
		s2b := restart(s2, "s2")
		produced = append(produced, produceN(t, prod, topic, "static", 900, 1200)...)
		waitFor(t, 30*time.Second, "every record consumed", func() bool { return g.consumedCount() >= len(produced) })
		if s3.assigns.Load() != before3 || s1b.assigns.Load() != 1 || s2b.assigns.Load() != 1 {
			t.Errorf("a static member's restart made the group rebalance: assignments s3 %d→%d, s1b %d, s2b %d", before3, s3.assigns.Load(), s1b.assigns.Load(), s2b.assigns.Load())
		}
		described, err := adm.DescribeGroups(context.Background(), group)
		if err != nil {
			t.Fatal(err)
		}
		var instances []string
		for _, m := range described[group].Members {
			if m.InstanceID != nil {
				instances = append(instances, *m.InstanceID)
			}
		}
		slices.Sort(instances)
		if described[group].State != "Stable" || !slices.Equal(instances, []string{"s1", "s2", "s3"}) {
			t.Errorf("described %s with instances %v, want Stable with s1 s2 s3", described[group].State, instances)
		}
		for _, m := range []*groupMember{s1b, s2b, s3} {
			m.close()
		}
		g.check(produced)
	})

	t.Run("apis", func(t *testing.T) { testGroupAPIs(t, brokers, adm) })
}

// assertCommittedEnd checks that the group's committed offsets reached
// every partition's end.
func assertCommittedEnd(t *testing.T, adm *kadm.Client, group, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Leaders move (leader balancing runs every second in tests): retry
	// until every partition answers.
	var ends kadm.ListedOffsets
	waitFor(t, 10*time.Second, "end offsets of every partition", func() bool {
		var err error
		ends, err = adm.ListEndOffsets(ctx, topic)
		return err == nil && ends.Error() == nil
	})
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if c, ok := committed.Lookup(topic, e.Partition); !ok || c.At != e.Offset {
			t.Errorf("partition %d: committed %v, want the end offset %d", e.Partition, c.At, e.Offset)
		}
	})
}

// coordinatorRound asks every broker for group's coordinator, through cl and
// through each of the version-pinned clients vcls (vcls[v] sends
// FindCoordinator at version v), and sends a Heartbeat to every broker that
// is not the coordinator. It returns the coordinator and, if the round was
// not consistent (brokers disagreed, a request failed, or a non-coordinator
// did not answer NOT_COORDINATOR), what went wrong.
func coordinatorRound(ctx context.Context, cl *kgo.Client, vcls []*kgo.Client, brokers []*Broker, group string) (int32, []string) {
	var problems []string
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey = group
	req.CoordinatorKeys = []string{group}
	resp, err := req.RequestWith(ctx, cl.Broker(int(brokers[1].NodeID())))
	if err != nil || len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != 0 {
		return -1, []string{fmt.Sprintf("FindCoordinator from broker %d: %v %+v", brokers[1].NodeID(), err, resp)}
	}
	coordinator := resp.Coordinators[0].NodeID
	for v, vcl := range vcls {
		for _, b := range brokers {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKey = group
			req.CoordinatorKeys = []string{group, "other-group"}
			resp, err := req.RequestWith(ctx, vcl.Broker(int(b.NodeID())))
			if err != nil {
				problems = append(problems, fmt.Sprintf("FindCoordinator v%d from broker %d: %v", v, b.NodeID(), err))
				continue
			}
			if int(resp.Version) != v {
				problems = append(problems, fmt.Sprintf("FindCoordinator sent at v%d, want v%d", resp.Version, v))
				continue
			}
			node, code := resp.NodeID, resp.ErrorCode
			if v >= 4 {
				if len(resp.Coordinators) != 2 || resp.Coordinators[0].Key != group || resp.Coordinators[1].ErrorCode != 0 {
					problems = append(problems, fmt.Sprintf("FindCoordinator v4 from broker %d: %+v", b.NodeID(), resp.Coordinators))
					continue
				}
				node, code = resp.Coordinators[0].NodeID, resp.Coordinators[0].ErrorCode
			}
			if code != 0 || node != coordinator {
				problems = append(problems, fmt.Sprintf("FindCoordinator v%d from broker %d: node %d error %d, want node %d", v, b.NodeID(), node, code, coordinator))
			}
		}
	}
	for _, b := range brokers {
		if b.NodeID() == coordinator {
			continue
		}
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID = group, "m"
		resp, err := hb.RequestWith(ctx, cl.Broker(int(b.NodeID())))
		if err != nil || resp.ErrorCode != kerr.NotCoordinator.Code {
			problems = append(problems, fmt.Sprintf("Heartbeat to broker %d: %v %+v, want NOT_COORDINATOR", b.NodeID(), err, resp))
		}
	}
	return coordinator, problems
}

// testGroupAPIs exercises the group APIs the way admin tools and clients
// use them.
func testGroupAPIs(t *testing.T, brokers []*Broker, adm *kadm.Client) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	createReplicated(t, adm, "apis", 3)
	cl := newClient(t, brokers[0].Addr(), kgo.SeedBrokers(seeds(brokers)...))

	// FindCoordinator, v0 to v4 (batched), agrees from every broker, and
	// the brokers that are not the coordinator answer NOT_COORDINATOR.
	// kgo sends requests at the highest version both sides know; a client
	// per version pins it. The coordinator is the leader of the group's
	// offsets partition, which leader balancing (every second in tests) may
	// move mid-round, so rounds repeat until one is consistent throughout;
	// a real disagreement shows up as every round failing.
	var vcls []*kgo.Client
	for v := int16(0); v <= 4; v++ {
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(kmsg.FindCoordinator.Int16(), v)
		vcls = append(vcls, newClient(t, brokers[0].Addr(), kgo.SeedBrokers(seeds(brokers)...), kgo.MaxVersions(vs)))
	}
	var coordinator1 int32
	var problems []string
	rounds := 0
	waitFor(t, 20*time.Second, "a consistent coordinator for api-group", func() bool {
		rounds++
		coordinator1, problems = coordinatorRound(ctx, cl, vcls, brokers, "api-group")
		return len(problems) == 0
	})
	if rounds > 1 {
		t.Logf("coordinator agreement took %d rounds; the last failed one: %v", rounds, problems)
	}
	txn := kmsg.NewPtrFindCoordinatorRequest()
	txn.CoordinatorKey, txn.CoordinatorType = "txn", 1
	if resp, err := txn.RequestWith(ctx, cl); err != nil || resp.ErrorCode == 0 {
		t.Errorf("transactional FindCoordinator: %v %v, want an error", err, resp)
	}
	t.Logf("coordinator of api-group: broker %d", coordinator1)

	// A group with no commits answers offset -1 without an error, in the
	// single-group and the multi-group (v8) forms.
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Version = 7
	of.Group = "api-group"
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "apis", Partitions: []int32{0, 1}}}
	of.RequireStable = true
	ofResp, err := of.RequestWith(ctx, cl)
	if err != nil || ofResp.ErrorCode != 0 || len(ofResp.Topics) != 1 || len(ofResp.Topics[0].Partitions) != 2 {
		t.Fatalf("OffsetFetch v7: %v %+v", err, ofResp)
	}
	for _, p := range ofResp.Topics[0].Partitions {
		if p.Offset != -1 || p.ErrorCode != 0 {
			t.Errorf("OffsetFetch of a group without commits: partition %d offset %d error %d, want -1 and none", p.Partition, p.Offset, p.ErrorCode)
		}
	}

	// Offsets committed outside a rebalance (generation -1), as admin
	// tools do.
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "apis", Partition: 0, At: 7, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "apis", Partition: 1, At: 9, LeaderEpoch: -1, Metadata: "meta"})
	os.Add(kadm.Offset{Topic: "no-such-topic", Partition: 0, At: 1, LeaderEpoch: -1})
	cresp, err := adm.CommitOffsets(ctx, "api-group", os)
	if err != nil {
		t.Fatal(err)
	}
	if e := cresp.Error(); e == nil {
		t.Errorf("commit to an unknown topic succeeded")
	}
	if r, _ := cresp.Lookup("apis", 0); r.Err != nil {
		t.Errorf("commit apis/0: %v", r.Err)
	}
	if r, _ := cresp.Lookup("no-such-topic", 0); r.Err != kerr.UnknownTopicOrPartition {
		t.Errorf("commit to an unknown topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", r.Err)
	}
	multi := kmsg.NewPtrOffsetFetchRequest()
	multi.Version = 8
	for _, g := range []string{"api-group", "never-committed"} {
		rg := kmsg.NewOffsetFetchRequestGroup()
		rg.Group = g
		multi.Groups = append(multi.Groups, rg)
	}
	// Multi-group requests go to one broker; answer from the coordinator
	// of both, or NOT_COORDINATOR per group. Sent to api-group's
	// coordinator, found afresh while the coordinator moves.
	var mresp *kmsg.OffsetFetchResponse
	waitFor(t, 20*time.Second, "OffsetFetch v8 answered by api-group's coordinator", func() bool {
		c, problems := coordinatorRound(ctx, cl, nil, brokers, "api-group")
		if len(problems) > 0 {
			return false
		}
		var err error
		mresp, err = multi.RequestWith(ctx, cl.Broker(int(c)))
		if err != nil || len(mresp.Groups) != 2 {
			t.Fatalf("OffsetFetch v8: %v %+v", err, mresp)
		}
		return mresp.Groups[0].ErrorCode != kerr.NotCoordinator.Code
	})
	if g := mresp.Groups[0]; g.ErrorCode != 0 || len(g.Topics) != 1 || len(g.Topics[0].Partitions) != 2 ||
		g.Topics[0].Partitions[0].Offset != 7 || g.Topics[0].Partitions[1].Offset != 9 || *g.Topics[0].Partitions[1].Metadata != "meta" {
		t.Errorf("OffsetFetch v8 of api-group: %+v", g)
	}
	if g := mresp.Groups[1]; g.ErrorCode != 0 && g.ErrorCode != kerr.NotCoordinator.Code || len(g.Topics) != 0 {
		t.Errorf("OffsetFetch v8 of a group without commits: %+v", g)
	}

	// List, describe, delete offsets, delete the group.
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if lg, ok := listed["api-group"]; !ok || lg.State != "Empty" {
		t.Errorf("ListGroups: %+v, want api-group Empty", listed)
	}
	if empty, err := adm.ListGroups(ctx, "Stable"); err != nil || len(empty["api-group"].Group) != 0 {
		t.Errorf("ListGroups Stable lists api-group: %v %+v", err, empty)
	}
	dg, err := adm.DescribeGroups(ctx, "api-group", "no-such-group")
	if err != nil || dg["api-group"].State != "Empty" || dg["no-such-group"].State != "Dead" {
		t.Errorf("DescribeGroups: %v %+v", err, dg)
	}
	ts := kadm.TopicsSet{}
	ts.Add("apis", 1)
	dresp, err := adm.DeleteOffsets(ctx, "api-group", ts)
	if err != nil || dresp.Error() != nil {
		t.Errorf("DeleteOffsets: %v %v", err, dresp.Error())
	}
	fetched, err := adm.FetchOffsets(ctx, "api-group")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fetched.Lookup("apis", 1); ok {
		t.Errorf("apis/1 still committed after OffsetDelete")
	}
	if o, ok := fetched.Lookup("apis", 0); !ok || o.At != 7 {
		t.Errorf("apis/0 committed %+v, want 7", o)
	}

	// A group with a member cannot be deleted; an empty one can.
	member := newClient(t, brokers[0].Addr(), kgo.SeedBrokers(seeds(brokers)...), kgo.ConsumerGroup("busy-group"), kgo.ConsumeTopics("apis"), kgo.ClientID("busy-client"))
	waitFor(t, 20*time.Second, "busy-group stable", func() bool {
		d, err := adm.DescribeGroups(ctx, "busy-group")
		return err == nil && d["busy-group"].State == "Stable"
	})
	// Members carry the client id of their JoinGroup request's header.
	if d, err := adm.DescribeGroups(ctx, "busy-group"); err != nil || len(d["busy-group"].Members) != 1 ||
		d["busy-group"].Members[0].ClientID != "busy-client" || !strings.HasPrefix(d["busy-group"].Members[0].MemberID, "busy-client-") {
		t.Errorf("DescribeGroups busy-group: %v %+v, want one member with client id busy-client", err, d["busy-group"].Members)
	}
	del, err := adm.DeleteGroups(ctx, "busy-group", "api-group", "no-such-group")
	if err != nil {
		t.Fatal(err)
	}
	// api-group may come back GROUP_ID_NOT_FOUND: if the coordinator moves
	// while the deletion is written, the client retries on the new
	// coordinator, which already replayed the deletion. What must hold is
	// that the group and its offsets are gone (checked below).
	if del["busy-group"].Err != kerr.NonEmptyGroup || (del["api-group"].Err != nil && del["api-group"].Err != kerr.GroupIDNotFound) || del["no-such-group"].Err != kerr.GroupIDNotFound {
		t.Errorf("DeleteGroups: busy %v, empty %v, unknown %v", del["busy-group"].Err, del["api-group"].Err, del["no-such-group"].Err)
	}
	if del["api-group"].Err != nil {
		t.Logf("DeleteGroups answered %v for api-group (a retry after a coordinator move?)", del["api-group"].Err)
	}
	if d, err := adm.DescribeGroups(ctx, "api-group"); err != nil || d["api-group"].State != "Dead" {
		t.Errorf("api-group after DeleteGroups: %v %+v, want Dead", err, d["api-group"])
	}
	member.Close()
	if fetched, err := adm.FetchOffsets(ctx, "api-group"); err != nil || len(fetched) != 0 {
		t.Errorf("a deleted group's offsets: %v %+v", err, fetched)
	}

	// Offsets of a deleted topic go with it.
	createReplicated(t, adm, "apis-doomed", 1)
	os = kadm.Offsets{}
	os.Add(kadm.Offset{Topic: "apis-doomed", Partition: 0, At: 3, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "apis", Partition: 2, At: 4, LeaderEpoch: -1})
	// The coordinator knows the new topic once it has applied the topic's
	// metadata record, which may be after CreateTopics answered; until then
	// it answers UNKNOWN_TOPIC_OR_PARTITION, as Kafka's does.
	waitFor(t, 10*time.Second, "a commit to the new topic", func() bool {
		r, err := adm.CommitOffsets(ctx, "doomed-group", os)
		if err == nil && errors.Is(r.Error(), kerr.UnknownTopicOrPartition) {
			return false
		}
		if err != nil || r.Error() != nil {
			t.Fatalf("commit: %v %v", err, r.Error())
		}
		return true
	})
	if _, err := adm.DeleteTopics(ctx, "apis-doomed"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the deleted topic's offsets to go", func() bool {
		f, err := adm.FetchOffsets(ctx, "doomed-group")
		if err != nil {
			return false
		}
		_, doomed := f.Lookup("apis-doomed", 0)
		_, kept := f.Lookup("apis", 2)
		return !doomed && kept
	})

	// __consumer_offsets is internal: listed as such, and clients may not
	// produce to it, delete it or add partitions to it.
	md, err := adm.Metadata(ctx, coordinator.OffsetsTopic)
	if err != nil || md.Topics[coordinator.OffsetsTopic].Err != nil || !md.Topics[coordinator.OffsetsTopic].IsInternal {
		t.Errorf("Metadata of %s: %v %+v, want it internal", coordinator.OffsetsTopic, err, md.Topics[coordinator.OffsetsTopic])
	}
	pcl := newClient(t, brokers[0].Addr(), kgo.SeedBrokers(seeds(brokers)...), kgo.DisableIdempotentWrite(), kgo.RecordRetries(1))
	if err := pcl.ProduceSync(ctx, &kgo.Record{Topic: coordinator.OffsetsTopic, Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Errorf("produce to %s: %v, want INVALID_TOPIC_EXCEPTION", coordinator.OffsetsTopic, err)
	}
	if r, err := adm.DeleteTopics(ctx, coordinator.OffsetsTopic); err != nil || !errors.Is(r[coordinator.OffsetsTopic].Err, kerr.InvalidTopicException) {
		t.Errorf("delete %s: %v %+v, want INVALID_TOPIC_EXCEPTION", coordinator.OffsetsTopic, err, r)
	}
	if r, err := adm.CreatePartitions(ctx, 1, coordinator.OffsetsTopic); err != nil || !errors.Is(r[coordinator.OffsetsTopic].Err, kerr.InvalidTopicException) {
		t.Errorf("add partitions to %s: %v %+v, want INVALID_TOPIC_EXCEPTION", coordinator.OffsetsTopic, err, r)
	}
	if md, err := adm.Metadata(ctx, coordinator.OffsetsTopic); err != nil || md.Topics[coordinator.OffsetsTopic].Err != nil {
		t.Errorf("%s after the refused changes: %v %+v", coordinator.OffsetsTopic, err, md.Topics[coordinator.OffsetsTopic])
	}
}

// TestGroupCoordinatorFailover closes the broker that coordinates a group
// while the group consumes: the members find the new coordinator, which
// loaded the group and its offsets from the replicated partition, and
// consumption continues from the committed offsets with no committed
// progress lost.
func TestGroupCoordinatorFailover(t *testing.T) {
	t.Parallel()
	brokers := startTestCluster(t, 3, nil, nil)
	seedAddrs := seeds(brokers)
	adm := kadm.NewClient(newClient(t, seedAddrs[0], kgo.SeedBrokers(seedAddrs...)))
	const topic, group = "failover", "failover-group"
	createReplicated(t, adm, topic, 6)
	prod := newClient(t, seedAddrs[0], kgo.SeedBrokers(seedAddrs...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	g := newGroupRun(t, seedAddrs, topic, group, kgo.Balancers(kgo.CooperativeStickyBalancer()))

	produced := produceN(t, prod, topic, "fo", 0, 600)
	m1, m2 := g.start("m1"), g.start("m2")
	waitFor(t, 30*time.Second, "the group consuming", func() bool {
		return g.consumedCount() >= 600 && m1.ownedCount()+m2.ownedCount() == 6
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var before kadm.OffsetResponses
	waitFor(t, 10*time.Second, "the consumed offsets committed", func() bool {
		var err error
		before, err = adm.FetchOffsets(ctx, group)
		total := int64(0)
		before.Each(func(o kadm.OffsetResponse) { total += o.At })
		return err == nil && total == 600
	})

	coords := adm.FindGroupCoordinators(ctx, group)
	var coord int32 = -1
	coords.Each(func(c kadm.FindCoordinatorResponse) { coord = c.NodeID })
	var victim *Broker
	for _, b := range brokers {
		if b.NodeID() == coord {
			victim = b
		}
	}
	if victim == nil {
		t.Fatalf("no coordinator found: %+v", coords)
	}
	// The coordinator is the leader of the group's partition.
	td := victim.meta.View().Topics[coordinator.OffsetsTopic]
	if l := leaderOf(victim, coordinator.OffsetsTopic, coordinator.PartitionFor(group, len(td.Partitions))); l != coord {
		t.Fatalf("coordinator %d, but the partition's leader is %d", coord, l)
	}
	t.Logf("closing broker %d, the group's coordinator", coord)
	produceDone := make(chan []string)
	go func() { produceDone <- produceN(t, prod, topic, "fo", 600, 1200) }()
	victim.Close()
	produced = append(produced, <-produceDone...)

	var survivors []*Broker
	for _, b := range brokers {
		if b != victim {
			survivors = append(survivors, b)
		}
	}
	adm2 := kadm.NewClient(newClient(t, survivors[0].Addr(), kgo.SeedBrokers(seeds(survivors)...)))
	waitFor(t, 45*time.Second, "every record consumed after the failover", func() bool { return g.consumedCount() >= len(produced) })
	var after kadm.OffsetResponses
	var fetchErr error
	defer func() {
		if t.Failed() {
			t.Logf("last OffsetFetch after the failover: %v, %d partitions: %+v", fetchErr, len(after), after)
		}
	}()
	waitFor(t, 20*time.Second, "the new coordinator's committed offsets", func() bool {
		// Each attempt is bounded: the client retries a coordinator that
		// does not answer internally, and one attempt must not use up the
		// whole wait.
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		defer acancel()
		after, fetchErr = adm2.FetchOffsets(actx, group)
		return fetchErr == nil && len(after) > 0
	})
	before.Each(func(o kadm.OffsetResponse) {
		if a, ok := after.Lookup(o.Topic, o.Partition); !ok || a.At < o.At {
			t.Errorf("partition %d: committed %d before the failover, %d after", o.Partition, o.At, a.At)
		}
	})
	newCoord := int32(-1)
	adm2.FindGroupCoordinators(ctx, group).Each(func(c kadm.FindCoordinatorResponse) { newCoord = c.NodeID })
	if newCoord == coord || newCoord < 0 {
		t.Errorf("coordinator after the failover: %d", newCoord)
	}
	m1.close()
	m2.close()
	g.check(produced)
}
