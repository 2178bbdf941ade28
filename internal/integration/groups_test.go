//go:build integration

package integration

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kcatGroup runs `kcat -G group topic` until every partition it is
// assigned reaches its end (-e), and returns its "partition value" lines.
func kcatGroup(ctx context.Context, path, addr, group, topic string) ([]string, string, error) {
	cmd := exec.CommandContext(ctx, path, "-b", addr, "-G", group, topic,
		"-X", "auto.offset.reset=earliest", "-e", "-q", "-f", "%p %s\n")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if stdout.Len() == 0 {
		out = nil
	}
	return out, stderr.String(), err
}

// TestGroupKcat: two `kcat -G` processes (librdkafka's balanced
// consumer) share a topic's partitions and read every record once between
// them; they commit as they exit, so a third run reads nothing new.
func TestGroupKcat(t *testing.T) {
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install kcat); .ci/run installs it")
	}
	n := newNode(t)
	n.start()
	addr := n.kafkaAddr()
	const topic, group = "kcat-group", "kcat-grp"
	createTopic(t, addr, topic, 4)
	prod := client(t, addr, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var want []string
	for i := range 200 {
		v := fmt.Sprintf("v%03d", i)
		want = append(want, v)
		prod.Produce(ctx, &kgo.Record{Value: []byte(v)}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// Started together, both join the group's first generation (the
	// coordinator holds an empty group's first rebalance for 3 s).
	type run struct {
		lines  []string
		stderr string
		err    error
	}
	runs := make([]run, 2)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &runs[i]
			r.lines, r.stderr, r.err = kcatGroup(ctx, path, addr, group, topic)
		}()
	}
	wg.Wait()
	var got []string
	partitionsOf := make([]map[string]bool, len(runs))
	for i, r := range runs {
		if r.err != nil {
			t.Fatalf("kcat %d: %v\nstderr: %s", i, r.err, r.stderr)
		}
		partitionsOf[i] = map[string]bool{}
		for _, l := range r.lines {
			p, v, _ := strings.Cut(l, " ")
			partitionsOf[i][p] = true
			got = append(got, v)
		}
		t.Logf("kcat %d read %d records from partitions %v", i, len(r.lines), partitionsOf[i])
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("the two kcat processes read %d records, want each of the %d once", len(got), len(want))
	}
	if len(partitionsOf[0]) == 0 || len(partitionsOf[1]) == 0 {
		t.Fatalf("one kcat process got no partitions: %v %v", partitionsOf[0], partitionsOf[1])
	}
	for p := range partitionsOf[0] {
		if partitionsOf[1][p] {
			t.Errorf("partition %s read by both kcat processes", p)
		}
	}

	// The group committed the end of every partition...
	adm := kadm.NewClient(client(t, addr))
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	committed.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != int64(len(want)) {
		t.Errorf("the group committed offsets summing to %d, want %d", total, len(want))
	}
	// ...so running it again reads nothing new.
	again, stderr, err := kcatGroup(ctx, path, addr, group, topic)
	if err != nil {
		t.Fatalf("kcat again: %v\nstderr: %s", err, stderr)
	}
	if len(again) != 0 {
		t.Fatalf("kcat -G after the commits read %d records again: %v", len(again), again[:min(5, len(again))])
	}
	// New records are read by the next run, and only they.
	prod.Produce(ctx, &kgo.Record{Value: []byte("late")}, nil)
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	late, stderr, err := kcatGroup(ctx, path, addr, group, topic)
	if err != nil || len(late) != 1 || !strings.HasSuffix(late[0], " late") {
		t.Fatalf("kcat after one more record: %v %q\nstderr: %s", err, late, stderr)
	}
}

