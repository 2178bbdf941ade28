//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testCluster is three `raftka start` processes that form one cluster: all
// three are metadata voters and every node joins the other two by gossip
// (joins retry in the background, so a restarted node finds its way back
// whichever nodes are up).
type testCluster struct {
	t     *testing.T
	nodes []*node // nodes[i] is broker i+1
}

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	c := &testCluster{t: t, nodes: newNodes(t, 3)}
	for i, n := range c.nodes {
		var join []string
		for j, m := range c.nodes {
			if j != i {
				join = append(join, m.gossipAddr())
			}
		}
		n.extra = []string{"--node-id", strconv.Itoa(i + 1), "--metadata-voters", "1,2,3", "--join", strings.Join(join, ",")}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, n := range c.nodes {
				t.Logf("--- broker %d: tail of %s/raftka.log ---\n%s", i+1, n.dataDir, n.logTail(60))
			}
		}
	})
	began := time.Now()
	for _, n := range c.nodes {
		n.launch()
	}
	for _, n := range c.nodes {
		n.waitHealthy(60 * time.Second)
	}
	t.Logf("3 brokers healthy in %v", time.Since(began).Round(time.Millisecond))
	return c
}

// node returns broker id's process.
func (c *testCluster) node(id int32) *node { return c.nodes[id-1] }

// seeds returns the Kafka addresses of the running brokers.
func (c *testCluster) seeds() []string {
	var out []string
	for _, n := range c.nodes {
		if n.running() {
			out = append(out, n.kafkaAddr())
		}
	}
	return out
}

// restart launches the given brokers together and waits until all are
// healthy (a majority of the voters may be among them).
func (c *testCluster) restart(ids ...int32) {
	c.t.Helper()
	for _, id := range ids {
		c.node(id).launch()
	}
	for _, id := range ids {
		c.node(id).waitHealthy(60 * time.Second)
	}
}

// clusterClient returns a client of the brokers at seeds, closed when the
// test ends.
func clusterClient(t *testing.T, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	// franz-go answers Metadata requests from its cache, and refreshes
	// its cache, at most every 5 s by default; the tests watch leadership
	// move and need fresher views.
	base := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100 * time.Millisecond)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// eventually calls f until it returns nil, failing the test with f's last
// error after d. It returns how long that took.
func eventually(t *testing.T, d time.Duration, what string, f func(ctx context.Context) error) time.Duration {
	t.Helper()
	began := time.Now()
	deadline := began.Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f(ctx)
		cancel()
		if err == nil {
			return time.Since(began)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", d, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createReplicatedTopic creates topic with replication factor 3.
func createReplicatedTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 3, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s with replication factor 3: %v", topic, err)
	}
}

// partitionLeaders returns each partition's leader and ISR as the broker
// answering Metadata sees them.
func partitionLeaders(ctx context.Context, adm *kadm.Client, topic string) (map[int32]kadm.PartitionDetail, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := md.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("topic %s not in metadata", topic)
	}
	if td.Err != nil {
		return nil, fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	return td.Partitions, nil
}

// ackLog records what a producer's callbacks said: which values were
// acknowledged, and when each partition was last and first acknowledged
// around a mark (a fault injected at a known time).
type ackLog struct {
	mu         sync.Mutex
	acked      map[string]bool
	failed     map[string]int // error text → count
	lastAck    map[int32]time.Time
	mark       time.Time
	lastBefore map[int32]time.Time
	firstAfter map[int32]time.Time
}

func newAckLog() *ackLog {
	return &ackLog{acked: map[string]bool{}, failed: map[string]int{}, lastAck: map[int32]time.Time{}}
}

func (l *ackLog) record(r *kgo.Record, err error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed[err.Error()]++
		return
	}
	l.acked[string(r.Value)] = true
	l.lastAck[r.Partition] = now
	if !l.mark.IsZero() && now.After(l.mark) {
		if _, ok := l.firstAfter[r.Partition]; !ok {
			l.firstAfter[r.Partition] = now
		}
	}
}

