package broker

// FindCoordinator (key 10), versions 0–4 (v4 batches keys, KIP-699).
//
// The coordinator of a group is the leader of its __consumer_offsets
// partition, abs(javaHash(group)) % partitions as in Kafka. The first
// FindCoordinator creates __consumer_offsets if it does not exist yet
// (offsets-topic-partitions partitions, replication factor min(3,
// brokers)) and waits briefly for the partition's leader;
// COORDINATOR_NOT_AVAILABLE means no leader is known yet, and clients
// retry. The answer is this broker's view (its own replica, else gossip):
// a broker that turns out not to lead the partition answers group
// requests NOT_COORDINATOR, and the client asks again. Transactional
// coordinators are not served: transactions are not supported.

import (
	"context"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/raftka/raftka/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.FindCoordinator.Int16(), 0, 4, handleFindCoordinator) }

// coordinatorLeaderWait bounds how long FindCoordinator waits for a new
// __consumer_offsets partition to elect a leader.
const coordinatorLeaderWait = 3 * time.Second

func handleFindCoordinator(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	return func(ctx context.Context) kmsg.Response { return b.findCoordinator(ctx, req) }
}

func (b *Broker) findCoordinator(ctx context.Context, req *kmsg.FindCoordinatorRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	answers := make([]kmsg.FindCoordinatorResponseCoordinator, len(keys))
	fail := func(code int16, msg string) {
		for i := range answers {
			answers[i].ErrorCode = code
			answers[i].ErrorMessage = strPtr(msg)
		}
	}
	for i, k := range keys {
		answers[i] = kmsg.NewFindCoordinatorResponseCoordinator()
		answers[i].Key, answers[i].NodeID, answers[i].Port = k, -1, -1
	}
	switch req.CoordinatorType {
	case 0: // group
		wctx, cancel := context.WithTimeout(ctx, coordinatorLeaderWait+5*time.Second)
		t, err := b.offsetsTopic(wctx)
		cancel()
		if err != nil {
			fail(kerr.CoordinatorNotAvailable.Code, "the "+coordinator.OffsetsTopic+" topic is not available yet: "+err.Error())
			break
		}
		b.waitCoordinatorLeaders(ctx, t, keys)
		for i, k := range keys {
			b.answerCoordinator(&answers[i], t, k)
		}
	case 1: // transaction
		fail(kerr.TransactionalIDAuthorizationFailed.Code, "transactions are not supported by this broker yet")
	default:
		fail(kerr.InvalidRequest.Code, "unknown coordinator type")
	}
	if req.Version >= 4 {
		resp.Coordinators = answers
		return resp
	}
	a := answers[0]
	resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = a.ErrorCode, a.NodeID, a.Host, a.Port
	if req.Version >= 1 {
		resp.ErrorMessage = a.ErrorMessage
	}
	return resp
}

// waitCoordinatorLeaders waits, up to coordinatorLeaderWait, until the
// __consumer_offsets partitions of keys have known leaders: right after
// the topic is created they are still electing.
func (b *Broker) waitCoordinatorLeaders(ctx context.Context, t *metadata.Topic, keys []string) {
	deadline := time.NewTimer(coordinatorLeaderWait)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		known := true
		for _, k := range keys {
			p := t.Partitions[coordinator.PartitionFor(k, len(t.Partitions))]
			if b.partitionLeader(p) < 0 {
				known = false
				break
			}
		}
		if known {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-b.drainCh:
			return
		case <-deadline.C:
			return
		case <-poll.C:
		}
	}
}

func (b *Broker) answerCoordinator(a *kmsg.FindCoordinatorResponseCoordinator, t *metadata.Topic, key string) {
	p := t.Partitions[coordinator.PartitionFor(key, len(t.Partitions))]
	leader := b.partitionLeader(p)
	host, port, ok := b.brokerAddr(leader)
	// A leader gossip says is gone would only send the client to a dead
	// address: say it is not available until the partition elects anew.
	if leader < 0 || !ok || !b.alive(leader) {
		a.ErrorCode = kerr.CoordinatorNotAvailable.Code
		a.ErrorMessage = strPtr("the group's " + coordinator.OffsetsTopic + " partition has no leader yet")
		return
	}
	a.NodeID, a.Host, a.Port = leader, host, port
}