// TestGroupCoordinatorSIGKILL kills, with SIGKILL, the broker process that
// coordinates a group while the group consumes from a 3-broker cluster.
// The members find the new coordinator, which loaded the group and its
// offsets from the replicated __consumer_offsets partition; consumption
// continues from the committed offsets, no committed offset goes back,
// and no record is consumed again once a commit covering it was
// acknowledged.
func TestGroupCoordinatorSIGKILL(t *testing.T) {
	c := startCluster(t)
	const topic, group, partitions = "group-kill", "group-kill", 6
	adm := kadm.NewClient(clusterClient(t, c.seeds()))
	createReplicatedTopic(t, adm, topic, partitions)
	prod := clusterClient(t, c.seeds(), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.RecordDeliveryTimeout(2*time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	produce := func(from, to int) []string {
		var vals []string
		for i := from; i < to; i++ {
			v := fmt.Sprintf("k%05d", i)
			vals = append(vals, v)
			prod.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
				if err != nil {
					t.Errorf("produce %s: %v", v, err)
				}
			})
		}
		if err := prod.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		return vals
	}

	var (
		mu         sync.Mutex
		consumed   = map[string]int{}
		committed  = map[int32]int64{}
		violations []string
	)
	onCommit := func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for i, rt := range resp.Topics {
			for j, rp := range rt.Partitions {
				if rp.ErrorCode == 0 {
					committed[rp.Partition] = max(committed[rp.Partition], req.Topics[i].Partitions[j].Offset)
				}
			}
		}
	}
	startMember := func(name string) func() {
		cl := clusterClient(t, c.seeds(), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.BlockRebalanceOnPoll(),
			kgo.HeartbeatInterval(500*time.Millisecond), kgo.SessionTimeout(10*time.Second),
			kgo.AutoCommitInterval(250*time.Millisecond), kgo.AutoCommitCallback(onCommit),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
				cl.CommitOffsetsSync(ctx, cl.UncommittedOffsets(), onCommit)
			}))
		pctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for pctx.Err() == nil {
				fs := cl.PollFetches(pctx)
				mu.Lock()
				fs.EachRecord(func(r *kgo.Record) {
					consumed[string(r.Value)]++
					if c := committed[r.Partition]; r.Offset < c {
						violations = append(violations, fmt.Sprintf("%s consumed partition %d offset %d after offset %d was committed", name, r.Partition, r.Offset, c))
					}
				})
				mu.Unlock()
				cl.AllowRebalance()
			}
		}()
		return func() { stop(); <-done; cl.AllowRebalance(); cl.Close() }
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(consumed)
	}

	all := produce(0, 3000)
	stop1, stop2 := startMember("m1"), startMember("m2")
	waitUntil(t, 60*time.Second, "the group consuming the first records", func() bool { return count() >= len(all) })
	var before kadm.OffsetResponses
	eventually(t, 20*time.Second, "the consumed offsets committed", func(ctx context.Context) error {
		var err error
		before, err = adm.FetchOffsets(ctx, group)
		total := int64(0)
		before.Each(func(o kadm.OffsetResponse) { total += o.At })
		if err == nil && total != int64(len(all)) {
			err = fmt.Errorf("committed %d of %d", total, len(all))
		}
		return err
	})
	var coord int32 = -1
	eventually(t, 10*time.Second, "the group's coordinator", func(ctx context.Context) error {
		var err error
		adm.FindGroupCoordinators(ctx, group).Each(func(r kadm.FindCoordinatorResponse) { coord, err = r.NodeID, r.Err })
		return err
	})

	// Keep producing across the SIGKILL.
	produced := make(chan []string)
	go func() { produced <- produce(3000, 6000) }()
	c.node(coord).kill()
	t.Logf("SIGKILL broker %d, the group's coordinator", coord)
	all = append(all, <-produced...)

	waitUntil(t, 90*time.Second, "every record consumed after the SIGKILL", func() bool { return count() >= len(all) })
	var after kadm.OffsetResponses
	eventually(t, 30*time.Second, "the new coordinator's offsets", func(ctx context.Context) error {
		// A new client each time: one that learned the killed broker's
		// address before it was fenced keeps trying it for a while.
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...))
		if err != nil {
			return err
		}
		defer cl.Close()
		after, err = kadm.NewClient(cl).FetchOffsets(ctx, group)
		if err != nil {
			err = fmt.Errorf("%w (%s)", err, coordinatorViews(ctx, cl, group, coord))
		}
		return err
	})
	survivors := kadm.NewClient(clusterClient(t, c.seeds()))
	before.Each(func(o kadm.OffsetResponse) {
		if a, ok := after.Lookup(o.Topic, o.Partition); !ok || a.At < o.At {
			t.Errorf("partition %d: committed %d before the SIGKILL, %d after", o.Partition, o.At, a.At)
		}
	})
	var newCoord int32 = -1
	survivors.FindGroupCoordinators(ctx, group).Each(func(r kadm.FindCoordinatorResponse) { newCoord = r.NodeID })
	if newCoord == coord || newCoord < 1 {
		t.Errorf("coordinator after the SIGKILL: %d", newCoord)
	}
	stop1()
	stop2()
	mu.Lock()
	defer mu.Unlock()
	for _, v := range all {
		if consumed[v] == 0 {
			t.Errorf("record %s never consumed", v)
			break
		}
	}
	for i, v := range violations {
		if i == 10 {
			break
		}
		t.Error(v)
	}
	t.Logf("%d records consumed; coordinator %d → %d", len(consumed), coord, newCoord)
}

// coordinatorViews asks every broker but skip for the group's
// coordinator, for failure messages.
func coordinatorViews(ctx context.Context, cl *kgo.Client, group string, skip int32) string {
	var views []string
	for id := int32(1); id <= 3; id++ {
		if id == skip {
			continue
		}
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorKey = group
		req.CoordinatorKeys = []string{group}
		resp, err := req.RequestWith(ctx, cl.Broker(int(id)))
		switch {
		case err != nil:
			views = append(views, fmt.Sprintf("broker %d: %v", id, err))
		case len(resp.Coordinators) == 1:
			c := resp.Coordinators[0]
			views = append(views, fmt.Sprintf("broker %d says coordinator %d (error %d %s)", id, c.NodeID, c.ErrorCode, strOr(c.ErrorMessage)))
		}
	}
	return strings.Join(views, "; ")
}

func strOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