func (l *ackLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// setMark starts watching for each partition's first acknowledgement after
// now.
func (l *ackLog) setMark() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mark = time.Now()
	l.lastBefore = maps.Clone(l.lastAck)
	l.firstAfter = map[int32]time.Time{}
	return l.mark
}

// resumed returns, for each of partitions acknowledged again since the
// mark, how long after the mark that was, and the gap since its last
// acknowledgement before the mark.
func (l *ackLog) resumed(partitions []int32) (sinceMark, gap map[int32]time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sinceMark, gap = map[int32]time.Duration{}, map[int32]time.Duration{}
	for _, p := range partitions {
		if at, ok := l.firstAfter[p]; ok {
			sinceMark[p] = at.Sub(l.mark)
			gap[p] = at.Sub(l.lastBefore[p])
		}
	}
	return sinceMark, gap
}

// producer writes unique values round-robin over a topic's partitions,
// at about producerRate records a second, until stopped.
type producer struct {
	cl   *kgo.Client
	log  *ackLog
	stop chan struct{}
	done chan struct{}
}

// producerRate is the records a second a producer writes: steady work
// for three race-enabled brokers on two cores, not a benchmark.
const producerRate = 3000

func startProducer(t *testing.T, cl *kgo.Client, prefix string, partitions int) *producer {
	p := &producer{cl: cl, log: newAckLog(), stop: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		defer close(p.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			for range producerRate / 100 {
				cl.Produce(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%s%07d", prefix, i), Partition: int32(i % partitions)}, p.log.record)
				i++
			}
		}
	}()
	t.Cleanup(p.halt)
	return p
}

// halt stops producing; it is safe to call more than once.
func (p *producer) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// verifyExactlyOnce reads topic and fails the test unless every
// acknowledged value is there exactly once, and no value is there twice.
func verifyExactlyOnce(t *testing.T, addr, topic string, acked map[string]bool) map[string]int {
	t.Helper()
	seen := readAll(t, addr, topic)
	lost, dup := 0, 0
	for v := range acked {
		if seen[v] == 0 {
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged %s is missing", v)
			}
		}
	}
	for v, n := range seen {
		if n > 1 {
			dup++
			if dup <= 5 {
				t.Errorf("%s stored %d times", v, n)
			}
		}
	}
	if lost > 0 || dup > 0 {
		t.Fatalf("%d acknowledged records lost, %d records duplicated (of %d acknowledged, %d stored)", lost, dup, len(acked), len(seen))
	}
	return seen
}

// readOffsets reads every partition of topic from offset 0 up to ends and
// returns what each offset holds.
func readOffsets(t *testing.T, seeds []string, topic string, ends map[int32]int64) map[int32]map[int64]string {
	t.Helper()
	start := map[int32]kgo.Offset{}
	for p := range ends {
		start[p] = kgo.NewOffset().At(0)
	}
	cl := clusterClient(t, seeds, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := map[int32]map[int64]string{}
	for p := range ends {
		out[p] = map[int64]string{}
	}
	done := func() bool {
		for p, end := range ends {
			if int64(len(out[p])) < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v", topic, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := int64(len(out[r.Partition])); r.Offset != want {
				t.Fatalf("partition %d: offset %d where %d was expected", r.Partition, r.Offset, want)
			}
			out[r.Partition][r.Offset] = string(r.Value)
		})
	}
	return out
}

// endOffsets returns each partition's high watermark.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	var errs []error
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("partition %d: %w", o.Partition, o.Err))
		}
		out[o.Partition] = o.Offset
	})
	return out, errors.Join(errs...)
}

