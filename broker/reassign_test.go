package broker

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReassignPartition moves a partition's replicas to a set with a new
// broker (and without the old leader) while keeping its data: the new
// replica joins as a learner, catches up from the leader's log, is
// promoted, and the replica that leaves is removed.
func TestReassignPartition(t *testing.T) {
	t.Parallel()
	brokers := startTestCluster(t, 4, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl := newClient(t, brokers[0].Addr(), kgo.SeedBrokers(seeds(brokers)...), kgo.DefaultProduceTopic("moving"),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	adm := kadm.NewClient(cl)
	if resp, err := adm.CreateTopic(ctx, 1, 3, nil, "moving"); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	for i := range 200 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("before-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	part := brokers[0].meta.View().Topics["moving"].Partitions[0]
	leader := leaderOf(brokers[0], "moving", 0)
	var spare int32
	for _, b := range brokers {
		if !slices.Contains(part.Replicas, b.NodeID()) {
			spare = b.NodeID()
		}
	}
	// The target drops the current leader and adds the spare broker.
	var target []int32
	for _, r := range part.Replicas {
		if r != leader {
			target = append(target, r)
		}
	}
	target = append(target, spare)

	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign("moving", 0, target)
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	res.Each(func(r kadm.AlterPartitionAssignmentsResponse) {
		if r.Err != nil {
			t.Fatalf("reassign: %v", r.Err)
		}
	})
	waitFor(t, 30*time.Second, "the reassignment to finish", func() bool {
		p := brokers[0].meta.View().Topics["moving"].Partitions[0]
		return p.Target == nil && slices.Equal(p.Replicas, target)
	})
	listed, err := adm.ListPartitionReassignments(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 0 {
		t.Fatalf("reassignments still listed: %v", listed)
	}
	// The new replica has the whole log, identical to the others'.
	gid := part.GroupID
	waitFor(t, 20*time.Second, "target replicas hold identical logs", func() bool {
		var first string
		for _, id := range target {
			rp := brokers[id-1].partition(gid)
			if rp == nil {
				return false
			}
			data, err := rp.Read(nil, 0, 1<<30)
			if err != nil || len(data) == 0 {
				return false
			}
			if first == "" {
				first = string(data)
			} else if string(data) != first {
				return false
			}
		}
		return true
	})
	// The broker that left no longer hosts the partition.
	waitFor(t, 20*time.Second, "the old replica to be removed", func() bool {
		return brokers[leader-1].partition(gid) == nil
	})
	for i := range 100 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("after-%d", i))}).FirstErr(); err != nil {
			t.Fatalf("produce after the move: %v", err)
		}
	}
	got := consumeAll(t, brokers[0].Addr(), "moving", 300)
	if len(got[0]) != 300 || got[0][0] != "before-0" || got[0][299] != "after-99" {
		t.Fatalf("log after the move: %d records", len(got[0]))
	}
}