// TestClusterSIGKILLLeader kills the leader of partition 0 while an
// idempotent acks=all producer writes to 6 partitions replicated on all
// three brokers. Acknowledgements on the partitions it led resume once new
// leaders are elected; the broker is restarted and catches up; every
// acknowledged record is then stored exactly once. Finally a graceful stop
// of partition 0's leader shows that the same offset holds the same record
// whichever broker leads.
func TestClusterSIGKILLLeader(t *testing.T) {
	c := startCluster(t)
	const topic, partitions = "failover", 6
	adm := kadm.NewClient(clusterClient(t, c.seeds()))
	createReplicatedTopic(t, adm, topic, partitions)

	prodClient := clusterClient(t, c.seeds(), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(2*time.Minute))
	prod := startProducer(t, prodClient, "k", partitions)
	waitUntil(t, 30*time.Second, "2000 acknowledged records", func() bool { return prod.log.count() >= 2000 })

	// The victim leads partition 0 and whichever others.
	var leaders map[int32]kadm.PartitionDetail
	eventually(t, 10*time.Second, "leaders of every partition", func(ctx context.Context) error {
		var err error
		leaders, err = partitionLeaders(ctx, adm, topic)
		for p := range int32(partitions) {
			if err == nil && leaders[p].Leader < 1 {
				err = fmt.Errorf("partition %d has no leader", p)
			}
		}
		return err
	})
	victim := leaders[0].Leader
	var victimLed []int32
	for p, d := range leaders {
		if d.Leader == victim {
			victimLed = append(victimLed, p)
		}
	}
	slices.Sort(victimLed)
	before := prod.log.count()
	c.node(victim).kill()
	killedAt := prod.log.setMark()
	t.Logf("SIGKILL broker %d, leader of partitions %v, after %d acknowledged records", victim, victimLed, before)

	// The survivors elect new leaders...
	survivors := kadm.NewClient(clusterClient(t, c.seeds()))
	elected := eventually(t, 15*time.Second, "new leaders on the surviving brokers", func(ctx context.Context) error {
		ls, err := partitionLeaders(ctx, survivors, topic)
		if err != nil {
			return err
		}
		for p, d := range ls {
			if d.Leader < 1 || d.Leader == victim {
				return fmt.Errorf("partition %d: leader %d", p, d.Leader)
			}
		}
		return nil
	})
	t.Logf("new leaders of partitions %v in the surviving brokers' metadata %v after the SIGKILL", victimLed, elected.Round(time.Millisecond))
	// ...and acknowledgements resume on the partitions it led.
	waitUntil(t, 30*time.Second, "acknowledgements on the partitions the killed broker led", func() bool {
		since, _ := prod.log.resumed(victimLed)
		return len(since) == len(victimLed)
	})
	since, gap := prod.log.resumed(victimLed)
	var worst time.Duration
	for _, p := range victimLed {
		t.Logf("partition %d: acknowledged again %v after the SIGKILL (gap between acknowledgements %v)",
			p, since[p].Round(time.Millisecond), gap[p].Round(time.Millisecond))
		worst = max(worst, since[p])
	}
	if worst > 10*time.Second {
		t.Errorf("acknowledgements resumed %v after the SIGKILL, want within 10s", worst.Round(time.Millisecond))
	}

	// The restarted broker catches up: it is back in every ISR.
	restartedAt := time.Now()
	c.restart(victim)
	mark := prod.log.count()
	took := eventually(t, 30*time.Second, "the restarted broker back in every partition's ISR", func(ctx context.Context) error {
		ls, err := partitionLeaders(ctx, adm, topic)
		if err != nil {
			return err
		}
		for p, d := range ls {
			if !slices.Contains(d.ISR, victim) {
				return fmt.Errorf("partition %d: ISR %v (leader %d)", p, d.ISR, d.Leader)
			}
		}
		return nil
	})
	t.Logf("broker %d restarted %v after the SIGKILL; back in every ISR %v after its restart",
		victim, restartedAt.Sub(killedAt).Round(time.Millisecond), took.Round(time.Millisecond))
	waitUntil(t, 30*time.Second, "2000 more acknowledged records", func() bool { return prod.log.count() >= mark+2000 })
	prod.halt()
	flushCtx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := prodClient.Flush(flushCtx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	prod.log.mu.Lock()
	acked, failed := maps.Clone(prod.log.acked), maps.Clone(prod.log.failed)
	prod.log.mu.Unlock()
	seen := verifyExactlyOnce(t, c.node(victim).kafkaAddr(), topic, acked)
	t.Logf("%d acknowledged, %d stored, failures: %v", len(acked), len(seen), failed)

	// The same offset holds the same record whichever broker leads: read
	// everything, stop partition 0's leader gracefully, read again from the
	// new leaders.
	ends := map[int32]int64{}
	eventually(t, 10*time.Second, "end offsets", func(ctx context.Context) error {
		var err error
		ends, err = endOffsets(ctx, adm, topic)
		return err
	})
	first := readOffsets(t, c.seeds(), topic, ends)
	var leader0 int32
	eventually(t, 10*time.Second, "the leader of partition 0", func(ctx context.Context) error {
		ls, err := partitionLeaders(ctx, adm, topic)
		if err == nil && ls[0].Leader < 1 {
			err = errors.New("no leader")
		}
		if err == nil {
			leader0 = ls[0].Leader
		}
		return err
	})
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer stopCancel()
	if err := c.node(leader0).stop(stopCtx); err != nil {
		t.Fatalf("broker %d: exit after SIGTERM: %v", leader0, err)
	}
	survivors = kadm.NewClient(clusterClient(t, c.seeds()))
	took = eventually(t, 15*time.Second, "a new leader of partition 0 with the same end offsets", func(ctx context.Context) error {
		ls, err := partitionLeaders(ctx, survivors, topic)
		if err != nil {
			return err
		}
		if l := ls[0].Leader; l < 1 || l == leader0 {
			return fmt.Errorf("partition 0: leader %d", l)
		}
		now, err := endOffsets(ctx, survivors, topic)
		if err != nil {
			return err
		}
		if !maps.Equal(now, ends) {
			return fmt.Errorf("end offsets %v, before the stop %v", now, ends)
		}
		return nil
	})
	t.Logf("SIGTERM broker %d (leader of partition 0): a new leader in %v", leader0, took.Round(time.Millisecond))
	second := readOffsets(t, c.seeds(), topic, ends)
	for p := range int32(partitions) {
		for off := range ends[p] {
			if a, b := first[p][off], second[p][off]; a != b {
				t.Fatalf("partition %d offset %d: %q under the old leader, %q under the new", p, off, a, b)
			}
		}
	}
	c.restart(leader0)
}

// TestClusterNoQuorum stops two of the three brokers: produces to a topic
// replicated on all three fail with retriable errors and none is
// acknowledged. Once both are back, producing resumes and everything
// acknowledged before is still there.
func TestClusterNoQuorum(t *testing.T) {
	c := startCluster(t)
	const topic, partitions = "quorum", 3
	adm := kadm.NewClient(clusterClient(t, c.seeds()))
	createReplicatedTopic(t, adm, topic, partitions)

	prod := clusterClient(t, c.seeds(), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	acked := map[string]bool{}
	produceAll := func(prefix string, n int, d time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		var recs []*kgo.Record
		for i := range n {
			recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "%s%05d", prefix, i), Partition: int32(i % partitions)})
		}
		if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", prefix, err)
		}
		for _, r := range recs {
			acked[string(r.Value)] = true
		}
	}
	produceAll("before-", 300, 30*time.Second)

	c.node(2).kill()
	c.node(3).kill()
	t.Log("SIGKILL brokers 2 and 3")

	// A producer that gives up after 5 s: every record fails, none is
	// acknowledged. It is not idempotent, so that a record it timed out is
	// not held back for sequence numbers' sake.
	lost := clusterClient(t, []string{c.node(1).kafkaAddr()}, kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordDeliveryTimeout(5*time.Second), kgo.ProduceRequestTimeout(3*time.Second))
	const attempts = 30
	results := make(chan error, attempts)
	began := time.Now()
	for i := range attempts {
		lost.Produce(context.Background(), &kgo.Record{Value: fmt.Appendf(nil, "noquorum-%05d", i), Partition: int32(i % partitions)},
			func(_ *kgo.Record, err error) { results <- err })
	}
	errs := map[string]int{}
	for range attempts {
		select {
		case err := <-results:
			if err == nil {
				t.Fatalf("a record was acknowledged %v after two of three brokers were killed", time.Since(began).Round(time.Millisecond))
			}
			if !retriable(err) {
				t.Errorf("not a retriable error: %v", err)
			}
			errs[err.Error()]++
		case <-time.After(30 * time.Second):
			t.Fatalf("produce callbacks did not finish in 30s")
		}
	}
	t.Logf("all %d produces failed within %v: %v", attempts, time.Since(began).Round(time.Millisecond), errs)

	restartedAt := time.Now()
	c.restart(2, 3)
	healthy := time.Since(restartedAt)
	produceAll("after-", 300, 30*time.Second)
	t.Logf("brokers 2 and 3 healthy %v after their restart; producing resumed and 300 more records acknowledged %v after it",
		healthy.Round(time.Millisecond), time.Since(restartedAt).Round(time.Millisecond))
	seen := verifyExactlyOnce(t, c.node(1).kafkaAddr(), topic, acked)
	stored := 0
	for v := range seen {
		if strings.HasPrefix(v, "noquorum-") {
			stored++
		}
	}
	// A timed-out write may still be committed later (its outcome is
	// unknown to the client, as in Kafka): not an error.
	t.Logf("%d of the %d failed records were committed after the quorum came back", stored, attempts)
}

// retriable reports whether a produce error is one a client retries: a
// timeout or a retriable Kafka error.
func retriable(err error) bool {
	if errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ke *kerr.Error
	return errors.As(err, &ke) && ke.Retriable
}

// TestClusterControllerFailover kills the controller: the remaining brokers
// elect another, and creating and deleting a topic works through them
// within 15 s.
func TestClusterControllerFailover(t *testing.T) {
	c := startCluster(t)
	adm := kadm.NewClient(clusterClient(t, c.seeds()))
	var controller int32
	eventually(t, 10*time.Second, "a controller", func(ctx context.Context) error {
		md, err := adm.Metadata(ctx)
		if err == nil && md.Controller < 1 {
			err = errors.New("no controller")
		}
		if err == nil {
			controller = md.Controller
		}
		return err
	})
	c.node(controller).kill()
	killedAt := time.Now()
	t.Logf("SIGKILL broker %d, the controller", controller)

	var live []int32
	for i := range int32(3) {
		if i+1 != controller {
			live = append(live, i+1)
		}
	}
	cl := clusterClient(t, c.seeds())
	const topic = "after-failover"
	// The replicas are placed on the two live brokers explicitly: until the
	// new controller fences the dead broker (after fence-after) placement
	// still counts it, so a replication factor of 2 could put both of a
	// partition's replicas where there is no quorum.
	create := kmsg.NewPtrCreateTopicsRequest()
	create.TimeoutMillis = 5000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for p := range 2 {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition = int32(p)
		a.Replicas = []int32{live[p], live[1-p]}
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	create.Topics = append(create.Topics, rt)
	attempts := 0
	tookCreate := eventually(t, 15*time.Second, "creating a topic after the controller died", func(ctx context.Context) error {
		attempts++
		resp, err := create.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		if errors.Is(err, kerr.TopicAlreadyExists) && attempts > 1 {
			return nil // an earlier attempt created it but its answer was lost
		}
		return err
	})
	var newController int32
	eventually(t, 10*time.Second, "the topic in the metadata of both live brokers", func(ctx context.Context) error {
		for _, id := range live {
			md, err := metadataFrom(ctx, cl, id, topic)
			if err != nil {
				return err
			}
			if err := kerr.ErrorForCode(md.Topics[0].ErrorCode); err != nil || len(md.Topics[0].Partitions) != 2 {
				return fmt.Errorf("broker %d: topic %s: %v, %d partitions", id, topic, err, len(md.Topics[0].Partitions))
			}
			newController = md.ControllerID
		}
		return nil
	})
	if newController == controller || newController < 1 {
		t.Errorf("controller after failover %d, killed %d", newController, controller)
	}
	t.Logf("new controller %d; topic created %v after the SIGKILL (%d attempts)", newController, tookCreate.Round(time.Millisecond), attempts)

	deleteAttempts := 0
	eventually(t, 15*time.Second-time.Since(killedAt), "deleting the topic", func(ctx context.Context) error {
		deleteAttempts++
		resp, err := kadm.NewClient(cl).DeleteTopics(ctx, topic)
		if err != nil {
			return err
		}
		err = resp[topic].Err
		if errors.Is(err, kerr.UnknownTopicOrPartition) && deleteAttempts > 1 {
			return nil // an earlier attempt deleted it but its answer was lost
		}
		return err
	})
	eventually(t, 10*time.Second, "the topic gone from both live brokers", func(ctx context.Context) error {
		for _, id := range live {
			md, err := metadataFrom(ctx, cl, id, topic)
			if err != nil {
				return err
			}
			if err := kerr.ErrorForCode(md.Topics[0].ErrorCode); !errors.Is(err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("broker %d still lists %s (%v)", id, topic, err)
			}
		}
		return nil
	})
	took := time.Since(killedAt)
	t.Logf("created and deleted a topic %v after the controller was killed", took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("create and delete took %v after the controller died, want at most 15s", took.Round(time.Millisecond))
	}
}

// metadataFrom asks broker id itself (not whichever broker the client
// picks) for topic's metadata.
func metadataFrom(ctx context.Context, cl *kgo.Client, id int32, topic string) (*kmsg.MetadataResponse, error) {
	// Any metadata answer teaches the client every broker's address.
	if _, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl); err != nil {
		return nil, err
	}
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl.Broker(int(id)))
	if err != nil {
		return nil, fmt.Errorf("broker %d: %w", id, err)
	}
	if len(resp.Topics) != 1 {
		return nil, fmt.Errorf("broker %d: %d topics in the answer", id, len(resp.Topics))
	}
	return resp, nil
}

// TestClusterCreateTopicFewerReplicasThanBrokers creates topics whose
// partitions do not all have a replica on the controller. CreateTopics
// should answer as soon as the partitions have leaders, as it does for a
// replication factor of 3.
//
// It fails today: the controller's waitPartitionsLed (broker/broker.go)
// waits for a local replica of every partition of the new topic, so for
// any partition placed elsewhere it waits out the whole request timeout.
// The topic is created; the answer comes late.
func TestClusterCreateTopicFewerReplicasThanBrokers(t *testing.T) {
	c := startCluster(t)
	adm := kadm.NewClient(clusterClient(t, c.seeds()))
	adm.SetTimeoutMillis(10_000)
	for _, rf := range []int16{3, 1, 2} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		began := time.Now()
		topic := fmt.Sprintf("rf%d", rf)
		resp, err := adm.CreateTopic(ctx, 3, rf, nil, topic)
		cancel()
		if err == nil {
			err = resp.Err
		}
		took := time.Since(began)
		if err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
		t.Logf("CreateTopics with replication factor %d answered in %v", rf, took.Round(time.Millisecond))
		if took > 5*time.Second {
			t.Errorf("CreateTopics with replication factor %d took %v (the request timeout is 10s); want well under 5s", rf, took.Round(time.Millisecond))
		}
		// The topic is usable at once.
		cl := clusterClient(t, c.seeds(), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		ctx, cancel = context.WithTimeout(context.Background(), 15*time.Second)
		for p := range int32(3) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x"), Partition: p}).FirstErr(); err != nil {
				t.Errorf("produce to %s partition %d: %v", topic, p, err)
			}
		}
		cancel()
	}
}
